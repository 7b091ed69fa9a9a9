#!/usr/bin/env bash
# A hub under attack by a client that holds a valid certificate (a stolen laptop): the
# attacker speaks the framing itself (hostile_client.py) against a real hub, while an
# honest client of the same hub, served by the same worker, pings through its tunnel
# the whole time. Namespaces made and removed here:
#
#   hub 198.18.5.1 -- 198.18.5.2 cl (the honest client's daemon, and the attacker)
#       198.18.5.5 -- 198.18.5.6 cl2 (a client daemon the full pool refuses: a
#                                     daemon of its own namespace, as every one is)
#
# [hub] (port 8443): pool 10.8.0.1/24, IPv4 only, keepalive 1s; [small] (port 8444):
# pool 10.9.0.1/29 whose .2, .3 and .4 are fixed for identities that never come, so
# that two addresses are left (.5 and .6).
#
# Each attack: what the hub must do, checked in its log (a reason naming the peer,
# never a clean close for an abort), its devices (the attacker's goes), `ktlstun
# status`, and the honest client's pings, which must not stop.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/network_lib.sh"
net_trap

net_ns hub cl cl2
net_link hub h0 198.18.5.1/30 cl c0 198.18.5.2/30
net_link hub h1 198.18.5.5/30 cl2 c1 198.18.5.6/30
net_default_route cl2 198.18.5.5
assert_ping cl 198.18.5.1 "the underlay from cl to the hub"
assert_ping cl2 198.18.5.1 "the underlay from cl2 to the hub"

net_client_certs "$TEST_DIR/certs" honest fatal-empty fatal-long fatal-type fatal-config \
    cut notify slow silent ka-flood opt-flood spoofer rogue pool-a pool-b pool-c
certs=$TEST_DIR/certs
hub_conf=$TEST_DIR/hub.ini
{
    net_global hub "workers = 1"
    server_tunnel hub 198.18.5.1:8443 "" "type = network" "ca = $certs/clients-ca.pem" \
        "address = 10.8.0.1/24" "keepalive = 1s" "mtu = 1400"
    server_tunnel small 198.18.5.1:8444 "" "type = network" "ca = $certs/clients-ca.pem" \
        "address = 10.9.0.1/29" "keepalive = 1s" \
        "client_address = absent-1=10.9.0.2, absent-2=10.9.0.3, absent-3=10.9.0.4"
} >"$hub_conf"
hub_log=$TEST_DIR/hub.log
net_start_ktlstund hub "$hub_conf" "$hub_log"
hub_pid=$KTLSTUND_PID
worker_pid=$("$KTLSTUN" status --json -c "$hub_conf" | jq -r '.workers[0].pid')

# The honest client: its own daemon in cl, CN=honest, the first address of the pool.
honest_conf=$TEST_DIR/honest.ini
{
    net_global honest "workers = 1"
    client_tunnel to-hub "" 198.18.5.1:8443 "type = network" "reconnect_max = 2s" \
        "cert = $certs/honest.pem" "key = $certs/client.key"
} >"$honest_conf"
net_start_ktlstund cl "$honest_conf" "$TEST_DIR/honest.log"
honest_pid=$KTLSTUND_PID
net_wait_address cl ktlto-hub 10.8.0.2/ "$(scale 10)" ||
    fail "the honest client did not get 10.8.0.2 (devices in cl: $(net_tun_devices cl | tr '\n' ' '))"
assert_ping cl 10.8.0.1 "the honest client to the hub's tunnel address"
honest_dev=$(net_route_dev hub 10.8.0.2)
# Its pings, five a second, for the whole test: none may go unanswered.
spawn "$TEST_DIR/ping.out" ip netns exec "$(ns cl)" ping -n -i 0.2 -W 1 10.8.0.1
ping_pid=$SPAWN_PID

# attack NAME PORT CN ATTACK [ARG...]: hostile_client.py from cl as CN against the
# hub's PORT; its output in $TEST_DIR/NAME.out (also printed), its status returned.
attack() {
    local name=$1 port=$2 cn=$3
    shift 3
    local rc=0
    ip netns exec "$(ns cl)" python3 "$here/hostile_client.py" 198.18.5.1 "$port" \
        "$certs/$cn.pem" "$certs/client.key" "$@" >"$TEST_DIR/$name.out" 2>&1 || rc=$?
    sed "s/^/#   $name: /" "$TEST_DIR/$name.out"
    return "$rc"
}

# attack_bg NAME PORT CN ATTACK [ARG...]: attack in the background; sets ATTACK_PID.
attack_bg() {
    local name=$1 port=$2 cn=$3
    shift 3
    spawn "$TEST_DIR/$name.out" ip netns exec "$(ns cl)" python3 "$here/hostile_client.py" \
        198.18.5.1 "$port" "$certs/$cn.pem" "$certs/client.key" "$@"
    ATTACK_PID=$SPAWN_PID
}

