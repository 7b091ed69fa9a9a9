#!/usr/bin/env bash
# No client of the metrics listener or of a worker's status socket can stall the
# process that serves it: with clients trickling one byte every 0.9 s at both (and a
# flood of half-open handshakes making the worker's status too large for its socket
# buffer), /metrics and `ktlstun status` still answer within a second each, the slow
# clients are cut at their 2 s deadline, the watchdog is fed every half second and a
# tunnel keeps carrying traffic.
source "$(dirname "$0")/lib.sh"

echo_port=$(free_port)
p_srv=$(free_port)
p_cli=$(free_port)
p_flood=$(free_port)
metrics_port=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
start_notify_capture "$TEST_DIR/notify.sock" "$TEST_DIR/notify.out"

# A long tunnel name makes each connection's status line long.
flood_name=flood-of-half-open-handshakes-with-a-rather-long-tunnel-name
conf="$TEST_DIR/ktlstund.ini"
{
    global_section "metrics_listen = $metrics_port"
    server_tunnel srv "$p_srv" "$echo_port"
    client_tunnel cli "$p_cli" "$p_srv"
    server_tunnel "$flood_name" "$p_flood" "$echo_port" "handshake_timeout = 120s"
} >"$conf"
log="$TEST_DIR/ktlstund.log"
notes="$TEST_DIR/notify.out"
NOTIFY_SOCKET="$TEST_DIR/notify.sock" WATCHDOG_USEC=1000000 start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID

# 3000 silent connections from as many sources, held for the whole test.
spawn "$TEST_DIR/flood.out" "$TOOLS/conn_flood" "127.0.0.1:$p_flood" --connections 3000 \
    --sources 127.0.100.1-127.0.111.188 --settle-ms 2000 --hold 100
flood=$SPAWN_PID
wait_for_log "$TEST_DIR/flood.out" '^conn_flood: ' "$(scale 20)" || fail "conn_flood did not report"
note "$(head -n 1 "$TEST_DIR/flood.out")"
assert_log "$TEST_DIR/flood.out" '^conn_flood: 3000 open, 0 closed, 0 failed$' "the flood's connections"
# The slow status clients go to the worker holding the most of them.
status_json=$("$KTLSTUN" status --json -c "$conf")
victim=$(echo "$status_json" | jq -r '.workers | max_by(.connections) | .pid')
victim_conns=$(echo "$status_json" | jq -r '.workers | max_by(.connections) | .connections')
status_bytes=$(socat -u "UNIX-CONNECT:$TEST_DIR/run/status-worker-$victim.sock" - | wc -c)
note "worker $victim holds $victim_conns connections; its status is $status_bytes bytes"
[ "$status_bytes" -gt 300000 ] || fail "the status of worker $victim is only $status_bytes bytes"
start=$(now_ms)
"$KTLSTUN" status --json -c "$conf" >/dev/null
note "ktlstun status takes $(( $(now_ms) - start )) ms without slow clients"

# Traffic through the tunnel pair for the whole test, paced over 8 s.
spawn "$TEST_DIR/load.out" "$TOOLS/load_client" "127.0.0.1:$p_cli" --connections 4 --min-bytes 400000 \
    --max-bytes 400000 --seed 81 --duration-hint 8 --timeout "$(scale 30)"
load=$SPAWN_PID

test_start=$(now_ms)
spawn "$TEST_DIR/slow-metrics.out" "$TOOLS/slow_client" "127.0.0.1:$metrics_port" --repeat 3 --give-up 10
slow_metrics=$SPAWN_PID
slow_status=()
for i in 1 2; do
    spawn "$TEST_DIR/slow-status-$i.out" "$TOOLS/slow_client" "unix:$TEST_DIR/run/status-worker-$victim.sock" \
        --repeat 3 --give-up 10
    slow_status+=("$SPAWN_PID")
done

