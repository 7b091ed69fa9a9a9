#!/usr/bin/env bash
# Site to site over a network tunnel, with real daemons in four namespaces this test
# makes and removes:
#
#   lanA 192.168.101.10 -- gwA (hub) 198.18.0.1 -- 198.18.0.2 gwB (client) -- lanB 192.168.102.10
#        fd01:101::10                                                      fd01:102::10
#
# gwA's ktlstund is the hub ([hub]: lanA's networks pushed, lanB's routed to gwB's
# certificate, site-b), gwB's the client ([to-hub]). The LAN hosts know nothing of the
# tunnel: they route everything via their gateway. Pings both ways (IPv4 and IPv6), a
# TCP transfer each way with its sha256 compared end to end, UDP both ways; the
# devices' addresses and routes read back over rtnetlink while up and gone after the
# daemons stop; gwB killed with SIGKILL and started again: traffic resumes on its own;
# a source outside lanB, sent from lanB, is dropped by the hub and counted (ktlstun
# status and the metrics).
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/network_lib.sh"
net_trap

net_ns lanA gwA gwB lanB
net_router gwA
net_router gwB
net_link lanA la0 192.168.101.10/24,fd01:101::10/64 gwA ga0 192.168.101.1/24,fd01:101::1/64
net_link gwA gu0 198.18.0.1/30 gwB gu1 198.18.0.2/30
net_link gwB gb0 192.168.102.1/24,fd01:102::1/64 lanB lb0 192.168.102.10/24,fd01:102::10/64
net_default_route lanA 192.168.101.1 fd01:101::1
net_default_route lanB 192.168.102.1 fd01:102::1
assert_ping gwB 198.18.0.1 "the underlay between the gateways"
assert_ping lanA 192.168.101.1 "lanA to its gateway"
assert_ping lanB 192.168.102.1 "lanB to its gateway"

net_client_certs "$TEST_DIR/certs" site-b
hub_conf="$TEST_DIR/hub.ini"
{
    net_global gwA "metrics_listen = 127.0.0.1:9154"
    server_tunnel hub 198.18.0.1:8443 "" "type = network" "ca = $TEST_DIR/certs/clients-ca.pem" \
        "address = 10.8.0.1/24, fd00:8::1/64" \
        "push_routes = 192.168.101.0/24, fd01:101::/64" \
        "client_address = site-b=10.8.0.2, site-b=fd00:8::2" \
        "client_networks = site-b=192.168.102.0/24, site-b=fd01:102::/64" \
        "keepalive = 2s"
} >"$hub_conf"
site_conf="$TEST_DIR/site.ini"
{
    net_global gwB "shutdown_timeout = 60s"
    client_tunnel to-hub "" 198.18.0.1:8443 "type = network" "device = ktlsiteb" "reconnect_max = 2s" \
        "cert = $TEST_DIR/certs/site-b.pem" "key = $TEST_DIR/certs/client.key"
} >"$site_conf"
hub_log="$TEST_DIR/hub.log" site_log="$TEST_DIR/site.log"

note "the hub in gwA and the client in gwB (type = network)"
net_start_ktlstund gwA "$hub_conf" "$hub_log"
hub_pid=$KTLSTUND_PID
net_start_ktlstund gwB "$site_conf" "$site_log"
site_pid=$KTLSTUND_PID
started=$(now_ms)

net_wait_address gwB ktlsiteb 10.8.0.2/ "$(scale 10)" ||
    fail "gwB's device ktlsiteb did not get 10.8.0.2 from the hub's CONFIG within $(scale 10) s (devices in gwB: $(net_tun_devices gwB | tr '\n' ' '))"
note "gwB's tunnel up $(($(now_ms) - started)) ms after its start"