# hub_status: the hub's status (JSON).
hub_status() { "$KTLSTUN" status --json -c "$hub_conf"; }

# conns_of CN: how many connections of CN the hub's status shows.
conns_of() { hub_status | jq --arg s "CN=$1" '[.connections[] | select(.subject == $s)] | length'; }

# wait_gone CN: waits until the hub has no connection of CN and the device its last
# audit line names is gone.
wait_gone() {
    local i dev
    dev=$(grep -E "subject=\"CN=$1\" " "$hub_log" | tail -n 1 | grep -oE ' device=[^ ]+' | cut -d= -f2 || true)
    for ((i = 0; i < 50 * SLOW; i++)); do
        [ "$(conns_of "$1")" = 0 ] && { [ -z "$dev" ] || [ -z "$(net_link_of hub "$dev")" ]; } && return 0
        sleep 0.1
    done
    fail "CN=$1's connection or device ${dev:-?} outlived it: connections $(conns_of "$1"), hub devices $(net_tun_devices hub | tr '\n' ' ')"
}

# only_honest: the hub has no device left but the honest client's.
only_honest() {
    assert_eq "$(net_tun_devices hub | tr '\n' ' ')" "$honest_dev " "the hub's devices after the attacks"
}

# finish NAME PID: waits for the background attack NAME (PID) and prints its output.
finish() {
    wait_exit "$2" "$(scale 20)" || fail "attack $1 did not finish: $(cat "$TEST_DIR/$1.out")"
    sed "s/^/#   $1: /" "$TEST_DIR/$1.out"
}

# honest_ok WHEN: the honest client still pings the hub.
honest_ok() { assert_ping cl 10.8.0.1 "the honest client, $1" 2; }

# assert_aborted NAME CN CLOSE: the attack NAME (as CN) saw no close_notify from the
# hub, whose audit line ends CN's connection with CLOSE (an ERE) as an error; CN's
# connection and device are gone and the honest client still pings.
assert_aborted() {
    local name=$1 cn=$2 close=$3
    assert_not_contains "$(grep '^end ' "$TEST_DIR/$name.out" || true)" close_notify \
        "the hub ended the aborted connection of CN=$cn with close_notify"
    assert_log "$hub_log" "info: audit tunnel=[a-z]+ peer=198\\.18\\.5\\.2:[0-9]+ subject=\"CN=$cn\" .* close=\"$close\" result=error " \
        "no audit line ending CN=$cn's connection as an error with close=\"$close\": $(grep "CN=$cn\"" "$hub_log" | tail -n 1)"
    wait_gone "$cn"
    honest_ok "after the attack of CN=$cn"
}

note "1. fatal headers: each ends that connection as an abort, with its reason"
# PACKET of length 0; PACKET of 1501 bytes (the MTU is 1400); type 0x05; a CONFIG
# from a client (valid as the hub would send it). All four at once.
declare -A fatal=([fatal-empty]=010000 [fatal-long]=0105dd [fatal-type]=05000100
    [fatal-config]=10000d01057800010100040a08000218)
declare -A fatal_why=([fatal-empty]="frame length out of bounds" [fatal-long]="frame length out of bounds"
    [fatal-type]="unexpected frame type" [fatal-config]="unexpected frame type")
declare -A apid
for cn in "${!fatal[@]}"; do
    attack_bg "$cn" 8443 "$cn" send "${fatal[$cn]}" "$(scale 5)"
    apid[$cn]=$ATTACK_PID
done
for cn in "${!fatal[@]}"; do
    finish "$cn" "${apid[$cn]}"
    assert_aborted "$cn" "$cn" "the peer broke the framing: ${fatal_why[$cn]}"
done
# The same CN back gets the same address: its lease was released, not taken twice.
attack fatal-empty-again 8443 fatal-empty hold 0
assert_eq "$(grep '^config ' "$TEST_DIR/fatal-empty-again.out")" "$(grep '^config ' "$TEST_DIR/fatal-empty.out")" \
    "CN=fatal-empty's address when it came back"
wait_gone fatal-empty

note "2. truncated: cut mid-payload, close_notify mid-frame: aborted, never clean"
# A PACKET header of 84 bytes, then 2 of them.
attack_bg cut 8443 cut cut 0100540102
apid[cut]=$ATTACK_PID
attack_bg notify 8443 notify notify 0100540102
finish notify "$ATTACK_PID"
finish cut "${apid[cut]}"
assert_aborted cut cut "the peer closed without close_notify in the middle of a frame \\(truncated\\)"
assert_aborted notify notify "the peer closed with close_notify in the middle of a frame \\(truncated\\)"
# close_notify between frames stays the clean end it is.
attack notify-clean 8443 notify notify ""
assert_log "$hub_log" "subject=\"CN=notify\" .* close=\"closed by the peer\" result=completed " \
    "close_notify between frames is no longer a clean end"
