#!/usr/bin/env bash
# SIGTERM: the daemon stops accepting at once, lets transfers in flight finish, then
# exits 0; with a connection that never ends it exits 0 after shutdown_timeout.
source "$(dirname "$0")/lib.sh"

echo_port=$(free_port)
p_srv=$(free_port)
p_cli=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"

write_conf() {  # FILE SHUTDOWN_TIMEOUT
    {
        global_section "shutdown_timeout = $2"
        server_tunnel srv "$p_srv" "$echo_port"
        client_tunnel cli "$p_cli" "$p_srv"
    } >"$1"
}

# ---- drain: transfers in flight finish
write_conf "$TEST_DIR/drain.ini" 20
log="$TEST_DIR/drain.log"
start_ktlstund "$TEST_DIR/drain.ini" "$log"
pid=$KTLSTUND_PID
spawn "$TEST_DIR/load.out" "$TOOLS/load_client" "127.0.0.1:$p_cli" --connections 6 \
    --min-bytes 400000 --max-bytes 1500000 --seed 61 --duration-hint 4 --timeout "$(scale 40)"
load_pid=$SPAWN_PID
wait_for_log "$TEST_DIR/echo.out" '^accepted ' "$(scale 5)" 6 || fail "transfers did not connect"
sleep 1
term_at=$(now_ms)
kill -TERM "$pid"

# It stops accepting: new connections are refused (or closed unanswered) promptly.
sleep 0.5
if plain_echo "127.0.0.1:$p_cli" "after-term-$RANDOM" 2>/dev/null; then
    fail "a new connection was relayed after SIGTERM"
fi

rc=0
wait_exit "$load_pid" "$(scale 40)" || rc=$?
[ "$rc" = 0 ] || fail "transfers in flight at SIGTERM did not finish intact (exit $rc): $(tail -n 7 "$TEST_DIR/load.out")"
load_done=$(now_ms)
alive_after_load=0
alive "$pid" && alive_after_load=1
rc=0
wait_exit "$pid" "$(scale 15)" || rc=$?
[ "$rc" != 255 ] || fail "ktlstund did not exit after its connections finished"
assert_eq "$rc" 0 "ktlstund exit status after draining"
note "drained: transfers finished $((load_done - term_at)) ms after SIGTERM (daemon still up then: $alive_after_load)"
[ $((load_done - term_at)) -ge 1000 ] || fail "transfers ended too soon after SIGTERM to prove draining"

# ---- shutdown_timeout: a connection that never ends does not hold the daemon
write_conf "$TEST_DIR/stuck.ini" 2
log2="$TEST_DIR/stuck.log"
start_ktlstund "$TEST_DIR/stuck.ini" "$log2"
pid=$KTLSTUND_PID
spawn "$TEST_DIR/stuck.out" bash -c "exec 3<>/dev/tcp/127.0.0.1/$p_cli; printf 'stuck\n' >&3; read -r l <&3; echo \"got \$l\"; sleep 60"
stuck_pid=$SPAWN_PID
wait_for_log "$TEST_DIR/stuck.out" '^got stuck$' "$(scale 5)" || fail "the stuck connection did not get its echo"
start=$(now_ms)
kill -TERM "$pid"
rc=0
wait_exit "$pid" "$(scale 20)" || rc=$?
elapsed=$(( $(now_ms) - start ))
[ "$rc" != 255 ] || fail "ktlstund ignored shutdown_timeout = 2 s with a connection open"
assert_eq "$rc" 0 "ktlstund exit status after shutdown_timeout"
note "exited $elapsed ms after SIGTERM with a connection open (shutdown_timeout 2 s)"
[ "$elapsed" -ge 1500 ] || fail "exited after $elapsed ms: did not wait for the open connection"
[ "$elapsed" -le $((5000 * SLOW)) ] || fail "exited only after $elapsed ms (shutdown_timeout 2 s)"
kill "$stuck_pid" 2>/dev/null || true

note "SIGTERM ok"
