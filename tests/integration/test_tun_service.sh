#!/usr/bin/env bash
# The supervisor's side of network tunnels (daemon/supervisor/tun_service.c) with
# real worker processes on daemon/worker/tun_link.c over real socketpairs, driven by
# `tools/tun_service_tool` in a network namespace this test makes and removes (its
# configuration is built in the tool; see its header):
#   - leftovers named ktl* marked with the service's owner are removed at start (one
#     without that mark stays), and the client tunnel's device made, marked;
#   - two hub clients get their own devices, leased addresses and routes;
#   - the same CN again: the older device loses its routes, its worker gets an end
#     order, the routes move to the newer device;
#   - refused requests (unknown tunnel, a full pool, a route already taken) leave no
#     device and no lease;
#   - a worker killed with SIGKILL: its leases are released, its devices go;
#   - the client device: attach, configure, configure again with other routes (the
#     old ones go), and the device stays when the worker's descriptor closes; it goes
#     when the configuration drops the tunnel, and at the end.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/netns_lib.sh"

[ "$(id -u)" = 0 ] || fail "needs root (network namespaces, TUN devices)"
tool="$TOOLS/tun_service_tool"
netdev_tool="$TOOLS/netdev_tool"
[ -x "$tool" ] || fail "no $tool"

netns_own s
links() { ip -n "$ns" -j link show | jq -r '[.[].ifname] | sort | join(" ")'; }

note "a device a crashed run left, and one of the operator's"
owner="ktlstund $TEST_DIR/run"
ip netns exec "$ns" "$netdev_tool" up ktlstale.9 1400 --persist --owner "$owner" >"$TEST_DIR/stale.out" 2>&1 </dev/null ||
    fail "netdev_tool up: $(cat "$TEST_DIR/stale.out")"
has_link ktlstale.9 || fail "no stale device to remove"
ip -n "$ns" tuntap add mode tun name ktlmine

out="$TEST_DIR/service.out"
spawn_fed service "exec ip netns exec $ns $tool $TEST_DIR/run"
svc=$SPAWN_PID svc_fd=$FED_FD
wait_for_log "$out" '^started' "$(scale 10)" 1 "$svc" || fail "tun_service_tool: $(cat "$out")"
has_link ktlstale.9 && fail "the leftover ktlstale.9 is still there"
assert_contains "$(cat "$out")" "removed 1 network devices a previous run left" "the leftover is reported"
has_link ktlmine || fail "the operator's ktlmine, without the service's mark, was removed"
ip -n "$ns" link del ktlmine
has_link ktlclient || fail "the client tunnel's device was not made"
assert_eq "$(ip -n "$ns" -j link show ktlclient | jq -r '.[0].ifalias')" "$owner" "the client device's alias"

# send LINE: one command to the tool; expect ERE [COUNT]: waits for an answer line.
send() { echo "$*" >&"$svc_fd"; }
expect() { wait_for_log "$out" "$1" "$(scale 10)" "${2:-1}" "$svc" || fail "no line /$1/ in: $(cat "$out")"; }
# answer ERE: the last line matching ERE.
answer() { grep -E "$1" "$out" | tail -n 1; }

send worker w1
send worker w2
expect '^worker w1 [0-9]+$'
expect '^worker w2 [0-9]+$'
w1_pid=$(answer '^worker w1 ' | cut -d' ' -f3)

note "two clients, their own devices and routes"
send to w1 hub office alice
expect '^w1 hub 1 '
read -r _ _ alice_id alice_dev alice_addrs <<<"$(answer '^w1 hub 1 ')"
assert_eq "$alice_addrs" "10.8.0.7/32,fd08::2/128" "alice's fixed IPv4 and a pool IPv6 address"
send to w2 hub office bob
expect '^w2 hub 1 '
read -r _ _ bob_id bob_dev bob_addrs <<<"$(answer '^w2 hub 1 ')"
assert_eq "$(ip -n "$ns" -j link show "$bob_dev" | jq -r '.[0].ifalias')" "$owner" "the alias of bob's device"
assert_eq "$bob_addrs" "10.8.0.2/32,fd08::3/128" "bob's pool addresses"
[ "$alice_dev" != "$bob_dev" ] || fail "one device for two clients"
assert_eq "$(route_dev 10.30.1.1)" "$alice_dev" "alice's network goes to alice's device"
assert_eq "$(route_dev 10.8.0.7)" "$alice_dev" "alice's address goes to alice's device"
assert_eq "$(route_dev 10.31.1.1)" "$bob_dev" "bob's network goes to bob's device"
assert_eq "$(route_dev fd08::3)" "$bob_dev" "bob's IPv6 address goes to bob's device"
assert_eq "$(addresses "$bob_dev")" "10.8.0.1/32 fd08::1/128 " "the hub's addresses, as hosts"