wait_gone notify
only_honest

# conn_field CN KEY: KEY of CN's connection in the hub's status (empty when none).
conn_field() {
    hub_status | jq -r --arg s "CN=$1" --arg k "$2" '[.connections[] | select(.subject == $s)][0][$k] // empty'
}

# wait_field CN KEY VALUE: waits until conn_field CN KEY is VALUE.
wait_field() {
    local i
    for ((i = 0; i < 50 * SLOW; i++)); do
        [ "$(conn_field "$1" "$2")" = "$3" ] && return 0
        sleep 0.1
    done
    fail "CN=$1's $2 is '$(conn_field "$1" "$2")', expected $3"
}

rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$worker_pid/status"; }

note "3-5. slow and silent clients, floods and spoofing, all at once"
# 3: a PACKET header one byte a second (never a whole frame, never an answer), and a
# client that sends nothing: dead-peer detection ends both after 3 keepalives (1s).
# 4: 20000 keepalives, and 20000 unknown optional frames, as fast as they go: the
# hub answers or coalesces, skips and counts, and the worker's memory stays flat.
# 5: a packet with the honest client's source, and an IPv6 one from a client without
# IPv6: dropped and counted as forged; its own ping is answered.
rss_before=$(rss_kb)
attack_bg slow 8443 slow slow 01005401020304050607080910111213
apid[slow]=$ATTACK_PID
attack_bg silent 8443 silent silent "$(scale 10)"
apid[silent]=$ATTACK_PID
attack_bg ka-flood 8443 ka-flood flood 11000800000000000000ff 20000 "$(scale 2)"
apid[ka-flood]=$ATTACK_PID
attack_bg opt-flood 8443 opt-flood flood 8000040102030480000411223344 10000 "$(scale 2)"
apid[opt-flood]=$ATTACK_PID
attack_bg spoofer 8443 spoofer pings "$(scale 2)" "self>10.8.0.1" "10.8.0.2>10.8.0.1" "fd00:8::99>fd00:8::1"
apid[spoofer]=$ATTACK_PID
wait_field opt-flood skipped_frames 20000
wait_field spoofer dropped_source 2
assert_eq "$(conn_field spoofer packets_in)" 1 "packets the hub took from CN=spoofer (its own ping)"
honest_ok "during the floods"
for who in ka-flood opt-flood spoofer; do
    finish "$who" "${apid[$who]}"
    assert_contains "$(cat "$TEST_DIR/$who.out")" hold-done "the hub ended CN=$who's connection"
done
rss_after=$(rss_kb)
replies=$(sed -n 's/^replies //p' "$TEST_DIR/ka-flood.out")
[ "$replies" -ge 1 ] || fail "the hub answered none of 20000 keepalives"
note "the worker's RSS: ${rss_before} kB before the floods, ${rss_after} kB after ($replies keepalive replies)"
[ $((rss_after - rss_before)) -lt $((8192 * SLOW)) ] ||
    fail "the worker's RSS grew from $rss_before kB to $rss_after kB under the floods"
assert_contains "$(cat "$TEST_DIR/spoofer.out")" "echo-replies 1" "echo replies the spoofer got (its own ping only)"
assert_log "$hub_log" "subject=\"CN=spoofer\" .* dropped_source=2 " "the spoofer's audit line does not count its forged packets"
for who in slow silent; do
    finish "$who" "${apid[$who]}"
    assert_aborted "$who" "$who" "the peer was silent for 3s \\(keepalives unanswered\\)"
    took=$(grep -E "subject=\"CN=$who\" " "$hub_log" | grep -oE ' duration=[0-9.]+' | tail -n 1 | cut -d= -f2)
    note "CN=$who ended after ${took}s"
    awk -v t="$took" -v max=$((5 * SLOW)) 'BEGIN { exit !(t >= 3 && t < max) }' ||
        fail "CN=$who's connection lasted ${took}s, not 3 keepalive intervals (1s each)"
done
for who in ka-flood opt-flood spoofer; do
    wait_gone "$who"
done
only_honest

note "6. churn: one identity aborts once, then connects and drops 50 times on [small]"
attack rogue 8444 rogue send 010000 "$(scale 5)"
assert_contains "$(cat "$TEST_DIR/rogue.out")" "config 10.9.0.5/29" "CN=rogue's address (the lowest free one of [small])"
attack churn 8444 rogue churn 50
assert_eq "$(grep -c '^config 10.9.0.5/29$' "$TEST_DIR/churn.out")" 50 "CN=rogue's address on each of its 50 connections"
wait_gone rogue
assert_eq "$(hub_status | jq '[.connections[] | select(.tunnel == "small")] | length')" 0 "connections of [small] in the hub's status after the churn"
assert_eq "$(hub_status | jq -r '[.connections[].subject] | join(" ")')" "CN=honest" "connections in the hub's status after the churn"
honest_ok "after the churn"

