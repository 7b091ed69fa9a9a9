#!/usr/bin/env bash
# One network hub and four remote workers, each in a namespace of its own with a
# certificate of its own, real daemons on both ends (namespaces made and removed here):
#
#   lanA 192.168.101.10 -- hub -- 198.18.1.2  r1 (CN=fixed: client_address 10.8.0.7)
#                              -- 198.18.1.6  r2 (CN=roam-a: from the pool)
#                              -- 198.18.1.10 r3 (CN=roam-b: from the pool)
#                                 fd02:3::2  (r3 reaches the hub over IPv6)
#                              -- 198.18.1.14 px 198.18.2.1 -- 198.18.2.2 r4 (CN=roam-c)
#
# r4 reaches the hub only through tinyproxy in px (proxy = http://198.18.2.1:3128): its
# target, the hub's 198.18.1.13, is an address only px has a route to, and px forwards
# nothing. The hub sees r4's connection come from the proxy, and tinyproxy logs the
# CONNECT. A second tunnel of r4 goes to a proxy that wants credentials and has none:
# each attempt is refused (407) in words, in the log and in `ktlstun status`, and the
# client tries again after 1 s, then after 2 s (reconnect_max).
# Each worker gets its address (the fixed one, or one from the pool, none given twice
# and never the hub's) and the pushed route; each pings the hub's tunnel address and
# the host behind the hub, and that host pings each of them back; the hub routes each
# worker to a device of its own. A worker that stops takes its hub device with it
# while the others stay, and gets the same pool address again when it comes back.
# The hub listens on [::]: r1 and r2 come over an IPv4 underlay, r3 over IPv6.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/network_lib.sh"
net_trap

direct=(r1 r2 r3)
clients=("${direct[@]}" r4)
declare -A cn=([r1]=fixed [r2]=roam-a [r3]=roam-b [r4]=roam-c)
# The hub's underlay address towards each worker (r4: towards its proxy), the worker's
# is the next (a /30 each).
declare -A hub_side=([r1]=198.18.1.1 [r2]=198.18.1.5 [r3]=198.18.1.9 [r4]=198.18.1.13)
# Where each worker's daemon connects: r3 over the IPv6 underlay, r4 through its proxy.
declare -A hub_target=([r1]=198.18.1.1:8443 [r2]=198.18.1.5:8443 [r3]='[fd02:3::1]:8443'
    [r4]=198.18.1.13:8443)
net_ns lanA hub px "${clients[@]}"
net_router hub
net_link lanA la0 192.168.101.10/24,fd01:101::10/64 hub ha0 192.168.101.1/24,fd01:101::1/64
net_default_route lanA 192.168.101.1 fd01:101::1
for c in "${direct[@]}"; do
    h=${hub_side[$c]}
    if [ "$c" = r3 ]; then
        net_link hub "h$c" "$h/30,fd02:3::1/64" "$c" u0 "${h%.*}.$((${h##*.} + 1))/30,fd02:3::2/64"
    else
        net_link hub "h$c" "$h/30" "$c" u0 "${h%.*}.$((${h##*.} + 1))/30"
    fi
    assert_ping "$c" "$h" "the underlay from $c to the hub"
done
# IPv6 duplicate address detection ends before the address can be used.
for ((i = 0; i < 50; i++)); do
    ip -n "$(ns r3)" -6 addr show dev u0 tentative | grep -q fd02:3:: || break
    sleep 0.1
done
assert_ping r3 fd02:3::1 "the IPv6 underlay from r3 to the hub"
net_link hub hr4 198.18.1.13/30 px p0 198.18.1.14/30
net_link px p1 198.18.2.1/30 r4 u0 198.18.2.2/30
assert_eq "$(in_ns px sysctl -n net.ipv4.ip_forward)" 0 "px forwards IPv4"
assert_ping px 198.18.1.13 "the underlay from the proxy's namespace to the hub"
if in_ns r4 ping -n -q -c 1 -W 1 198.18.1.13 >/dev/null 2>&1; then
    fail "r4 reaches the hub's 198.18.1.13 without the proxy"
fi
# tinyproxy in px, for r4 alone and to the hub's port alone; one that wants credentials.
net_tinyproxy px open 198.18.2.1 3128 "Allow 198.18.2.2" "ConnectPort 8443"
net_tinyproxy px auth 198.18.2.1 3129 "Allow 198.18.2.2" "ConnectPort 8443" "BasicAuth tunnel s3cret-Pa55"

net_client_certs "$TEST_DIR/certs" fixed roam-a roam-b roam-c
hub_conf="$TEST_DIR/hub.ini"
{
    net_global hub
    server_tunnel hub '[::]:8443' "" "type = network" "ca = $TEST_DIR/certs/clients-ca.pem" \
        "address = 10.8.0.1/24, fd00:8::1/64" \
        "push_routes = 192.168.101.0/24, fd01:101::/64" \
        "client_address = fixed=10.8.0.7, fixed=fd00:8::7"
} >"$hub_conf"
hub_log="$TEST_DIR/hub.log"
note "the hub (type = network) and four workers"
net_start_ktlstund hub "$hub_conf" "$hub_log"
hub_pid=$KTLSTUND_PID

