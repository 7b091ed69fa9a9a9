#!/usr/bin/env bash
# A hub's TUN device per client connection (daemon/netdev/hub_device.c), driven by
# `tools/netdev_tool hub` in a network namespace this test makes and removes: a
# "supervisor" process creates the device a "worker" child asks for
# (daemon/proto/tun_request.c) and hands it the descriptor over a socketpair
# (daemon/core/fd_passing.c), keeping no copy. While the worker holds it, the device
# has the hub's addresses and routes to the client's addresses and networks, and two
# clients' packets route to their own devices; when the worker ends, or is killed,
# the device goes with its routes. A route already taken refuses the request, and
# leaves no device behind.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/netns_lib.sh"

[ "$(id -u)" = 0 ] || fail "needs root (network namespaces, TUN devices)"
tool="$TOOLS/netdev_tool"
[ -x "$tool" ] || fail "no $tool"

netns_own h
link_field() { ip -n "$ns" -j link show "$1" | jq -r ".[0].$2"; }
# tun_fds PID: how many TUN descriptors process PID holds.
tun_fds() { local n=0 f; for f in /proc/"$1"/fd/*; do [ "$(readlink "$f")" = /dev/net/tun ] && n=$((n + 1)); done; echo "$n"; }
# start_client NAME COUNTER ARGS...: a supervisor and its worker for one client; sets
# SUP_PID, WORKER_PID, DEVICE and CLIENT_FD (the worker's stdin, whose end is the
# worker's: no other client inherits it).
client_fds=()
start_client() {
    local name=$1 counter=$2 line closing="" fd
    shift 2
    for fd in "${client_fds[@]}"; do
        closing+="exec $fd>&-; "
    done
    spawn_fed "$name" "${closing}exec ip netns exec $ns $tool hub office $counter 1400 --hub 10.8.0.1/24 --hub fd08::1/64 $*"
    SUP_PID=$SPAWN_PID CLIENT_FD=$FED_FD
    client_fds+=("$FED_FD")
    wait_for_log "$TEST_DIR/$name.out" '^holding ' "$(scale 10)" 1 "$SUP_PID" ||
        fail "netdev_tool hub $name: $(cat "$TEST_DIR/$name.out")"
    line=$(grep '^holding ' "$TEST_DIR/$name.out")
    read -r _ DEVICE WORKER_PID <<<"$line"
}

note "a worker holds its client's device"
start_client alice 1 --client 10.8.0.2 --client fd08::2 --net 10.30.0.0/16 --net fd30::/48
alice_sup=$SUP_PID alice_worker=$WORKER_PID alice_fd=$CLIENT_FD alice_dev=$DEVICE
assert_eq "$alice_dev" ktloffice.1 "the device is named from the tunnel and the counter"
assert_eq "$(ip -n "$ns" -j -d link show "$alice_dev" | jq -r '.[0].linkinfo.info_kind')" tun "$alice_dev is a TUN device"
assert_eq "$(link_field "$alice_dev" mtu)" 1400 "MTU of $alice_dev"
assert_eq "$(link_field "$alice_dev" 'flags | index("UP") != null')" true "$alice_dev is up"
assert_eq "$(addresses "$alice_dev")" "10.8.0.1/32 fd08::1/128 " "the hub's addresses, as hosts"
assert_eq "$(routes "$alice_dev" -4)" "10.30.0.0/16 10.8.0.2 " "IPv4 routes to alice"
assert_eq "$(routes "$alice_dev" -6)" "fd08::2 fd30::/48 " "IPv6 routes to alice"
assert_eq "$(tun_fds "$alice_worker")" 1 "the worker holds the descriptor"
assert_eq "$(tun_fds "$alice_sup")" 0 "the supervisor kept no copy"

note "a second client routes to its own device"
start_client bob 2 --client 10.8.0.3 --client fd08::3 --net 10.31.0.0/16 --net 192.168.40.0/24
bob_sup=$SUP_PID bob_worker=$WORKER_PID bob_fd=$CLIENT_FD bob_dev=$DEVICE
assert_eq "$bob_dev" ktloffice.2 "the second device's name"
assert_eq "$(addresses "$bob_dev")" "10.8.0.1/32 fd08::1/128 " "the hub's addresses on bob's device too"
assert_eq "$(route_dev 10.30.7.7)" "$alice_dev" "alice's network goes to alice's device"
assert_eq "$(route_dev fd30::7)" "$alice_dev" "alice's IPv6 network goes to alice's device"
assert_eq "$(route_dev 10.8.0.2)" "$alice_dev" "alice's address goes to alice's device"
assert_eq "$(route_dev 10.31.7.7)" "$bob_dev" "bob's network goes to bob's device"
assert_eq "$(route_dev 192.168.40.9)" "$bob_dev" "bob's second network goes to bob's device"
assert_eq "$(route_dev 10.8.0.3)" "$bob_dev" "bob's address goes to bob's device"
assert_eq "$(route_dev fd08::3)" "$bob_dev" "bob's IPv6 address goes to bob's device"
assert_eq "$(ip -n "$ns" -j route get 10.31.7.7 | jq -r '.[0].prefsrc')" 10.8.0.1 "the hub speaks from its address"

note "a route already taken refuses the request and leaves no device"
rc=0
ip netns exec "$ns" "$tool" hub office 3 1400 --hub 10.8.0.1/24 --client 10.8.0.4 --net 10.30.0.0/16 \
    >"$TEST_DIR/carol.out" 2>&1 </dev/null || rc=$?
assert_eq "$rc" 1 "the clash fails"
assert_contains "$(cat "$TEST_DIR/carol.out")" "refused adding route via device ktloffice.3: 10.30.0.0/16: Object exists" "the worker reads why"
has_link ktloffice.3 && fail "ktloffice.3 outlived the refused request"
assert_eq "$(route_dev 10.8.0.4)" "" "no route to the refused client"
assert_eq "$(route_dev 10.30.7.7)" "$alice_dev" "alice's route is untouched"
rc=0
ip netns exec "$ns" "$tool" hub office 1 1400 --hub 10.8.0.1/24 --client 10.8.0.5 \
    >"$TEST_DIR/dup.out" 2>&1 </dev/null || rc=$?
assert_eq "$rc" 1 "a device name in use fails"
assert_contains "$(cat "$TEST_DIR/dup.out")" "tun device ktloffice.1: a device of that name exists already" "the name in use"
assert_eq "$(tun_fds "$alice_worker")" 1 "alice's worker still holds its device"

note "the worker's end removes the device and its routes"
exec {alice_fd}>&-
wait_exit "$alice_sup" "$(scale 10)" || fail "alice's supervisor did not end: $(cat "$TEST_DIR/alice.out")"
assert_contains "$(cat "$TEST_DIR/alice.out")" "worker exited 0" "alice's worker ended"
has_link "$alice_dev" && fail "$alice_dev is still there"
assert_eq "$(ip -n "$ns" -j route show 10.30.0.0/16)" "[]" "the route to alice's network went"
assert_eq "$(ip -n "$ns" -j -6 route show fd30::/48)" "[]" "the route to alice's IPv6 network went"
assert_eq "$(route_dev 10.8.0.2)" "" "no route to alice's address"
assert_eq "$(route_dev 10.31.7.7)" "$bob_dev" "bob's device stays"

note "a killed worker's device goes too"
kill -KILL "$bob_worker"
wait_exit "$bob_sup" "$(scale 10)" || fail "bob's supervisor did not end: $(cat "$TEST_DIR/bob.out")"
assert_contains "$(cat "$TEST_DIR/bob.out")" "worker killed by signal 9" "bob's worker was killed"
exec {bob_fd}>&-
has_link "$bob_dev" && fail "$bob_dev outlived its killed worker"
assert_eq "$(ip -n "$ns" -j route show 10.31.0.0/16)" "[]" "the route to bob's network went"
assert_eq "$(ip -n "$ns" -j route show 192.168.40.0/24)" "[]" "the route to bob's second network went"
assert_eq "$(ip -n "$ns" -j -6 route show fd08::3)" "[]" "the route to bob's IPv6 address went"
assert_eq "$(ip -n "$ns" -j link show | jq -r '[.[].ifname] | join(" ")')" lo "nothing left but lo"