note "7. pool exhaustion: [small] has two addresses for pool-a, pool-b and pool-c"
# pool-a gets the lowest address never leased (rogue's stays reserved for it while
# others are left), pool-b rogue's: it was released, not leaked by 51 connections.
attack_bg pool-a 8444 pool-a hold "$(scale 30)"
pool_a_pid=$ATTACK_PID
attack_bg pool-b 8444 pool-b hold "$(scale 30)"
pool_b_pid=$ATTACK_PID
wait_for_log "$TEST_DIR/pool-a.out" '^config ' "$(scale 10)" 1 || fail "pool-a got no CONFIG: $(cat "$TEST_DIR/pool-a.out")"
wait_for_log "$TEST_DIR/pool-b.out" '^config ' "$(scale 10)" 1 || fail "pool-b got no CONFIG: $(cat "$TEST_DIR/pool-b.out")"
assert_eq "$(cat "$TEST_DIR/pool-a.out" "$TEST_DIR/pool-b.out" | sed -n 's/^config //p' | sort | tr '\n' ' ')" \
    "10.9.0.5/29 10.9.0.6/29 " "the addresses of pool-a and pool-b"
# pool-c is a real client daemon (in cl2): its log must say why it has no tunnel.
poolc_conf=$TEST_DIR/pool-c.ini
{
    net_global pool-c "workers = 1"
    client_tunnel to-small "" 198.18.5.1:8444 "type = network" "reconnect_max = 2s" \
        "cert = $certs/pool-c.pem" "key = $certs/client.key"
} >"$poolc_conf"
net_start_ktlstund cl2 "$poolc_conf" "$TEST_DIR/pool-c.log"
poolc_pid=$KTLSTUND_PID
full="no address for pool-c: the pool 10\\.9\\.0\\.0/29 is full, all its 6 addresses are held"
assert_log "$hub_log" "warning: network tunnel small: no device for client pool-c: $full" \
    "the hub did not log why pool-c was refused" "$(scale 10)"
assert_log "$hub_log" "subject=\"CN=pool-c\" .* close=\"no network device for this client: $full\" result=refused " \
    "the hub's audit line of pool-c's refusal" "$(scale 10)"
# The hub told it why (a REFUSED frame) before it closed: not a clean end, in words.
assert_log "$TEST_DIR/pool-c.log" "audit tunnel=to-small .* close=\"the hub refused this client: no network device for this client: $full\" result=refused " \
    "pool-c's log does not say why it has no tunnel" "$(scale 10)"
assert_no_log "$TEST_DIR/pool-c.log" "tunnel=to-small .*result=completed" "pool-c's refusal logged as a clean end"
[ -z "$(net_link_of cl2 ktlto-small)" ] || [ -z "$(net_addresses cl2 ktlto-small)" ] ||
    fail "pool-c's device has addresses: $(net_addresses cl2 ktlto-small)"
alive "$pool_a_pid" && alive "$pool_b_pid" || fail "pool-a or pool-b lost its connection when pool-c was refused"
assert_eq "$(conns_of pool-a) $(conns_of pool-b)" "1 1" "connections of pool-a and pool-b after pool-c's refusal"
honest_ok "after the pool ran out"
net_stop_ktlstunds "$poolc_pid"
for p in "$pool_a_pid" "$pool_b_pid"; do
    kill -TERM "$p"
    wait_exit "$p" 5 || true
done
wait_gone pool-a
wait_gone pool-b

# The honest client's pings: every one answered, none slow.
kill -INT "$ping_pid"
wait "$ping_pid" || true
summary=$(grep -E 'packets transmitted|rtt' "$TEST_DIR/ping.out")
note "honest client: $(tr '\n' ' ' <<<"$summary")"
sent=$(grep -oE '^[0-9]+ packets transmitted' <<<"$summary" | cut -d' ' -f1)
got=$(grep -oE '[0-9]+ received' <<<"$summary" | cut -d' ' -f1)
[ "$got" -ge $((sent - 1)) ] || fail "the honest client lost $((sent - got)) of $sent pings during the attacks"
rtt_max=$(sed -nE 's|^rtt .* = [0-9.]+/[0-9.]+/([0-9.]+)/.*|\1|p' <<<"$summary")
awk -v m="$rtt_max" -v lim=$((200 * SLOW)) 'BEGIN { exit !(m < lim) }' ||
    fail "the honest client's slowest ping took $rtt_max ms during the attacks"

net_stop_ktlstunds "$honest_pid"
stop_ktlstund "$hub_pid"
assert_eq "$(net_tun_devices hub | tr '\n' ' ')" "" "TUN devices left in the hub's namespace after it stopped"