note "the same CN again: the older connection is ended, the routes move"
send to w2 hub office alice
expect '^w1 end 1 a newer connection of the same client identity'
expect '^w2 hub 2 '
read -r _ _ _ alice2_dev alice2_addrs <<<"$(answer '^w2 hub 2 ')"
assert_eq "$alice2_addrs" "$alice_addrs" "alice keeps her addresses"
assert_eq "$(route_dev 10.30.1.1)" "$alice2_dev" "alice's network moved to the newer device"
assert_eq "$(route_dev 10.8.0.7)" "$alice2_dev" "alice's address moved"
assert_eq "$(routes "$alice_dev" -4)" "" "the older device has no route left"
has_link "$alice_dev" || fail "the older device went before its worker let it go"
send to w1 release "$alice_id"
expect '^w1 released 1'
for ((i = 0; i < 40; i++)); do has_link "$alice_dev" || break; sleep 0.05; done
has_link "$alice_dev" && fail "$alice_dev outlived its connection"
assert_eq "$(route_dev 10.30.1.1)" "$alice2_dev" "the release left the newer device's routes alone"

note "refused requests leave nothing"
before=$(links)
send to w1 hub nowhere carol
expect '^w1 hub 2 refused no network hub tunnel named nowhere'
send to w1 hub tiny carol
expect '^w1 hub 3 ktltiny'
send to w1 hub tiny erin
expect '^w1 hub 4 refused '
# Another device already routes dave's network.
ip netns exec "$ns" "$netdev_tool" up clash0 1400 --persist --route 10.40.0.0/16 \
    >"$TEST_DIR/clash.out" 2>&1 </dev/null || fail "netdev_tool up clash0: $(cat "$TEST_DIR/clash.out")"
send to w1 hub office dave
expect '^w1 hub 5 refused .*10\.40\.0\.0/16'
assert_eq "$(route_dev 10.8.0.3)" "" "no route to the address dave would have had"
ip -n "$ns" link del clash0
send to w1 hub office dave
expect '^w1 hub 6 ktl'
read -r _ _ _ dave_dev dave_addrs <<<"$(answer '^w1 hub 6 ')"
assert_eq "${dave_addrs%%,*}" "10.8.0.3/32" "the refused lease was given back: dave takes the next address"
tiny_dev=$(answer '^w1 hub 3 ' | cut -d' ' -f4)

note "a killed worker: leases released, devices gone"
send kill w1
expect '^reaped w1'
for ((i = 0; i < 40; i++)); do has_link "$dave_dev" || has_link "$tiny_dev" || break; sleep 0.05; done
has_link "$dave_dev" && fail "$dave_dev outlived its killed worker"
has_link "$tiny_dev" && fail "$tiny_dev outlived its killed worker"
assert_eq "$(route_dev 10.40.1.1)" "" "dave's network went"
send to w2 hub tiny erin
expect '^w2 hub 3 ktl'
assert_contains "$(answer '^w2 hub 3 ')" "10.9.0.2/32" "carol's lease went with w1: erin gets the one address"

note "the client device: attach, configure, configure again"
send worker w3
expect '^worker w3 '
send to w3 attach to-hub
expect '^w3 attach 1 ktlclient'
send to w3 configure to-hub 1380 10.8.0.5/24,fd08::5/64 192.168.50.0/24,10.60.0.0/16
expect '^w3 configure 2 ktlclient'
assert_eq "$(ip -n "$ns" -j link show ktlclient | jq -r '.[0].mtu')" 1380 "the MTU the hub sent"
assert_eq "$(addresses ktlclient)" "10.8.0.5/24 fd08::5/64 " "the addresses the hub sent, with their lengths"
assert_eq "$(route_dev 192.168.50.1)" ktlclient "a pushed route"
assert_eq "$(route_dev 10.60.1.1)" ktlclient "another pushed route"
send to w3 configure to-hub 1400 10.8.0.6/24 192.168.50.0/24,172.20.0.0/16
expect '^w3 configure 3 ktlclient'
assert_eq "$(addresses ktlclient)" "10.8.0.6/24 " "the new address replaced the old ones"
assert_eq "$(route_dev 172.20.1.1)" ktlclient "the new route"
assert_eq "$(route_dev 192.168.50.1)" ktlclient "the route both had"
assert_eq "$(route_dev 10.60.1.1)" "" "the route the new configuration dropped"
send to w3 configure nowhere 1400 10.8.0.6/24
expect '^w3 configure 4 refused no device for network client tunnel nowhere'
send to w3 close 1
expect '^w3 closed 0'
send to w3 exit
expect '^reaped w3'
has_link ktlclient || fail "the client device went with the worker's descriptor"
assert_eq "$(route_dev 172.20.1.1)" ktlclient "its routes stay while the tunnel reconnects"
send worker w4
expect '^worker w4 '
send to w4 attach to-hub
expect '^w4 attach 1 ktlclient'
send to w4 attach to-hub
expect '^w4 attach 2 ktlclient'

note "a configuration without the client tunnel deletes its device"
send sync none
expect '^synced'
has_link ktlclient && fail "ktlclient outlived its tunnel"
send to w4 attach to-hub
expect '^w4 attach 3 refused no device for network client tunnel to-hub'

note "the end frees everything"
exec {svc_fd}>&-
wait_exit "$svc" "$(scale 10)" || fail "tun_service_tool did not end: $(cat "$out")"
expect '^stopped'
assert_eq "$(links)" "lo" "nothing left but lo"
