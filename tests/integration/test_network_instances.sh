#!/usr/bin/env bash
# Two ktlstund instances in one network namespace (each with its own runtime_dir and
# state_dir), with real daemons in namespaces this test makes and removes:
#
#   hub 198.18.0.1 -- 198.18.0.2 gw (instance A: client [site]; instance B: client [other])
#
# Each instance marks the TUN devices it makes with the alias "ktlstund RUNTIME_DIR"
# and removes at start only the leftovers marked with its own: B's start leaves A's
# live device (and its traffic) alone, and an operator's device named ktl* survives
# both starts; a client tunnel whose device name another instance (or the operator)
# holds is refused with a message naming the holder, and the rest of that daemon runs;
# A killed with SIGKILL and started again removes its own leftover only.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/network_lib.sh"
net_trap

net_ns hub gw
net_link hub gu0 198.18.0.1/30 gw gu1 198.18.0.2/30
assert_ping gw 198.18.0.1 "the underlay to the hub"

net_client_certs "$TEST_DIR/certs" site-a
hub_conf="$TEST_DIR/hub.ini"
{
    net_global hub
    server_tunnel hub 198.18.0.1:8443 "" "type = network" "ca = $TEST_DIR/certs/clients-ca.pem" \
        "address = 10.8.0.1/24" "client_address = site-a=10.8.0.2" "keepalive = 2s"
} >"$hub_conf"
a_conf="$TEST_DIR/a.ini" a_run="$TEST_DIR/a/run"
{
    net_global a
    client_tunnel site "" 198.18.0.1:8443 "type = network" "reconnect_max = 2s" \
        "cert = $TEST_DIR/certs/site-a.pem" "key = $TEST_DIR/certs/client.key"
} >"$a_conf"
# B's tunnels dial a port nothing listens on: their devices are made at start all the same.
b_conf="$TEST_DIR/b.ini" b_run="$TEST_DIR/b/run"
b_tunnels() {
    net_global b
    client_tunnel other "" 198.18.0.1:8444 "type = network" "reconnect_max = 2s" \
        "cert = $TEST_DIR/certs/site-a.pem" "key = $TEST_DIR/certs/client.key"
}
b_tunnels >"$b_conf"
hub_log="$TEST_DIR/hub.log" a_log="$TEST_DIR/a.log" b_log="$TEST_DIR/b.log"

# alias_of NAME DEV: the alias of DEV in namespace NAME (empty when none or no DEV).
alias_of() { net_link_of "$1" "$2" | jq -r '.ifalias // empty'; }
# ifindex_of NAME DEV: the index of DEV in namespace NAME (empty when no DEV).
ifindex_of() { net_link_of "$1" "$2" | jq -r '.ifindex // empty'; }
# descendants PID: PID's descendants, one a line.
descendants() {
    local child
    for child in $(ps -o pid= --ppid "$1"); do
        echo "$child"
        descendants "$child"
    done
}

note "an operator's own TUN device named ktl*, without an alias"
ip -n "$(ns gw)" tuntap add ktlmine mode tun
mine_index=$(ifindex_of gw ktlmine)

note "the hub, and instance A in gw with a live tunnel"
net_start_ktlstund hub "$hub_conf" "$hub_log"
net_start_ktlstund gw "$a_conf" "$a_log"
a_pid=$KTLSTUND_PID
net_wait_address gw ktlsite 10.8.0.2/ "$(scale 10)" ||
    fail "A's device ktlsite did not get 10.8.0.2 from the hub within $(scale 10) s (devices in gw: $(net_tun_devices gw | tr '\n' ' '))"
assert_eq "$(alias_of gw ktlsite)" "ktlstund $a_run" "the alias of A's device"
hub_dev=$(net_route_dev hub 10.8.0.2)
[[ $hub_dev == ktlhub* ]] || fail "the hub routes site-a's address to '$hub_dev', not to a device of [hub]"
assert_eq "$(alias_of hub "$hub_dev")" "ktlstund $TEST_DIR/hub/run" "the alias of the hub's device $hub_dev"
assert_ping gw 10.8.0.1 "A's tunnel to the hub"
site_index=$(ifindex_of gw ktlsite)
assert_eq "$(ifindex_of gw ktlmine)" "$mine_index" "the operator's ktlmine after A's start"
assert_no_log "$a_log" 'network devices a previous run left' "A's first start removed a device"

note "instance B in the same namespace: A's device and traffic stay"
# A ping running while B starts: none of its answers may go missing for good.
spawn "$TEST_DIR/ping.out" ip netns exec "$(ns gw)" ping -n -i 0.2 -w "$(scale 20)" 10.8.0.1
ping_pid=$SPAWN_PID
sleep 1
net_start_ktlstund gw "$b_conf" "$b_log"
b_pid=$KTLSTUND_PID
net_wait_link gw ktlother "$(scale 10)" || fail "B's device ktlother was not made"
assert_eq "$(alias_of gw ktlother)" "ktlstund $b_run" "the alias of B's device"
assert_eq "$(ifindex_of gw ktlsite)" "$site_index" "A's device ktlsite after B's start (the same device)"
assert_eq "$(alias_of gw ktlsite)" "ktlstund $a_run" "A's device keeps A's alias"
assert_eq "$(ifindex_of gw ktlmine)" "$mine_index" "the operator's ktlmine after B's start"
assert_contains "$(net_addresses gw ktlsite)" "10.8.0.2/" "A's device keeps its address"
assert_no_log "$b_log" 'network devices a previous run left' "B's start removed a device"
assert_ping gw 10.8.0.1 "A's tunnel once B runs"
sleep 1
kill -INT "$ping_pid" 2>/dev/null || true
wait_exit "$ping_pid" "$(scale 5)" || true
note "$(grep -E 'packets transmitted|errors' "$TEST_DIR/ping.out" | tr '\n' ' ')"
assert_not_contains "$(cat "$TEST_DIR/ping.out")" "unreachable" "A's pings while B started"
read -r sent received < <(awk '/packets transmitted/ { print $1, $4 }' "$TEST_DIR/ping.out")
[ "${received:-0}" -ge $((sent - 2)) ] || fail "A's pings while B started: $received of $sent answered"
assert_no_log "$a_log" 'tunnel=site .*close=' "A's tunnel ended while B started"

