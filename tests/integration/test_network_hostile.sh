#!/usr/bin/env bash
# A hub under attack by a client that holds a valid certificate (a stolen laptop): the
# attacker speaks the framing itself (hostile_client.py) against a real hub, while an
# honest client of the same hub, served by the same worker, pings through its tunnel
# the whole time. Namespaces made and removed here:
#
#   hub 198.18.5.1 -- 198.18.5.2 cl (the honest client's daemon, and the attacker)
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

net_ns hub cl
net_link hub h0 198.18.5.1/30 cl c0 198.18.5.2/30
assert_ping cl 198.18.5.1 "the underlay from cl to the hub"

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

# wait_gone CN: waits until the hub has no connection of CN and no device but the
# honest client's.
wait_gone() {
    local i
    for ((i = 0; i < 50 * SLOW; i++)); do
        [ "$(conns_of "$1")" = 0 ] && [ "$(net_tun_devices hub | tr '\n' ' ')" = "$honest_dev " ] && return 0
        sleep 0.1
    done
    fail "CN=$1's connection or device outlived it: connections $(conns_of "$1"), hub devices $(net_tun_devices hub | tr '\n' ' ')"
}

# ended_line CN: the hub's log line that ends CN's connection.
ended_line() { grep -E "CN=$1[ ,\"].*(closed|aborted|ended|failed|error)" "$hub_log" | tail -n 1 || true; }

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
# from a client (valid as the hub would send it).
attack fatal-empty 8443 fatal-empty send 010000 "$(scale 5)"
assert_aborted fatal-empty fatal-empty "the peer broke the framing: frame length out of bounds"
attack fatal-long 8443 fatal-long send 0105dd "$(scale 5)"
assert_aborted fatal-long fatal-long "the peer broke the framing: frame length out of bounds"
attack fatal-type 8443 fatal-type send 05000100 "$(scale 5)"
assert_aborted fatal-type fatal-type "the peer broke the framing: unexpected frame type"
attack fatal-config 8443 fatal-config send 10000d01057800010100040a08000218 "$(scale 5)"
assert_aborted fatal-config fatal-config "the peer broke the framing: unexpected frame type"
# The same CN back gets the same address: its lease was released, not taken twice.
attack fatal-empty-again 8443 fatal-empty hold 0
assert_contains "$(cat "$TEST_DIR/fatal-empty-again.out")" "config 10.8.0.3/24" "CN=fatal-empty's address when it came back"
wait_gone fatal-empty

note "2. truncated: cut mid-payload, close_notify mid-frame: aborted, never clean"
# A PACKET header of 84 bytes, then 2 of them.
attack cut 8443 cut cut 0100540102
assert_aborted cut cut "the peer closed without close_notify in the middle of a frame \\(truncated\\)"
attack notify 8443 notify notify 0100540102
assert_aborted notify notify "the peer closed with close_notify in the middle of a frame \\(truncated\\)"
# close_notify between frames stays the clean end it is.
attack notify-clean 8443 notify notify ""
assert_log "$hub_log" "subject=\"CN=notify\" .* close=\"closed by the peer\" result=completed " \
    "close_notify between frames is no longer a clean end"
wait_gone notify

note "3. slow: a header one byte a second, and a client that never answers: both end by dead-peer detection"
attack_bg slow 8443 slow slow 01005401020304050607080910111213
slow_pid=$ATTACK_PID
attack_bg silent 8443 silent silent "$(scale 10)"
silent_pid=$ATTACK_PID
sleep 1
honest_ok "while the slow and the silent client hold their connections"
for who in slow silent; do
    wait_exit "$([ $who = slow ] && echo "$slow_pid" || echo "$silent_pid")" "$(scale 15)" ||
        fail "the hub did not end CN=$who's connection: $(cat "$TEST_DIR/$who.out")"
    assert_aborted "$who" "$who" "the peer was silent for 3s \\(keepalives unanswered\\)"
    took=$(grep -E "subject=\"CN=$who\" " "$hub_log" | grep -oE ' duration=[0-9.]+' | tail -n 1 | cut -d= -f2)
    note "CN=$who ended after ${took}s"
    awk -v t="$took" -v max=$((5 * SLOW)) 'BEGIN { exit !(t >= 3 && t < max) }' ||
        fail "CN=$who's connection lasted ${took}s, not 3 keepalive intervals (1s each)"
done

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