note "addresses and routes over rtnetlink"
link=$(net_link_of gwB ktlsiteb)
assert_eq "$(jq -r .linkinfo.info_kind <<<"$link")" tun "ktlsiteb is a TUN device"
assert_eq "$(jq -r .mtu <<<"$link")" 1400 "MTU of ktlsiteb"
assert_eq "$(jq -r '.flags | index("UP") != null' <<<"$link")" true "ktlsiteb is up"
site_addrs=$(net_addresses gwB ktlsiteb)
assert_contains "$site_addrs" "10.8.0.2/" "gwB's IPv4 tunnel address (client_address)"
assert_contains "$site_addrs" "fd00:8::2/" "gwB's IPv6 tunnel address (client_address)"
assert_contains "$(net_routes gwB ktlsiteb -4)" "192.168.101.0/24 " "gwB routes lanA via the tunnel (push_routes)"
assert_contains "$(net_routes gwB ktlsiteb -6)" "fd01:101::/64 " "gwB routes lanA's IPv6 via the tunnel (push_routes)"
assert_eq "$(net_route_dev gwB 192.168.101.10)" ktlsiteb "gwB sends lanA's host into the tunnel"
hub_dev=$(net_route_dev gwA 192.168.102.10)
[[ $hub_dev == ktlhub* ]] || fail "gwA sends lanB's host to '$hub_dev', not to a device of [hub] (ktlhub...)"
note "the hub's device for site-b: $hub_dev"
assert_eq "$(jq -r .linkinfo.info_kind <<<"$(net_link_of gwA "$hub_dev")")" tun "$hub_dev is a TUN device"
hub_addrs=$(net_addresses gwA "$hub_dev")
assert_contains "$hub_addrs" "10.8.0.1/32" "the hub's IPv4 address on $hub_dev, as a host"
assert_contains "$hub_addrs" "fd00:8::1/128" "the hub's IPv6 address on $hub_dev, as a host"
hub_routes4=$(net_routes gwA "$hub_dev" -4)
assert_contains "$hub_routes4" "10.8.0.2 " "gwA routes site-b's address to $hub_dev"
assert_contains "$hub_routes4" "192.168.102.0/24 " "gwA routes lanB (client_networks) to $hub_dev"
assert_contains "$(net_routes gwA "$hub_dev" -6)" "fd01:102::/64 " "gwA routes lanB's IPv6 to $hub_dev"

note "pings both ways, IPv4 and IPv6"
assert_ping lanA 192.168.102.10 "lanA to lanB"
assert_ping lanB 192.168.101.10 "lanB to lanA"
assert_ping lanA fd01:102::10 "lanA to lanB over IPv6"
assert_ping lanB fd01:101::10 "lanB to lanA over IPv6"
assert_ping gwB 10.8.0.1 "gwB to the hub's tunnel address"
assert_ping lanA 10.8.0.2 "lanA to gwB's tunnel address"

note "TCP, 4 MiB each way, sha256 end to end"
head -c $((4 * 1024 * 1024)) /dev/urandom >"$TEST_DIR/a2b.sent"
net_tcp_listen lanB 7000 "$TEST_DIR/a2b.got"
in_ns lanA timeout "$(scale 20)" socat -u "OPEN:$TEST_DIR/a2b.sent" TCP:192.168.102.10:7000 ||
    fail "TCP from lanA to lanB broke off"
wait_exit "$NET_LISTEN_PID" "$(scale 10)" || fail "lanB's receiver did not end: $(cat "$TEST_DIR/a2b.got.out")"
sent=$(in_ns lanA sha256sum <"$TEST_DIR/a2b.sent") got=$(in_ns lanB sha256sum <"$TEST_DIR/a2b.got")
assert_eq "$got" "$sent" "sha256 of the 4 MiB lanA sent to lanB ($(stat -c %s "$TEST_DIR/a2b.got") bytes came)"
head -c $((4 * 1024 * 1024)) /dev/urandom >"$TEST_DIR/b2a.sent"
net_tcp_listen lanA 7000 "$TEST_DIR/b2a.got"
in_ns lanB timeout "$(scale 20)" socat -u "OPEN:$TEST_DIR/b2a.sent" 'TCP:[fd01:101::10]:7000' ||
    fail "TCP over IPv6 from lanB to lanA broke off"
