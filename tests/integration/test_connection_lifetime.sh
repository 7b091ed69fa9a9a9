#!/usr/bin/env bash
# max_connection_lifetime: a connection that passes it is closed, not with
# close_notify, with the reason in its audit line; a tunnel without it (the default,
# off) keeps its connection open; a client tunnel closes its plain side too. The
# target of a cut connection sees a reset, not a clean end (its stream was cut); so
# does the target of a connection still open when the daemon stops past its
# shutdown_timeout.
source "$(dirname "$0")/lib.sh"

echo_port=$(free_port)
p_short=$(free_port) p_long=$(free_port) p_cli=$(free_port) p_cut=$(free_port)
cut_target=$(free_port) p_stay=$(free_port) stay_target=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
spawn "$TEST_DIR/cut.target" "$TOOLS/stream_end" listen "127.0.0.1:$cut_target" --echo --timeout "$(scale 20)"
cut_target_pid=$SPAWN_PID
wait_for_log "$TEST_DIR/cut.target" '^listening$' "$(scale 5)" 1 "$cut_target_pid" ||
    fail "the stream_end target did not listen"
spawn "$TEST_DIR/stay.target" "$TOOLS/stream_end" listen "127.0.0.1:$stay_target" --echo --timeout "$(scale 30)"
stay_target_pid=$SPAWN_PID
wait_for_log "$TEST_DIR/stay.target" '^listening$' "$(scale 5)" 1 "$stay_target_pid" ||
    fail "the second stream_end target did not listen"

conf="$TEST_DIR/ktlstund.ini"
{
    global_section "shutdown_timeout = 1s"
    server_tunnel stay "$p_stay" "$stay_target"
    server_tunnel short "$p_short" "$echo_port" "max_connection_lifetime = 3s"
    server_tunnel long "$p_long" "$echo_port"
    client_tunnel cli "$p_cli" "$p_long" "max_connection_lifetime = 3s"
    server_tunnel cut "$p_cut" "$cut_target" "max_connection_lifetime = 3s"
} >"$conf"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID

start_ms=$(now_ms)
hold short "127.0.0.1:$p_short" "$PKI/alice.pem" "$PKI/alice.key"
hold long "127.0.0.1:$p_long" "$PKI/alice.pem" "$PKI/alice.key"
hold cut "127.0.0.1:$p_cut" "$PKI/alice.pem" "$PKI/alice.key"
hold stay "127.0.0.1:$p_stay" "$PKI/alice.pem" "$PKI/alice.key"
spawn_fed plain "socat -t 1 - TCP:127.0.0.1:$p_cli"
plain_pid=$SPAWN_PID
echo "through-cli" >&"$FED_FD"
wait_for_log "$TEST_DIR/plain.out" through-cli "$(scale 5)" || fail "no echo through the client tunnel"

wait_hold_ended short "$(scale 8)" "max_connection_lifetime = 3s"
elapsed=$(($(now_ms) - start_ms))
[ "$elapsed" -ge 2500 ] || fail "connection closed after $elapsed ms, before max_connection_lifetime (3 s)"
assert_log "$log" 'info: audit tunnel=short .*close="max_connection_lifetime \(3s\) reached"' \
    "the audit line of the connection past its lifetime"
wait_exit "$plain_pid" "$(scale 8)" || fail "the client tunnel's plain connection outlived max_connection_lifetime"
assert_log "$log" 'info: audit tunnel=cli .*close="max_connection_lifetime \(3s\) reached"' \
    "the client tunnel's audit line"
assert_hold_open long "a tunnel without max_connection_lifetime"
wait_exit "$cut_target_pid" "$(scale 10)" || fail "the cut connection's target was never ended"
cut_outcome=$(sed -n 's/^outcome: //p' "$TEST_DIR/cut.target")
[ "$cut_outcome" = reset ] ||
    fail "the target of a connection cut by max_connection_lifetime saw '$cut_outcome', not a reset"

stop_ktlstund "$pid"
wait_exit "$stay_target_pid" "$(scale 10)" || fail "the target of a connection open at the stop was never ended"
stay_outcome=$(sed -n 's/^outcome: //p' "$TEST_DIR/stay.target")
[ "$stay_outcome" = reset ] ||
    fail "the target of a connection cut by the daemon's stop saw '$stay_outcome', not a reset"
note "max_connection_lifetime ok"
