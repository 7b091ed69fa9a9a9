#!/usr/bin/env bash
# max_connections, handshake_timeout and idle_timeout.
source "$(dirname "$0")/lib.sh"

echo_port=$(free_port)
p_max=$(free_port)
p_max_cli=$(free_port)
p_hs=$(free_port)
p_idle=$(free_port)
p_idle_cli=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"

conf="$TEST_DIR/ktlstund.ini"
{
    global_section
    server_tunnel max "$p_max" "$echo_port" "max_connections = 2"
    client_tunnel max-cli "$p_max_cli" "$p_max"
    server_tunnel hs "$p_hs" "$echo_port" "handshake_timeout = 2s"
    server_tunnel idle "$p_idle" "$echo_port" "idle_timeout = 2s"
    client_tunnel idle-cli "$p_idle_cli" "$p_idle"
} >"$conf"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID
accepted() { grep -c '^accepted ' "$TEST_DIR/echo.out" || true; }

# ---- max_connections = 2: two held connections, the third is refused
spawn "$TEST_DIR/hold.out" "$TOOLS/load_client" "127.0.0.1:$p_max_cli" --connections 2 \
    --min-bytes 200000 --max-bytes 200000 --seed 51 --duration-hint 6 --timeout "$(scale 30)"
hold_pid=$SPAWN_PID
wait_for_log "$TEST_DIR/echo.out" '^accepted ' "$(scale 5)" 2 || fail "the two held connections did not reach the backend"
before=$(accepted)
client_args alice
if tls_echo "127.0.0.1:$p_max" "third-$RANDOM" "$TEST_DIR/third.out" "${CLIENT_ARGS[@]}"; then
    fail "a third connection got through [max] (max_connections = 2)"
fi
assert_log "$log" 'warning: refused tunnel=max peer=127\.0\.0\.1:[0-9]+ reason="max_connections \(2\) reached"' \
    "max_connections refusal"
assert_eq "$(accepted)" "$before" "backend connections for the refused third connection"
# Every excess connection is closed at once (the log line may be rate-limited, the
# refusal may not).
for i in 1 2 3 4 5; do
    start=$(now_ms)
    timeout "$(scale 5)" bash -c "exec 3<>/dev/tcp/127.0.0.1/$p_max; cat <&3 >/dev/null" 2>/dev/null \
        || fail "excess connection $i to [max] was not closed within $(scale 5) s"
    elapsed=$(( $(now_ms) - start ))
    [ "$elapsed" -le $((1500 * SLOW)) ] || fail "excess connection $i closed only after $elapsed ms (should be at once)"
done
assert_eq "$(accepted)" "$before" "backend connections for the excess connections"
rc=0
wait_exit "$hold_pid" "$(scale 30)" || rc=$?
[ "$rc" = 0 ] || fail "the held connections were disturbed by the refused one (exit $rc): $(tail -n 3 "$TEST_DIR/hold.out")"
# once they are gone the tunnel admits again
sleep 0.3
tls_echo "127.0.0.1:$p_max" "again-$RANDOM" "$TEST_DIR/again.out" "${CLIENT_ARGS[@]}" \
    || fail "[max] still refuses after its connections closed (slots not released)"

# ---- handshake_timeout = 2s: a silent client is dropped after ~2 s
start=$(now_ms)
timeout "$(scale 15)" bash -c "exec 3<>/dev/tcp/127.0.0.1/$p_hs; cat <&3 >/dev/null" 2>/dev/null \
    || fail "silent client not disconnected by handshake_timeout within $(scale 15) s"
elapsed=$(( $(now_ms) - start ))
note "silent client dropped after $elapsed ms"
[ "$elapsed" -ge 1500 ] || fail "silent client dropped after $elapsed ms, before handshake_timeout (2 s)"
[ "$elapsed" -le $((4500 * SLOW)) ] || fail "silent client dropped only after $elapsed ms (handshake_timeout 2 s)"
assert_log "$log" 'warning: refused tunnel=hs peer=127\.0\.0\.1:[0-9]+ reason="handshake timed out after 2s"' \
    "handshake timeout reason"

# ---- idle_timeout = 2s: an idle relayed connection is closed; a busy one is not
start=$(now_ms)
out=$(timeout "$(scale 15)" bash -c "exec 3<>/dev/tcp/127.0.0.1/$p_idle_cli; printf 'idle-hello\n' >&3;
      read -r line <&3; echo \"\$line\"; cat <&3 >/dev/null; echo eof" 2>/dev/null) || true
elapsed=$(( $(now_ms) - start ))
note "idle connection closed after $elapsed ms"
assert_eq "$out" $'idle-hello\neof' "idle connection: echo then EOF"
[ "$elapsed" -ge 1500 ] || fail "idle connection closed after $elapsed ms, before idle_timeout (2 s)"
[ "$elapsed" -le $((5000 * SLOW)) ] || fail "idle connection closed only after $elapsed ms (idle_timeout 2 s)"
assert_log "$log" 'info: audit tunnel=idle .* close="idle timeout"' "audit close=\"idle timeout\" for [idle]"

# A transfer paced over 5 s (never idle for 2 s) must not be cut.
"$TOOLS/load_client" "127.0.0.1:$p_idle_cli" --connections 3 --min-bytes 300000 --max-bytes 300000 --seed 52 \
    --duration-hint 5 --timeout "$(scale 30)" >"$TEST_DIR/busy.out" 2>&1 \
    || fail "a busy connection was cut by idle_timeout: $(tail -n 4 "$TEST_DIR/busy.out")"

stop_ktlstund "$pid"
note "limits ok"