wait_exit "$NET_LISTEN_PID" "$(scale 10)" || fail "lanA's receiver did not end: $(cat "$TEST_DIR/b2a.got.out")"
sent=$(in_ns lanB sha256sum <"$TEST_DIR/b2a.sent") got=$(in_ns lanA sha256sum <"$TEST_DIR/b2a.got")
assert_eq "$got" "$sent" "sha256 of the 4 MiB lanB sent to lanA over IPv6 ($(stat -c %s "$TEST_DIR/b2a.got") bytes came)"

note "UDP both ways"
net_udp_listen lanA 7001 "$TEST_DIR/udp-a.got"
net_udp_listen lanB 7001 "$TEST_DIR/udp-b.got"
tag=$RANDOM$RANDOM
echo "a2b-$tag" | in_ns lanA socat -u - UDP4-SENDTO:192.168.102.10:7001
echo "b2a-$tag" | in_ns lanB socat -u - UDP4-SENDTO:192.168.101.10:7001
echo "b2a6-$tag" | in_ns lanB socat -u - 'UDP6-SENDTO:[fd01:101::10]:7001'
net_wait_file "$TEST_DIR/udp-b.got" "a2b-$tag" "$(scale 5)" || fail "UDP from lanA did not reach lanB"
net_wait_file "$TEST_DIR/udp-a.got" "b2a-$tag" "$(scale 5)" || fail "UDP from lanB did not reach lanA"
net_wait_file "$TEST_DIR/udp-a.got" "b2a6-$tag" "$(scale 5)" || fail "UDP over IPv6 from lanB did not reach lanA"

note "a source outside lanB, sent from lanB through gwB, is dropped by the hub and counted"
dropped_before=$(net_dropped_source "$hub_conf")
ip -n "$(ns lanB)" addr add 192.168.103.5/32 dev lo
for ((i = 1; i <= 10; i++)); do
    echo "spoofed-$i-$tag" | in_ns lanB socat -u - UDP4-SENDTO:192.168.101.10:7001,bind=192.168.103.5
done
echo "genuine-$tag" | in_ns lanB socat -u - UDP4-SENDTO:192.168.101.10:7001,bind=192.168.102.10
net_wait_file "$TEST_DIR/udp-a.got" "genuine-$tag" "$(scale 5)" || fail "UDP from lanB's own address did not reach lanA"
assert_not_contains "$(cat "$TEST_DIR/udp-a.got")" "spoofed-" "datagrams from a source outside lanB reached lanA"
for ((i = 0; i < 20 * SLOW; i++)); do
    dropped=$(net_dropped_source "$hub_conf")
    [ "$dropped" -ge $((dropped_before + 10)) ] && break
    sleep 0.1
done
[ "$dropped" -ge $((dropped_before + 10)) ] ||
    fail "the hub counted $((dropped - dropped_before)) dropped sources, expected 10 (keys /$NET_DROPPED_SOURCE_KEYS/ in: $("$KTLSTUN" status --json -c "$hub_conf"))"
note "the hub's dropped-source count: $dropped_before -> $dropped"
# source_drops_metric: the hub's Prometheus counter of [hub]'s packets dropped for their source.
source_drops_metric() {
    in_ns gwA curl -fsS --max-time 5 http://127.0.0.1:9154/metrics |
        awk '$1 == "ktlstun_network_dropped_packets_total{tunnel=\"hub\",reason=\"source\"}" { print $2 }'
}
for ((i = 0; i < 20 * SLOW; i++)); do
    metric=$(source_drops_metric)
    [ "${metric:-0}" -ge "$dropped" ] && break
    sleep 0.1
done
[ "${metric:-0}" -ge "$dropped" ] || fail "the hub's metric of packets dropped for their source is '$metric', below the $dropped of ktlstun status"
note "the hub's metric of packets dropped for their source: $metric"