declare -A pid conf
# start_client C: client C's daemon, with its own certificate, in its namespace; r4's
# tunnel goes through its proxy, and [nocred] to the proxy that wants credentials.
start_client() {
    local c=$1
    local -a through=()
    [ "$c" != r4 ] || through=("proxy = http://198.18.2.1:3128")
    conf[$c]="$TEST_DIR/$c.ini"
    {
        net_global "$c" "workers = 1"
        client_tunnel to-hub "" "${hub_target[$c]}" "type = network" "reconnect_max = 2s" \
            "cert = $TEST_DIR/certs/${cn[$c]}.pem" "key = $TEST_DIR/certs/client.key" "${through[@]}"
        if [ "$c" = r4 ]; then
            client_tunnel nocred "" "${hub_target[$c]}" "type = network" "reconnect_max = 2s" \
                "cert = $TEST_DIR/certs/${cn[$c]}.pem" "key = $TEST_DIR/certs/client.key" \
                "proxy = http://198.18.2.1:3129"
        fi
    } >"${conf[$c]}"
    net_start_ktlstund "$c" "${conf[$c]}" "$TEST_DIR/$c.log"
    pid[$c]=$KTLSTUND_PID
}
for c in "${clients[@]}"; do
    start_client "$c"
done

# The device's default name: "ktl" + the tunnel's name.
dev=ktlto-hub
declare -A addr4 addr6
for c in "${clients[@]}"; do
    net_wait_address "$c" "$dev" 10.8.0. "$(scale 10)" ||
        fail "$c (CN=${cn[$c]}) got no address in 10.8.0.0/24 from the hub within $(scale 10) s (devices in $c: $(net_tun_devices "$c" | tr '\n' ' '))"
    addrs=$(net_addresses "$c" "$dev")
    addr4[$c]=$(tr ' ' '\n' <<<"$addrs" | grep -m 1 '^10\.8\.0\.' | cut -d/ -f1)
    addr6[$c]=$(tr ' ' '\n' <<<"$addrs" | grep -m 1 '^fd00:8::' | cut -d/ -f1) ||
        fail "$c (CN=${cn[$c]}) got no IPv6 address in fd00:8::/64: $addrs"
    note "$c (CN=${cn[$c]}): $addrs"
    assert_contains "$(net_routes "$c" "$dev" -4)" "192.168.101.0/24 " "$c routes the hub's network through the tunnel"
    assert_contains "$(net_routes "$c" "$dev" -6)" "fd01:101::/64 " "$c routes the hub's IPv6 network through the tunnel"
done

note "one fixed address, two from the pool, none twice"
assert_eq "${addr4[r1]}" 10.8.0.7 "the IPv4 address of CN=fixed (client_address)"
assert_eq "${addr6[r1]}" fd00:8::7 "the IPv6 address of CN=fixed (client_address)"
for c in r2 r3; do
    case ${addr4[$c]} in
        10.8.0.0 | 10.8.0.1 | 10.8.0.7 | 10.8.0.255) fail "$c got ${addr4[$c]} from the pool" ;;
    esac
    case ${addr6[$c]} in
        fd00:8:: | fd00:8::1 | fd00:8::7) fail "$c got ${addr6[$c]} from the pool" ;;
    esac
done
[ "${addr4[r2]}" != "${addr4[r3]}" ] || fail "r2 and r3 both got ${addr4[r2]}"
[ "${addr6[r2]}" != "${addr6[r3]}" ] || fail "r2 and r3 both got ${addr6[r2]}"

note "each pings the hub and the host behind it, and is pinged back"
declare -A hub_dev
for c in "${clients[@]}"; do
    assert_ping "$c" 10.8.0.1 "$c to the hub's tunnel address"
    assert_ping "$c" 192.168.101.10 "$c to the host behind the hub"
    assert_ping "$c" fd01:101::10 "$c to the host behind the hub over IPv6"
    assert_ping lanA "${addr4[$c]}" "the host behind the hub to $c"
    hub_dev[$c]=$(net_route_dev hub "${addr4[$c]}")
    [[ ${hub_dev[$c]} == ktlhub* ]] || fail "the hub routes $c's ${addr4[$c]} to '${hub_dev[$c]}', not to a device of [hub]"
    assert_eq "$(net_route_dev hub "${addr6[$c]}")" "${hub_dev[$c]}" "the hub's device for $c's IPv6 address"
done
[ "$(printf '%s\n' "${hub_dev[@]}" | sort -u | wc -l)" = "${#clients[@]}" ] ||
    fail "two workers share a hub device: ${hub_dev[*]}"
assert_eq "$(net_tun_devices hub | wc -l)" 4 "TUN devices in the hub's namespace"

