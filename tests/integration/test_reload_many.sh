#!/usr/bin/env bash
# More reloads than the supervisor once had room to remember, each leaving a worker
# that drains a live connection: every old generation stays valid until its last
# worker is gone (under ASan a generation freed too early is a use after free), and
# the daemon keeps serving.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

RELOADS=70
port=$(free_port)
echo_port=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
conf="$TEST_DIR/ktlstund.ini"
{
    global_section "workers = 1" "shutdown_timeout = 30"
    server_tunnel echo "$port" "$echo_port"
} >"$conf"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID

client_args alice
# hold N: a connection through the tunnel that stays open; sets HOLD_PID.
hold() {
    spawn "$TEST_DIR/hold.$1.out" bash -c "sleep 600 | exec openssl s_client -brief \
        -connect 127.0.0.1:$port ${CLIENT_ARGS[*]}"
    HOLD_PID=$SPAWN_PID
    wait_for_log "$TEST_DIR/hold.$1.out" 'CONNECTION ESTABLISHED' "$(scale 10)" 1 "$HOLD_PID" ||
        fail "connection $1 did not open: $(cat "$TEST_DIR/hold.$1.out")"
}

note "$RELOADS reloads, each generation's worker left draining a live connection"
holders=()
hold 0
holders+=("$HOLD_PID")
for ((i = 1; i <= RELOADS; i++)); do
    [ "$(reload "$pid" "$log")" = reloaded ] || fail "reload $i refused"
    hold "$i"
    holders+=("$HOLD_PID")
done
alive "$pid" || fail "ktlstund died during the reloads"

note "the old workers finish as their connections end; the daemon keeps serving"
for holder in "${holders[@]}"; do
    pkill -P "$holder" 2>/dev/null || true
    kill "$holder" 2>/dev/null || true
done
wait_for_log "$log" "info: audit tunnel=echo " "$(scale 30)" $((RELOADS + 1)) "$pid" ||
    fail "not every held connection ended with an audit line"
# Workers keep the name ktlstund; the PAM helper and its launcher have their own.
workers() { pgrep -c -P "$pid" -x ktlstund || true; }
for ((i = 0; i < 100; i++)); do
    [ "$(workers)" -le 1 ] && break   # the current generation's worker
    sleep 0.1
done
[ "$(workers)" -le 1 ] || fail "old workers did not exit: $(pgrep -a -P "$pid" -x ktlstund | head)"
alive "$pid" || fail "ktlstund died while its old workers exited"
tls_echo "127.0.0.1:$port" after-the-reloads "$TEST_DIR/after.out" "${CLIENT_ARGS[@]}" ||
    fail "no echo after the reloads: $(cat "$TEST_DIR/after.out")"
stop_ktlstund "$pid"