note "gwB killed with SIGKILL and started again: traffic resumes on its own"
kill -KILL "$site_pid"
wait_exit "$site_pid" "$(scale 5)" || true
net_wait_gone gwB "$(scale 10)" ||
    fail "processes of gwB's daemon outlived its supervisor's SIGKILL by $(scale 10) s: $(ip netns pids "$(ns gwB)" | tr '\n' ' ')"
net_start_ktlstund gwB "$site_conf" "$site_log"
site_pid=$KTLSTUND_PID
restarted=$(now_ms)
net_ping lanA 192.168.102.10 "$(scale 15)" ||
    fail "lanA does not reach lanB $(scale 15) s after gwB's daemon started again"
note "traffic resumed $(($(now_ms) - restarted)) ms after gwB's restart"
assert_ping lanB 192.168.101.10 "lanB to lanA after the restart"
assert_eq "$(net_tun_devices gwB | tr '\n' ' ')" "ktlsiteb " "gwB's TUN devices after the restart (the old one replaced, not added to)"
assert_eq "$(net_route_dev gwA 192.168.102.10)" "$(net_route_dev gwA 10.8.0.2)" "gwA routes lanB and site-b's address to one device"
[[ $(net_route_dev gwA 192.168.102.10) == ktlhub* ]] || fail "gwA no longer routes lanB to a device of [hub]"

note "the hub frozen (SIGSTOP): gwB hears nothing for three keepalives, ends its connection, keeps device and routes, and is back once the hub is"
hub_processes=$(ip netns pids "$(ns gwA)")
kill -STOP $hub_processes
frozen=$(now_ms)
wait_for_log "$site_log" 'the peer was silent for 6s' "$(scale 20)" ||
    { kill -CONT $hub_processes; fail "gwB did not notice the frozen hub: $(tail -n 5 "$site_log")"; }
note "gwB gave the frozen hub up after $(($(now_ms) - frozen)) ms"
assert_eq "$(net_route_dev gwB 192.168.101.10)" ktlsiteb "gwB's route to lanA while the hub is down (into the tunnel, not elsewhere)"
assert_eq "$(net_tun_devices gwB | tr '\n' ' ')" "ktlsiteb " "gwB's device while the hub is down"
if in_ns lanB ping -n -q -c 1 -W 1 192.168.101.10 >/dev/null 2>&1; then
    kill -CONT $hub_processes
    fail "lanB reached lanA while the hub was frozen: through what?"
fi
kill -CONT $hub_processes
thawed=$(now_ms)
net_ping lanB 192.168.101.10 "$(scale 25)" ||
    fail "lanB does not reach lanA $(scale 25) s after the hub is back: $(tail -n 5 "$site_log")"
note "traffic resumed $(($(now_ms) - thawed)) ms after the hub came back"

note "the daemons stop: their devices and routes go; a network tunnel does not wait out shutdown_timeout (60s)"
stopping=$(now_ms)
stop_ktlstund "$site_pid" "$(scale 30)"
[ $(($(now_ms) - stopping)) -lt 30000 ] ||
    fail "gwB's daemon took $(($(now_ms) - stopping)) ms to stop: it waited for its network tunnel to end on its own"
grep -q 'tunnel=to-hub .*close="daemon shutting down" result=shutdown' "$site_log" ||
    fail "gwB's audit line does not say its tunnel ended with the stop: $(grep 'audit tunnel=to-hub' "$site_log" | tail -n 1)"
assert_eq "$(net_tun_devices gwB | tr '\n' ' ')" "" "TUN devices left in gwB after its daemon stopped"
assert_eq "$(ip -n "$(ns gwB)" -j route show 192.168.101.0/24)" "[]" "gwB's route to lanA after its daemon stopped"
stop_ktlstund "$hub_pid"
assert_eq "$(net_tun_devices gwA | tr '\n' ' ')" "" "TUN devices left in gwA after the hub stopped"
assert_eq "$(ip -n "$(ns gwA)" -j route show 192.168.102.0/24)" "[]" "gwA's route to lanB after the hub stopped"
assert_eq "$(ip -n "$(ns gwA)" -j route show 10.8.0.2)" "[]" "gwA's route to site-b's address after the hub stopped"
