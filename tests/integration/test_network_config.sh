#!/usr/bin/env bash
# Network tunnels (type = network) as `ktlstund -t`, `ktlstun check-config` and the
# start see them: a hub and a client load, pass the checks, start and reload (the
# client listens nowhere, `ktlstun status` shows the hub's tunnel network and the
# client's device; a reload with a conflict is refused, the running tunnels stay); a conflict
# in a hub's address plan, a network key on a stream tunnel, a key of the other
# side (a hub's proxy too), a hub's proxy_protocol and two clients on one device are
# refused with FILE:LINE; a push route over the pool is a warning; a network client
# with proxy and proxy_credentials loads. The daemon makes TUN devices and routes: the test runs in a
# network namespace of its own, so the host's stay untouched.
if [ -z "${KTLSTUN_TEST_OWN_NETNS:-}" ]; then
    export KTLSTUN_TEST_OWN_NETNS=1
    exec unshare --net -- bash -c 'ip link set lo up && exec bash "$0" "$@"' "$0" "$@"
fi
source "$(dirname "$0")/lib.sh"

port=$(free_port)
mkdir -p "$TEST_DIR/conf"
hub() {
    ini_section hub "mode = server" "type = network" "listen = 127.0.0.1:$port" \
        "cert = $PKI/server.pem" "key = $PKI/server.key" "ca = $PKI/ca.pem" \
        "address = 10.8.0.1/24, fd00:8::1/64" "$@"
}
client() {
    local name=$1
    shift
    ini_section "$name" "mode = client" "type = network" "target = 127.0.0.1:$port" \
        "server_name = localhost" "cert = $PKI/alice.pem" "key = $PKI/alice.key" \
        "ca = $PKI/ca.pem" "$@"
}

# ---- a hub and a client: both checks pass, nothing on stderr
good="$TEST_DIR/conf/good.ini"
{
    global_section
    hub "push_routes = 192.168.1.0/24" "client_address = alice=10.8.0.7, alice=fd00:8::7" \
        "client_networks = site-b=192.168.2.0/24" "mtu = 1400" "keepalive = 10s" \
        "mss_clamp = yes"
    client to-hub "device = ktltest0" "reconnect_max = 10s"
} >"$good"
check_ok "$good"
[ -z "$ERR" ] || fail "the good configuration printed: $ERR"
note "a network hub and client pass ktlstund -t and ktlstun check-config"

# ---- it starts and reloads: the hub listens, the client has no listener
start_ktlstund "$good" "$TEST_DIR/good.log"
status=$("$KTLSTUN" status -c "$good")
grep -qE '^hub +server +127\.0\.0\.1:'"$port"' +network:10\.' <<<"$status" ||
    fail "the hub's status line does not show its tunnel network as its target: $status"
grep -qE '^to-hub +client +device:ktltest0 +127\.0\.0\.1:'"$port"' ' <<<"$status" ||
    fail "the client's status line does not show its device instead of a listen address: $status"
listeners=$(ss -Hltn "sport = :$port" | wc -l)
[ "$listeners" -ge 1 ] || fail "nothing listens on the hub's port $port"
assert_eq "$(reload "$KTLSTUND_PID" "$TEST_DIR/good.log")" reloaded "a reload of the network tunnels"
cp "$good" "$TEST_DIR/good.ini.orig"
echo "client_networks = bob=10.8.0.0/25" >>"$good"   # the last section is [to-hub]: misplaced
assert_eq "$(reload "$KTLSTUND_PID" "$TEST_DIR/good.log")" refused "a reload with a key of the hub on the client"
{ global_section; hub "client_networks = bob=10.8.0.0/25"; client to-hub "device = ktltest0"; } >"$good"
assert_eq "$(reload "$KTLSTUND_PID" "$TEST_DIR/good.log")" refused "a reload whose address plan overlaps"
grep -qF "network 10.8.0.0/25 behind bob overlaps the pool 10.8.0.0/24" "$TEST_DIR/good.log" ||
    fail "the refused reload does not say why"
cp "$TEST_DIR/good.ini.orig" "$good"
"$KTLSTUN" status -c "$good" | grep -qE '^to-hub +client' || fail "the refused reload lost [to-hub]"
stop_ktlstund "$KTLSTUND_PID"
note "it starts and reloads; ktlstun status shows the hub's tunnel network and the client's device"

# ---- conflicts in the hub's address plan, at the entry's line
plan="$TEST_DIR/conf/plan.ini"
{ global_section; hub "client_networks = bob=192.168.2.0/24" "client_address = alice=192.168.2.9"; } >"$plan"
check_error "$plan" "$(at "$plan" "client_address = alice=192.168.2.9" hub client_address)fixed address 192\.168\.2\.9/32 of alice lies in network 192\.168\.2\.0/24 behind bob"
rc=0
timeout "$(scale 20)" "$KTLSTUND" -f -c "$plan" >"$TEST_DIR/start-plan.log" 2>&1 || rc=$?
[ "$rc" != 0 ] && [ "$rc" != 124 ] || fail "the start of a conflicting plan exited $rc"
grep -qF "lies in network 192.168.2.0/24 behind bob" "$TEST_DIR/start-plan.log" ||
    fail "the start does not say why: $(cat "$TEST_DIR/start-plan.log")"

pool="$TEST_DIR/conf/pool.ini"
{ global_section; hub "client_networks = bob=10.8.0.0/25"; } >"$pool"
check_error "$pool" "$(at "$pool" "client_networks = bob=10.8.0.0/25" hub client_networks)network 10\.8\.0\.0/25 behind bob overlaps the pool 10\.8\.0\.0/24"