note "B reloaded with a tunnel [site] (A's device name) and [mine] (the operator's): refused, B runs on"
{
    b_tunnels
    client_tunnel site "" 198.18.0.1:8444 "type = network" "reconnect_max = 2s" \
        "cert = $TEST_DIR/certs/site-a.pem" "key = $TEST_DIR/certs/client.key"
    client_tunnel mine "" 198.18.0.1:8444 "type = network" "reconnect_max = 2s" \
        "cert = $TEST_DIR/certs/site-a.pem" "key = $TEST_DIR/certs/client.key"
} >"$b_conf"
assert_eq "$(reload "$b_pid" "$b_log")" reloaded "B's reload"
assert_log "$b_log" "error: network tunnel site: tun device ktlsite: in use by another ktlstund \\(runtime_dir $a_run\\)" \
    "B refuses A's device"
assert_log "$b_log" "error: network tunnel mine: tun device ktlmine: a device of that name exists and is not ktlstund's" \
    "B refuses the operator's device"
assert_eq "$(log_count "$b_log" 'tun device ktlsite: in use')" 1 "B's refusal of ktlsite, logged once"
alive "$b_pid" || fail "B is gone after its refused tunnels"
assert_eq "$(ifindex_of gw ktlsite)" "$site_index" "A's device after B's reload"
assert_eq "$(alias_of gw ktlsite)" "ktlstund $a_run" "A's device keeps A's alias after B's reload"
assert_eq "$(ifindex_of gw ktlmine)" "$mine_index" "the operator's ktlmine after B's reload"
assert_eq "$(alias_of gw ktlmine)" "" "the operator's ktlmine has no alias still"
assert_ping gw 10.8.0.1 "A's tunnel after B's reload"
other_index=$(ifindex_of gw ktlother)
[ -n "$other_index" ] || fail "B's ktlother went with the reload"

note "A killed with SIGKILL and started again: its own leftover goes, nothing else"
a_tree=$(descendants "$a_pid")
kill -KILL "$a_pid"
wait_exit "$a_pid" "$(scale 5)" || true
for ((i = 0; i < 100 * SLOW; i++)); do
    left=
    for p in $a_tree; do
        [ -d "/proc/$p" ] && left="$left $p"
    done
    [ -z "$left" ] && break
    sleep 0.1
done
[ -z "$left" ] || fail "processes of A outlived its supervisor's SIGKILL by $(scale 10) s:$left"
assert_eq "$(alias_of gw ktlsite)" "ktlstund $a_run" "A's leftover ktlsite, still marked"
net_start_ktlstund gw "$a_conf" "$a_log"
a_pid=$KTLSTUND_PID
assert_log "$a_log" 'notice: removed 1 network devices a previous run left' "A's restart removes its leftover"
net_wait_address gw ktlsite 10.8.0.2/ "$(scale 15)" ||
    fail "A's device ktlsite did not get 10.8.0.2 again within $(scale 15) s of its restart"
[ "$(ifindex_of gw ktlsite)" != "$site_index" ] || fail "A's restart kept its old device instead of making it again"
assert_eq "$(alias_of gw ktlsite)" "ktlstund $a_run" "the alias of A's new device"
assert_eq "$(ifindex_of gw ktlother)" "$other_index" "B's device after A's restart"
assert_eq "$(alias_of gw ktlother)" "ktlstund $b_run" "B's device keeps B's alias"
assert_eq "$(ifindex_of gw ktlmine)" "$mine_index" "the operator's ktlmine after A's restart"
net_ping gw 10.8.0.1 "$(scale 15)" || fail "A's tunnel is not back $(scale 15) s after its restart"

note "A's device deleted under it: made again, marked, when its tunnel comes back"
restarted_index=$(ifindex_of gw ktlsite)
ip -n "$(ns gw)" link delete ktlsite
net_wait_address gw ktlsite 10.8.0.2/ "$(scale 15)" ||
    fail "A's device ktlsite was not made again within $(scale 15) s of its deletion"
[ "$(ifindex_of gw ktlsite)" != "$restarted_index" ] || fail "ktlsite is the deleted device"
assert_eq "$(alias_of gw ktlsite)" "ktlstund $a_run" "the alias of A's device made again"
net_ping gw 10.8.0.1 "$(scale 15)" || fail "A's tunnel is not back $(scale 15) s after its device's deletion"
assert_log "$a_log" "notice: tunnel=site: its network device was deleted; it is made again" "what A says of it"

note "the daemons stop: each deletes its own devices"
stop_ktlstund "$a_pid"
assert_eq "$(ifindex_of gw ktlsite)" "" "A's device after A stopped"
assert_eq "$(ifindex_of gw ktlother)" "$other_index" "B's device after A stopped"
stop_ktlstund "$b_pid"
assert_eq "$(net_tun_devices gw | tr '\n' ' ')" "ktlmine " "the TUN devices left in gw: the operator's"
