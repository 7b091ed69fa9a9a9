#!/usr/bin/env bash
# The userspace relay (kTLS off) at its edges:
#   a plain client whose data and FIN arrive while the client tunnel is still in its
#   TLS handshake: both are passed on (the relay reads sides it never got an event for)
#   and the connection ends at once, not when a timeout gives up.
#   plain client → [cli] → slow hop (1 s before it connects on) → [srv] → echo_server
source "$(dirname "$0")/lib.sh"

echo_port=$(free_port)
srv_port=$(free_port)
slow_port=$(free_port)
cli_port=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"

# The slow hop accepts at once (the ClientHello waits in its socket) and only after a
# second connects on, so the client tunnel's handshake takes at least that long.
spawn "$TEST_DIR/slow.out" socat "TCP-LISTEN:$slow_port,bind=127.0.0.1,reuseaddr,fork" \
    "SYSTEM:sleep 1; exec socat - TCP\\:127.0.0.1\\:$srv_port"
for ((i = 0; i < 100; i++)); do
    [ -n "$(ss -Hltn "sport = :$slow_port")" ] && break
    sleep 0.05
done

conf="$TEST_DIR/ktlstund.ini"
{
    global_section
    cat <<EOF
[srv]
mode = server
listen = 127.0.0.1:$srv_port
target = 127.0.0.1:$echo_port
cert = $PKI/server.pem
key = $PKI/server.key
ca = $PKI/ca.pem
ktls = off

[cli]
mode = client
listen = 127.0.0.1:$cli_port
target = 127.0.0.1:$slow_port
server_name = localhost
cert = $PKI/alice.pem
key = $PKI/alice.key
ca = $PKI/ca.pem
ktls = off
EOF
} >"$conf"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID

# socat writes the line and its FIN at once, long before the handshake is done; with
# the FIN lost it would wait out -t with the echo in hand.
token="fin-in-handshake-$RANDOM"
started=$(now_ms)
out=$(printf '%s\n' "$token" | timeout "$(scale 40)" socat -t "$(scale 30)" - "TCP:127.0.0.1:$cli_port" 2>&1) \
    || fail "socat through the slow handshake failed: $out"
elapsed=$(($(now_ms) - started))
assert_eq "$out" "$token" "echo of data sent during the handshake"
[ "$elapsed" -lt "$(scale 8000)" ] \
    || fail "connection took ${elapsed} ms to end: the FIN sent during the handshake was not passed on"
assert_log "$log" 'info: audit tunnel=cli .*close="closed by both sides"' "client tunnel did not close by both sides"
line=$(audit_lines "$log" cli | tail -n 1)
assert_eq "$(audit_field "$line" bytes_in)" $((${#token} + 1)) "client tunnel bytes_in"
note "FIN during the handshake passed on after ${elapsed} ms"

stop_ktlstund "$pid"
note "userspace relay ok"
