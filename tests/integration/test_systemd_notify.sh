#!/usr/bin/env bash
# sd_notify as systemd sees it, on a NOTIFY_SOCKET of our own: READY=1 only once the
# listener serves, watchdog pings, RELOADING=1 + MONOTONIC_USEC then READY=1 around
# a reload (good or refused), STATUS=, a stuck worker loop killed and replaced, and
# STOPPING=1 on SIGTERM.
source "$(dirname "$0")/lib.sh"

echo_port=$(free_port)
port=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
start_notify_capture "$TEST_DIR/notify.sock" "$TEST_DIR/notify.out"

conf="$TEST_DIR/ktlstund.ini"
write_conf() {
    { global_section; server_tunnel echo "$port" "$echo_port" "cert = $PKI/$1.pem" "key = $PKI/$1.key"; } >"$conf"
}
write_conf server
log="$TEST_DIR/ktlstund.log"
notes="$TEST_DIR/notify.out"
client_args alice

# The moment READY=1 arrives, a client must be served: readiness is never early.
NOTIFY_SOCKET="$TEST_DIR/notify.sock" WATCHDOG_USEC=1000000 start_ktlstund --ready "$notes" 'READY=1' "$conf" "$log"
pid=$KTLSTUND_PID
tls_echo "127.0.0.1:$port" "first-$RANDOM" "$TEST_DIR/first.out" "${CLIENT_ARGS[@]}" \
    || fail "READY=1 was sent but the listener did not serve: $(cat "$TEST_DIR/first.out.err")"
assert_eq "$(log_count "$notes" 'READY=1')" 1 "READY=1 sent once at start"
assert_log "$notes" 'STATUS=1 tunnels, 2 workers, [0-9]+ connections' "STATUS= after start"

# Watchdog: WatchdogSec=1s wants a ping at least every 0.5 s.
before=$(log_count "$notes" 'WATCHDOG=1')
sleep 2
after=$(log_count "$notes" 'WATCHDOG=1')
[ $((after - before)) -ge 3 ] || fail "only $((after - before)) watchdog pings in 2 s"

# A good reload: RELOADING=1 with MONOTONIC_USEC, then READY=1.
write_conf server-new
assert_eq "$(reload "$pid" "$log")" reloaded "reload with a new certificate"
assert_log "$notes" 'RELOADING=1\|MONOTONIC_USEC=[0-9]+' "RELOADING=1 with MONOTONIC_USEC"
wait_for_log "$notes" 'READY=1' "$(scale 10)" 2 "$pid" || fail "no READY=1 after the reload"
reloading_at=$(grep 'RELOADING=1' "$notes" | tail -n 1 | cut -d' ' -f1)
second_ready_at=$(grep 'READY=1' "$notes" | sed -n 2p | cut -d' ' -f1)
[ "$second_ready_at" -ge "$reloading_at" ] || fail "READY=1 came before RELOADING=1"

# A refused reload still ends with READY=1: the old configuration serves on.
echo "bogus_key = 1" >>"$conf"
assert_eq "$(reload "$pid" "$log")" refused "reload of a broken config"
wait_for_log "$notes" 'READY=1' "$(scale 10)" 3 "$pid" || fail "no READY=1 after a refused reload"
tls_echo "127.0.0.1:$port" "after-$RANDOM" "$TEST_DIR/after.out" "${CLIENT_ARGS[@]}" \
    || fail "not serving after a refused reload"

# A worker whose loop stops turning is killed and replaced; the watchdog keeps going.
victim=$(workers_of "$conf" | head -n 1)
[ -n "$victim" ] || fail "ktlstun status lists no worker"
kill -STOP "$victim"
assert_log "$log" "worker $victim: event loop stuck for [0-9]+s; killing it" \
    "stuck worker not noticed" 20
assert_log "$log" "replacing worker $victim" "stuck worker not replaced" 5
wait_worker_replaced "$conf" "$victim" 2 || true
assert_eq "$(workers_of "$conf" | wc -l)" 2 "workers after the replacement"
workers_of "$conf" | grep -qx "$victim" && fail "the stuck worker $victim still answers"
before=$(log_count "$notes" 'WATCHDOG=1')
sleep 1.2
[ "$(log_count "$notes" 'WATCHDOG=1')" -gt "$before" ] || fail "watchdog stopped after the replacement"
tls_echo "127.0.0.1:$port" "replaced-$RANDOM" "$TEST_DIR/replaced.out" "${CLIENT_ARGS[@]}" \
    || fail "not serving after a worker was replaced"

stop_ktlstund "$pid"
assert_log "$notes" 'STOPPING=1' "no STOPPING=1 on SIGTERM"
