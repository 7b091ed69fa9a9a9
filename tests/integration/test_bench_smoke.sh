#!/usr/bin/env bash
# make bench's tools, each run once and tiny against a real ktlstund pair (server tunnel
# in front of an echo backend, client tunnel in front of that), checking that what they
# print is sane and that they fail when the path they measure is broken. The full
# benchmark (bench/run.sh, with stunnel/haproxy/socat/iperf3) is not part of check.
source "$(dirname "$0")/lib.sh"

bench_tools="$(dirname "$KTLSTUND")/bench"
for tool in handshake_load pingpong idle_conns; do
    [ -x "$bench_tools/$tool" ] || fail "$bench_tools/$tool is not built"
done

echo_port=$(free_port)
server_port=$(free_port)
client_port=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
conf="$TEST_DIR/ktlstund.ini"
{
    global_section
    # The load tools come from one address: per-source limits off, as in make bench.
    server_tunnel server "$server_port" "$echo_port" "tls_min_version = 1.3" "ciphersuites = TLS_AES_128_GCM_SHA256" \
        "max_connections_per_source = 0" "handshake_rate_per_source = 0"
    client_tunnel client "$client_port" "$server_port" "tls_min_version = 1.3" "ciphersuites = TLS_AES_128_GCM_SHA256"
} >"$conf"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"

# field LINE KEY: value of KEY=VALUE in LINE
field() { [[ $1 =~ (^|[[:space:]])$2=([^[:space:]]*) ]] && echo "${BASH_REMATCH[2]}"; }
# less_or_equal A B: A <= B for decimals
less_or_equal() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 <= b + 0) }'; }

note "handshake_load: full mTLS handshakes with alice's certificate, 4 at a time"
rc=0
out=$("$bench_tools/handshake_load" --connect "127.0.0.1:$server_port" --cert "$PKI/alice.pem" \
    --key "$PKI/alice.key" --concurrency 4 --duration 1 2>"$TEST_DIR/hl.err") || rc=$?
note "$out"
assert_eq "$rc" 0 "handshake_load exit status ($(cat "$TEST_DIR/hl.err"))"
handshakes=$(field "$out" handshakes)
[ "${handshakes:-0}" -ge 5 ] || fail "handshake_load completed only '${handshakes}' handshakes in 1 s"
assert_eq "$(field "$out" failed)" 0 "failed handshakes"
assert_eq "$(field "$out" resumed)" 0 "resumed sessions (every handshake must be a full one)"
assert_eq "$(field "$out" protocol)" TLSv1.3 "negotiated protocol"
assert_eq "$(field "$out" cipher)" TLS_AES_128_GCM_SHA256 "negotiated cipher"
[ -n "$(field "$out" group)" ] && [ "$(field "$out" group)" != - ] || fail "no key-exchange group reported"
# Each counted handshake was also a relayed echo: the server tunnel logged it.
wait_for_log "$log" 'info: audit tunnel=server ' 5 "$handshakes" || fail "fewer audit lines than handshakes"

note "handshake_load verifying the server too (--ca, --server-name)"
out=$("$bench_tools/handshake_load" --connect "127.0.0.1:$server_port" --cert "$PKI/alice.pem" \
    --key "$PKI/alice.key" --ca "$PKI/ca.pem" --server-name localhost --concurrency 2 --duration 0.5) \
    || fail "handshake_load with server verification failed: $out"
[ "$(field "$out" handshakes)" -ge 1 ] || fail "no verified handshake: $out"

note "handshake_load with a certificate the server refuses: counted as failures, exit 1"
rc=0
out=$("$bench_tools/handshake_load" --connect "127.0.0.1:$server_port" --cert "$PKI/unknownca.pem" \
    --key "$PKI/unknownca.key" --concurrency 2 --duration 0.5 2>"$TEST_DIR/hl-bad.err") || rc=$?
note "$out"
assert_eq "$rc" 1 "handshake_load exit status with a refused certificate"
assert_eq "$(field "$out" handshakes)" 0 "handshakes counted with a refused certificate"
[ "$(field "$out" failed)" -ge 1 ] || fail "refused handshakes not counted as failed: $out"

note "pingpong: 64-byte round trips through the tunnel pair"
out=$("$bench_tools/pingpong" --connect "127.0.0.1:$client_port" --size 64 --count 300 --warmup 10) \
    || fail "pingpong through the tunnel pair failed"
note "$out"
assert_eq "$(field "$out" count)" 300 "pingpong round trips"
p50=$(field "$out" p50_us) p99=$(field "$out" p99_us) max=$(field "$out" max_us) min=$(field "$out" min_us)
less_or_equal 0.1 "$min" || fail "pingpong min $min µs is not a real round trip"
less_or_equal "$min" "$p50" && less_or_equal "$p50" "$p99" && less_or_equal "$p99" "$max" \
    || fail "pingpong percentiles out of order: $out"

note "pingpong against a port nobody listens on fails"
dead_port=$(free_port)
if "$bench_tools/pingpong" --connect "127.0.0.1:$dead_port" --count 10 2>/dev/null; then
    fail "pingpong succeeded without a server"
fi

note "idle_conns: 20, then 50 idle tunnels held open, then closed"
spawn_fed idle "exec \"$bench_tools/idle_conns\" --connect 127.0.0.1:$client_port --steps 20,50 --timeout 20"
idle_pid=$SPAWN_PID control=$FED_FD
wait_for_log "$TEST_DIR/idle.out" '^established 20 seconds=' 20 1 "$idle_pid" || fail "idle_conns: $(cat "$TEST_DIR/idle.out")"
# Established means the whole path is up: the backend holds a connection for each.
[ "$(grep -c '^accepted ' "$TEST_DIR/echo.out")" -ge 20 ] || fail "echo backend saw fewer than 20 connections"
echo >&"$control"
wait_for_log "$TEST_DIR/idle.out" '^established 50 seconds=' 20 1 "$idle_pid" || fail "idle_conns: $(cat "$TEST_DIR/idle.out")"
exec {control}>&-
rc=0
wait_exit "$idle_pid" 20 || rc=$?
assert_eq "$rc" 0 "idle_conns exit status ($(cat "$TEST_DIR/idle.out"))"
assert_contains "$(cat "$TEST_DIR/idle.out")" "closed 50" "idle_conns closing line"

note "idle_conns through a dead port fails instead of waiting"
rc=0
"$bench_tools/idle_conns" --connect "127.0.0.1:$dead_port" --steps 5 --timeout 5 </dev/null >/dev/null 2>&1 || rc=$?
assert_eq "$rc" 1 "idle_conns exit status without a server"

# The harness itself: syntax only (a run needs the peers make bench installs).
if command -v python3 >/dev/null; then
    python3 -c "import ast, sys; ast.parse(open(sys.argv[1]).read())" "$(dirname "$0")/../../bench/bench.py" \
        || fail "bench/bench.py does not parse"
fi
bash -n "$(dirname "$0")/../../bench/run.sh" || fail "bench/run.sh has a syntax error"

stop_ktlstund "$KTLSTUND_PID"
note "bench tools smoke test passed"