# Meanwhile every fetch answers within a second.
fetches=0 worst_metrics=0 worst_status=0
while [ $(( $(now_ms) - test_start )) -lt 7000 ]; do
    start=$(now_ms)
    curl -sS --max-time 5 "http://127.0.0.1:$metrics_port/metrics" >"$TEST_DIR/metrics.txt" \
        || fail "fetch $fetches of /metrics failed after $(( $(now_ms) - start )) ms"
    elapsed=$(( $(now_ms) - start ))
    [ "$elapsed" -gt "$worst_metrics" ] && worst_metrics=$elapsed
    grep -q '^ktlstun_workers 2$' "$TEST_DIR/metrics.txt" || fail "fetch $fetches of /metrics: no ktlstun_workers"
    start=$(now_ms)
    timeout 5 "$KTLSTUN" status --json -c "$conf" >"$TEST_DIR/status.json" \
        || fail "ktlstun status $fetches failed after $(( $(now_ms) - start )) ms"
    elapsed=$(( $(now_ms) - start ))
    [ "$elapsed" -gt "$worst_status" ] && worst_status=$elapsed
    assert_eq "$(jq '.workers | length' "$TEST_DIR/status.json")" 2 "workers answering ktlstun status $fetches"
    fetches=$((fetches + 1))
done
note "$fetches fetches each of /metrics and ktlstun status; slowest $worst_metrics ms and $worst_status ms"
[ "$worst_metrics" -lt $((1000 * SLOW)) ] || fail "a /metrics fetch took $worst_metrics ms"
[ "$worst_status" -lt $((1000 * SLOW)) ] || fail "a ktlstun status took $worst_status ms"

# The slow clients were cut at their deadline (2 s), each time.
for out in "$TEST_DIR/slow-metrics.out" "$TEST_DIR"/slow-status-*.out; do
    wait_for_log "$out" '^slow_client: ' "$(scale 15)" 3 || fail "$out: $(cat "$out")"
    note "$(basename "$out" .out): $(grep -o '[a-z ]* after [0-9]* ms' "$out" | tr '\n' ',')"
    while read -r line; do
        [[ $line =~ ^slow_client:\ cut\ after\ ([0-9]+)\ ms$ ]] || fail "$out: $line"
        ms=${BASH_REMATCH[1]}
        [ "$ms" -le $((3500 * SLOW)) ] || fail "$out: a slow client was cut only after $ms ms"
    done <"$out"
done
while read -r line; do
    ms=$(echo "$line" | grep -o '[0-9]*')
    [ "$ms" -ge 1500 ] || fail "the slow metrics client was cut after $ms ms, before its 2 s deadline"
done <"$TEST_DIR/slow-metrics.out"
wait_exit "$slow_metrics" 5 || fail "slow metrics client: $(cat "$TEST_DIR/slow-metrics.out")"
for p in "${slow_status[@]}"; do
    wait_exit "$p" 5 || fail "slow status client did not end"
done

# The watchdog (WatchdogSec=1s) never went a second without a ping.
gap=$(awk '/WATCHDOG=1/ { t = $1; if (last && t - last > gap) gap = t - last; last = t }
      END { print gap + 0 }' "$notes")
pings=$(log_count "$notes" 'WATCHDOG=1')
note "$pings watchdog pings, longest gap $gap ms"
[ "$gap" -lt 1000 ] || fail "the watchdog went $gap ms without a ping"

rc=0
wait_exit "$load" "$(scale 30)" || rc=$?
[ "$rc" = 0 ] || fail "tunnel traffic suffered (exit $rc): $(tail -n 3 "$TEST_DIR/load.out")"
note "$(tail -n 1 "$TEST_DIR/load.out")"
alive "$pid" || fail "ktlstund died"
# The flood ends before the stop, which then need not wait out shutdown_timeout for
# its 3000 connections.
kill "$flood" 2>/dev/null || true
stop_ktlstund "$pid"
note "slow clients ok"