note "ktlstun status on the hub: each worker's connection with its device and addresses"
status=$("$KTLSTUN" status --json -c "$hub_conf")
for c in "${clients[@]}"; do
    peer=$(jq -c --arg s "CN=${cn[$c]}" '[.connections[] | select(.tunnel == "hub" and .subject == $s)]' <<<"$status")
    assert_eq "$(jq length <<<"$peer")" 1 "connections of CN=${cn[$c]} in the hub's status"
    assert_eq "$(jq -r '.[0].device' <<<"$peer")" "${hub_dev[$c]}" "the device of CN=${cn[$c]} in the hub's status"
    assert_eq "$(jq -r '.[0].address | split("/")[0]' <<<"$peer")" "${addr4[$c]}" "the address of CN=${cn[$c]} in the hub's status"
    assert_eq "$(jq -r '.[0].address6 | split("/")[0]' <<<"$peer")" "${addr6[$c]}" "the IPv6 address of CN=${cn[$c]} in the hub's status"
done
assert_contains "$(jq -r '.connections[] | select(.subject == "CN=roam-b") | .peer' <<<"$status")" \
    "fd02:3::2" "CN=roam-b's connection comes over the IPv6 underlay"

note "r4's tunnel came through tinyproxy: the hub sees the proxy, the proxy logged the CONNECT"
assert_contains "$(jq -r '.connections[] | select(.subject == "CN=roam-c") | .peer' <<<"$status")" \
    "198.18.1.14" "CN=roam-c's connection comes from the proxy's address"
assert_log "$TEST_DIR/tinyproxy-open.log" "CONNECT 198\\.18\\.1\\.13:8443 " "tinyproxy did not log r4's CONNECT"
if in_ns r4 ping -n -q -c 1 -W 1 198.18.1.13 >/dev/null 2>&1; then
    fail "r4 reaches the hub's 198.18.1.13 without the proxy once its tunnel is up"
fi

note "a worker that stops takes its hub device with it; back, it gets its address again"
stop_ktlstund "${pid[r2]}"
assert_eq "$(net_tun_devices r2 | tr '\n' ' ')" "" "TUN devices left in r2 after its daemon stopped"
for ((i = 0; i < 50 * SLOW; i++)); do
    [ -z "$(net_link_of hub "${hub_dev[r2]}")" ] && break
    sleep 0.1
done
[ -z "$(net_link_of hub "${hub_dev[r2]}")" ] || fail "r2's hub device ${hub_dev[r2]} outlived its connection"
assert_eq "$(ip -n "$(ns hub)" -j route show "${addr4[r2]}")" "[]" "the hub's route to r2's ${addr4[r2]} after r2 stopped"
assert_ping r1 192.168.101.10 "r1, after r2 stopped"
assert_ping r3 192.168.101.10 "r3, after r2 stopped"
start_client r2
net_wait_address r2 "$dev" "${addr4[r2]}/" "$(scale 10)" ||
    fail "r2 came back with $(net_addresses r2 "$dev"), not its earlier ${addr4[r2]}"
assert_ping r2 192.168.101.10 "r2 to the host behind the hub, back again"

note "r4's [nocred]: each attempt refused by the proxy (407) in words, then another after 1 s, then 2 s"
refused="reason=\"proxy 198\\.18\\.2\\.1:3129: proxy authentication required \\(set proxy_credentials\\)\""
wait_for_log "$TEST_DIR/r4.log" "warning: refused tunnel=nocred peer=198\\.18\\.1\\.13:8443 $refused" "$(scale 10)" 3 ||
    fail "r4's [nocred] was not refused three times in words: $(grep -m 5 'tunnel=nocred' "$TEST_DIR/r4.log")"
# The attempts as tinyproxy took them (its lines start: LEVEL Mon DD HH:MM:SS.mmm), in ms.
mapfile -t tried < <(grep 'Connect (file descriptor' "$TEST_DIR/tinyproxy-auth.log" |
    awk '{ split($4, t, /[:.]/); print ((t[1] * 60 + t[2]) * 60 + t[3]) * 1000 + t[4] }')
[ "${#tried[@]}" -ge 3 ] || fail "tinyproxy took ${#tried[@]} connections for [nocred], expected 3 or more"
first=$(((tried[1] - tried[0] + 86400000) % 86400000)) second=$(((tried[2] - tried[1] + 86400000) % 86400000))
note "[nocred] tried again after $first ms, then after $second ms"
[ "$first" -ge 900 ] || fail "[nocred] tried again $first ms after the proxy's refusal, not after 1 s"
[ "$second" -ge 1900 ] || fail "[nocred]'s second wait was $second ms, not 2 s (doubled to reconnect_max)"
assert_contains "$("$KTLSTUN" status -c "${conf[r4]}" 2>&1)" \
    "proxy 198.18.2.1:3129: proxy authentication required (set proxy_credentials)" \
    "r4's ktlstun status does not show [nocred]'s last refusal"
assert_eq "$(net_route_dev r4 192.168.101.10)" ktlto-hub "r4's route to lanA (through [to-hub], untouched by [nocred])"

net_stop_ktlstunds "${pid[@]}"
stop_ktlstund "$hub_pid"
assert_eq "$(net_tun_devices hub | tr '\n' ' ')" "" "TUN devices left in the hub's namespace after it stopped"
