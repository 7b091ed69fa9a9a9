#!/usr/bin/env bash
# The userspace relay (kTLS off) at its edges:
#   a plain client whose data and FIN arrive while the client tunnel is still in its
#   TLS handshake: both are passed on (the relay reads sides it never got an event for)
#   and the connection ends at once, not when a timeout gives up.
#   plain client → [cli] → slow hop (1 s before it connects on) → [srv] → echo_server
#   a connection that carries one short line: its tunnels take no bulk-transfer
#   buffers (status buffer_bytes at most the two 64 KiB direction buffers).
#   a client that stops reading its echo for a while in a 64 MiB transfer: each relay
#   direction then holds at most its one 64 KiB buffer, plus 68 KiB that gather the
#   records of one SSL_write and OpenSSL's 68 KiB read-ahead buffer (status
#   buffer_bytes), and the workers do not grow; every byte comes back intact once it
#   reads again.
#   the same connection, kept open but idle for 2 s: its tunnels give their buffers
#   back (buffer_bytes 0).
#   plain client → [direct] → [srv] → echo_server
# As root it runs in a network namespace of its own whose TCP buffers grow to 1 MiB at
# most: on loopback, kernels that let them grow to 32 MiB can hold the whole 64 MiB in
# socket buffers, and the stall the test looks at would never come.
if [ "$EUID" = 0 ] && [ -z "${KTLSTUN_RELAY_NETNS:-}" ]; then
    exec env KTLSTUN_RELAY_NETNS=1 unshare --net -- "$0" "$@"
fi
if [ -n "${KTLSTUN_RELAY_NETNS:-}" ]; then
    ip link set lo up
    sysctl -q -w net.ipv4.tcp_rmem="4096 131072 1048576" net.ipv4.tcp_wmem="4096 16384 1048576"
fi
source "$(dirname "$0")/lib.sh"

echo_port=$(free_port)
srv_port=$(free_port)
slow_port=$(free_port)
cli_port=$(free_port)
direct_port=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"

# The slow hop accepts at once (the ClientHello waits in its socket) and only after a
# second connects on, so the client tunnel's handshake takes at least that long.
spawn "$TEST_DIR/slow.out" socat "TCP-LISTEN:$slow_port,bind=127.0.0.1,reuseaddr,fork" \
    "SYSTEM:sleep 1; exec socat - TCP\\:127.0.0.1\\:$srv_port"
wait_listening "$slow_port" || fail "the slow hop did not listen: $(cat "$TEST_DIR/slow.out")"

conf="$TEST_DIR/ktlstund.ini"
{
    global_section
    server_tunnel srv "$srv_port" "$echo_port" "ktls = off"
    client_tunnel direct "$direct_port" "$srv_port" "ktls = off"
    client_tunnel cli "$cli_port" "$slow_port" "ktls = off"
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

# buffers TUNNEL: buffer_bytes of TUNNEL's connections, one per line.
buffers() {
    "$KTLSTUN" status --json -c "$conf" | jq -r ".connections[] | select(.tunnel == \"$1\") | .buffer_bytes"
}
workers_rss_kb() { ps -o rss= --ppid "$pid" | awk '{s += $1} END {print s + 0}'; }

spawn_fed small "exec socat -t 30 - TCP:127.0.0.1:$direct_port"
small=$SPAWN_PID small_fd=$FED_FD
printf 'small-line\n' >&"$small_fd"
wait_for_log "$TEST_DIR/small.out" '^small-line$' "$(scale 5)" || fail "no echo of a short line"
for b in $(buffers direct; buffers srv); do
    [ "$b" -le 131072 ] || fail "a tunnel that carried one short line holds $b bytes of buffer"
done
exec {small_fd}>&-
wait_exit "$small" "$(scale 10)" || fail "short-line connection did not end"

head -c $((64 * 1024 * 1024)) /dev/urandom >"$TEST_DIR/payload"
# The reader takes nothing (past a 64 KiB pipe) until the stalled transfer has been
# looked at ($TEST_DIR/read-now), then everything.
spawn_fed slow-reader "socat -t 60 - TCP:127.0.0.1:$direct_port | {
    while [ ! -e '$TEST_DIR/read-now' ]; do sleep 0.1; done; cat >'$TEST_DIR/echoed'; }"
reader=$SPAWN_PID payload_fd=$FED_FD
rss_before=$(workers_rss_kb)
cat "$TEST_DIR/payload" >&"$payload_fd" &
writer=$!
PIDS+=("$writer")
# Socket buffers on loopback hold megabytes: wait until the transfer stops moving.
moved=-1
for ((i = 0; i < 20 * SLOW; i++)); do
    sleep 0.25
    now=$("$KTLSTUN" status --json -c "$conf" | jq -r '[.connections[] | select(.tunnel == "direct") | .bytes_in] | add')
    [ "$now" = "$moved" ] && break
    moved=$now
done
note "stalled after $moved bytes"
alive "$writer" || fail "64 MiB went through although the reader reads nothing: no backpressure"
stalled=$(buffers direct; buffers srv)
held=0
for b in $stalled; do
    [ "$b" -le $((2 * 65536 + 2 * 69632)) ] \
        || fail "a stalled tunnel holds $b bytes of buffer, more than 2 x 64 KiB + 2 x 68 KiB"
    held=$((held + b))
done
[ "$held" -gt 0 ] || fail "stalled tunnels report no buffer held (buffer_bytes: $stalled)"
rss_stalled=$(workers_rss_kb)
note "stalled: buffer_bytes $(echo $stalled), workers RSS ${rss_before} -> ${rss_stalled} KiB"
# Buffering what the reader does not take would grow them by tens of MiB; a first bulk
# transfer maps in some library pages. Sanitizer builds keep freed memory in
# quarantine: their RSS says nothing here.
if [ "$SLOW" = 1 ] && [ $((rss_stalled - rss_before)) -gt 16384 ]; then
    fail "workers grew by $((rss_stalled - rss_before)) KiB while a reader stalled"
fi
touch "$TEST_DIR/read-now"
wait "$writer" || fail "writing the payload failed"
for ((i = 0; i < 200 * SLOW; i++)); do
    [ "$(stat -c %s "$TEST_DIR/echoed" 2>/dev/null || echo 0)" -ge $((64 * 1024 * 1024)) ] && break
    sleep 0.05
done
sleep "$(scale 2)"
idle=$(buffers direct; buffers srv)
[ "$(echo $idle)" = "0 0" ] || fail "tunnels idle for 2 s still hold buffers (buffer_bytes: $(echo $idle))"
exec {payload_fd}>&-
wait_exit "$reader" "$(scale 20)" || fail "slow reader did not finish"
cmp -s "$TEST_DIR/payload" "$TEST_DIR/echoed" \
    || fail "64 MiB echo differs ($(stat -c %s "$TEST_DIR/echoed") bytes back)"
note "64 MiB with a stalled reader ok; idle tunnels hold no buffers"

stop_ktlstund "$pid"
note "userspace relay ok"
