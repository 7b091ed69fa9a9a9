#!/usr/bin/env bash
# One network hub and three remote workers, each in a namespace of its own with a
# certificate of its own, real daemons on both ends (namespaces made and removed here):
#
#   lanA 192.168.101.10 -- hub -- 198.18.1.2  r1 (CN=fixed: client_address 10.8.0.7)
#                              -- 198.18.1.6  r2 (CN=roam-a: from the pool)
#                              -- 198.18.1.10 r3 (CN=roam-b: from the pool)
#                                 fd02:3::2  (r3 reaches the hub over IPv6)
#
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

clients=(r1 r2 r3)
declare -A cn=([r1]=fixed [r2]=roam-a [r3]=roam-b)
# The hub's underlay address towards each worker, the worker's is the next (a /30 each).
declare -A hub_side=([r1]=198.18.1.1 [r2]=198.18.1.5 [r3]=198.18.1.9)
# Where each worker's daemon connects: r3 over the IPv6 underlay.
declare -A hub_target=([r1]=198.18.1.1:8443 [r2]=198.18.1.5:8443 [r3]='[fd02:3::1]:8443')
net_ns lanA hub "${clients[@]}"
net_router hub
net_link lanA la0 192.168.101.10/24,fd01:101::10/64 hub ha0 192.168.101.1/24,fd01:101::1/64
net_default_route lanA 192.168.101.1 fd01:101::1
for c in "${clients[@]}"; do
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

net_client_certs "$TEST_DIR/certs" fixed roam-a roam-b
hub_conf="$TEST_DIR/hub.ini"
{
    net_global hub
    server_tunnel hub '[::]:8443' "" "type = network" "ca = $TEST_DIR/certs/clients-ca.pem" \
        "address = 10.8.0.1/24, fd00:8::1/64" \
        "push_routes = 192.168.101.0/24, fd01:101::/64" \
        "client_address = fixed=10.8.0.7, fixed=fd00:8::7"
} >"$hub_conf"
hub_log="$TEST_DIR/hub.log"
note "the hub (type = network) and three workers"
net_start_ktlstund hub "$hub_conf" "$hub_log"
hub_pid=$KTLSTUND_PID

declare -A pid conf
# start_client C: client C's daemon, with its own certificate, in its namespace.
start_client() {
    local c=$1
    conf[$c]="$TEST_DIR/$c.ini"
    {
        net_global "$c" "workers = 1"
        client_tunnel to-hub "" "${hub_target[$c]}" "type = network" "reconnect_max = 2s" \
            "cert = $TEST_DIR/certs/${cn[$c]}.pem" "key = $TEST_DIR/certs/client.key"
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
if [ "${hub_dev[r1]}" = "${hub_dev[r2]}" ] || [ "${hub_dev[r2]}" = "${hub_dev[r3]}" ] ||
    [ "${hub_dev[r1]}" = "${hub_dev[r3]}" ]; then
    fail "two workers share a hub device: ${hub_dev[*]}"
fi
assert_eq "$(net_tun_devices hub | wc -l)" 3 "TUN devices in the hub's namespace"

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

net_stop_ktlstunds "${pid[@]}"
stop_ktlstund "$hub_pid"
assert_eq "$(net_tun_devices hub | tr '\n' ' ')" "" "TUN devices left in the hub's namespace after it stopped"
