#!/usr/bin/env bash
# The PAM helper dies: it is started again and fresh workers take over while the old
# ones drain their connections. A fresh worker that then crashes is replaced too, even
# while old workers of the same generation are still draining.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

port=$(free_port)
echo_port=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
conf="$TEST_DIR/ktlstund.ini"
{
    global_section "workers = 2" "shutdown_timeout = 30"
    server_tunnel echo "$port" "$echo_port"
} >"$conf"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID
client_args alice

children() { pgrep -P "$pid" | sort; }
helper_pid() { pgrep -P "$pid" -x ktlstund-pam; }
# wait_children_beyond FILE COUNT: until COUNT children exist that FILE does not list.
wait_children_beyond() {
    local i
    for ((i = 0; i < 100 * SLOW; i++)); do
        [ "$(comm -13 "$1" <(children) | wc -l)" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

note "a connection holds one of the first workers"
spawn "$TEST_DIR/hold.out" bash -c "sleep 600 | exec openssl s_client -brief -connect 127.0.0.1:$port ${CLIENT_ARGS[*]}"
hold=$SPAWN_PID
wait_for_log "$TEST_DIR/hold.out" 'CONNECTION ESTABLISHED' "$(scale 10)" 1 "$hold" ||
    fail "the held connection did not open: $(cat "$TEST_DIR/hold.out")"

note "the PAM helper is killed: it comes back, with two fresh workers"
children >"$TEST_DIR/before"
old_helper=$(helper_pid)
[ -n "$old_helper" ] || fail "no ktlstund-pam child"
kill -KILL "$old_helper"
# the new helper and two new workers
wait_children_beyond "$TEST_DIR/before" 3 || fail "no new helper and workers: $(pgrep -a -P "$pid")"
new_helper=$(helper_pid)
[ -n "$new_helper" ] && [ "$new_helper" != "$old_helper" ] || fail "the helper was not started again"
comm -13 "$TEST_DIR/before" <(children) | grep -vx "$new_helper" >"$TEST_DIR/fresh"
[ "$(wc -l <"$TEST_DIR/fresh")" = 2 ] || fail "expected 2 fresh workers, got: $(cat "$TEST_DIR/fresh")"

note "a fresh worker crashes while an old one drains: it is replaced"
victim=$(head -n 1 "$TEST_DIR/fresh")
children >"$TEST_DIR/before2"
kill -KILL "$victim"
wait_children_beyond "$TEST_DIR/before2" 1 ||
    fail "the crashed worker $victim was not replaced: $(pgrep -a -P "$pid")"
tls_echo "127.0.0.1:$port" after-the-crash "$TEST_DIR/after.out" "${CLIENT_ARGS[@]}" ||
    fail "no echo after the crash: $(cat "$TEST_DIR/after.out")"
pkill -P "$hold" 2>/dev/null || true
kill "$hold" 2>/dev/null || true
stop_ktlstund "$pid"