hubaddr="$TEST_DIR/conf/hubaddr.ini"
{ global_section; hub "client_address = alice=10.8.0.1"; } >"$hubaddr"
check_error "$hubaddr" "$(at "$hubaddr" "client_address = alice=10.8.0.1" hub client_address)fixed address 10\.8\.0\.1/32 of alice is the hub's"
note "address plan conflicts: refused by both checks and the start, at the entry's line"

# ---- keys in the wrong place
stream="$TEST_DIR/conf/stream.ini"
{ global_section; server_tunnel web "$port" "$(free_port)" "mtu = 1400"; } >"$stream"
check_error "$stream" "$(at "$stream" "mtu = 1400" web mtu)only for type = network"

sides="$TEST_DIR/conf/sides.ini"
{
    global_section
    hub "target = 127.0.0.1:80" "device = ktl9" "proxy = http://127.0.0.1:3128" "proxy_protocol = v2"
    client to-hub "listen = 127.0.0.1:$(free_port)" "push_routes = 10.1.0.0/16"
} >"$sides"
check_error "$sides" \
    "$(at "$sides" "target = 127.0.0.1:80" hub target)a network tunnel has no target" \
    "$(at "$sides" "device = ktl9" hub device)only valid in client mode" \
    "$(at "$sides" "proxy = http://127.0.0.1:3128" hub proxy)only valid in client mode" \
    "$(at "$sides" "proxy_protocol = v2" hub proxy_protocol)a network tunnel has no target to send a PROXY header to" \
    "$(at "$sides" "push_routes = 10.1.0.0/16" to-hub push_routes)only valid in server mode" \
    "to-hub\\] listen: a network client has no listener"

values="$TEST_DIR/conf/values.ini"
{ global_section; hub "mtu = 1200" "push_routes = 10.1.2.0/16"; } >"$values"
check_error "$values" \
    "$(at "$values" "mtu = 1200" hub mtu)1200 is too small for IPv6" \
    "$(at "$values" "push_routes = 10.1.2.0/16" hub push_routes)'10\.1\.2\.0/16' is not a network"

devices="$TEST_DIR/conf/devices.ini"
{ global_section; hub; client one "device = ktlsame"; client two "device = ktlsame"; } >"$devices"
check_error "$devices" "\\[two\\] device: ktlsame is also the device of \\[one\\]"
note "network keys on a stream tunnel, keys of the other side, bad values, one device twice: refused at their lines"

# ---- a network client through an HTTP proxy loads (its hub refuses one: above)
printf 'tunnel:pw\n' >"$TEST_DIR/conf/proxy.cred"
chmod 600 "$TEST_DIR/conf/proxy.cred"
viaproxy="$TEST_DIR/conf/viaproxy.ini"
{
    global_section
    hub
    client to-hub "proxy = http://127.0.0.1:3128" "proxy_credentials = $TEST_DIR/conf/proxy.cred"
} >"$viaproxy"
check_ok "$viaproxy"
note "a network client with proxy and proxy_credentials passes both checks"

# ---- a push route over the pool is a warning
warn="$TEST_DIR/conf/warn.ini"
{ global_section; hub "push_routes = 10.8.0.0/16"; } >"$warn"
check_ok "$warn" "$(at "$warn" "push_routes = 10.8.0.0/16" hub push_routes)warning: 10\.8\.0\.0/16 overlaps the pool 10\.8\.0\.0/24"
note "a push route over the pool: a warning"

# ---- a server that completes the handshake but never sends its CONFIG: the client
# gives up after twice handshake_timeout, says why, and connects again
silent_port=$(free_port)
mkfifo "$TEST_DIR/silent.in"
sleep "$(scale 60)" >"$TEST_DIR/silent.in" &
silent_hold=$!
openssl s_server -quiet -naccept 2 -accept "127.0.0.1:$silent_port" -cert "$PKI/server.crt" \
    -cert_chain "$PKI/server.pem" \
    -key "$PKI/server.key" -CAfile "$PKI/ca.pem" -Verify 1 \
    <"$TEST_DIR/silent.in" >"$TEST_DIR/silent-server.out" 2>&1 &
silent_server=$!
wait_listening "$silent_port" || fail "openssl s_server did not listen"
silent="$TEST_DIR/conf/silent.ini"
{
    global_section
    ini_section silent "mode = client" "type = network" "target = 127.0.0.1:$silent_port" \
        "server_name = localhost" "cert = $PKI/alice.pem" "key = $PKI/alice.key" \
        "ca = $PKI/ca.pem" "handshake_timeout = 1s" "reconnect_max = 1s"
} >"$silent"
start_ktlstund "$silent" "$TEST_DIR/silent.log"
wait_for_log "$TEST_DIR/silent.log" 'no configuration from the hub within 2s' "$(scale 15)" 2 ||
    fail "the client did not give up on a silent server twice: $(tail -n 20 "$TEST_DIR/silent.log")"
grep -E 'no configuration from the hub within 2s' "$TEST_DIR/silent.log" | grep -q 'result=error' ||
    fail "giving up on a silent server is not an error in the audit line: $(grep 'within 2s' "$TEST_DIR/silent.log")"
stop_ktlstund "$KTLSTUND_PID"
kill "$silent_server" "$silent_hold" 2>/dev/null || true
wait "$silent_server" "$silent_hold" 2>/dev/null || true
note "a server that never sends its configuration: the client ends the connection as an error and connects again"
