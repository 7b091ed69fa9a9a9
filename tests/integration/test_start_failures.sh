#!/usr/bin/env bash
# How a start fails, told to the one who started it:
#   - a detached start (no -f, outside systemd) returns once the daemon serves (0) or
#     has failed (1, the reason on stderr), also when it fails after the fork (here a
#     listen address that binds, as -t checks it, but cannot listen);
#   - a second daemon with the same runtime_dir is refused, naming the holder's pid and
#     the runtime_dir line; -t beside it takes no lock; a lock file left by a daemon
#     that is gone (or killed) does not block the next start.
source "$(dirname "$0")/lib.sh"

echo_port=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
mkdir -p "$TEST_DIR/conf"
lock="$TEST_DIR/run/ktlstund.lock"
line_of() { grep -n -F -x -- "$2" "$1" | head -n 1 | cut -d: -f1; }
esc() { sed 's/[][\.*^$/+?(){}|]/\\&/g' <<<"$1"; }

# detached CONFIG: runs ktlstund -c CONFIG without -f, as outside systemd; sets RC
# and ERR (its stderr).
# Whatever it left running (its pid in the lock file, or what listens on PORT when it
# is given) is ended at exit, even when an assertion fails first.
detached() {
    local p
    RC=0
    ERR=$(timeout "$(scale 30)" env -u INVOCATION_ID -u NOTIFY_SOCKET -u JOURNAL_STREAM \
        "$KTLSTUND" -c "$1" 2>&1 >/dev/null </dev/null) || RC=$?
    [ -s "$lock" ] && PIDS+=("$(cat "$lock")")
    if [ -n "${2:-}" ]; then
        for p in $(ss -Hltnp "sport = :$2" | grep -o 'pid=[0-9]*' | cut -d= -f2 | sort -u); do
            PIDS+=("$p")
        done
    fi
    return 0
}

# stop_detached PID: SIGTERM, and waits until it is gone.
stop_detached() {
    local i
    kill -TERM "$1" 2>/dev/null || fail "the detached ktlstund $1 is not running"
    for ((i = 0; i < 100 * SLOW; i++)); do
        alive "$1" || return 0
        sleep 0.1
    done
    fail "the detached ktlstund $1 did not stop"
}

# ---- a detached start returns 0 once the daemon serves
port=$(free_port)
conf="$TEST_DIR/conf/a.ini"
{ global_section; server_tunnel web "$port" "$echo_port"; } >"$conf"
detached "$conf" "$port"
[ "$RC" = 0 ] || fail "detached start exited $RC: $ERR"
grep -vE '^ktlstund\[[0-9]+\]: warning: ' <<<"$ERR" | grep -q . && fail "a detached start that succeeds printed more than warnings: $ERR"
[ -s "$lock" ] || fail "no $lock"
pid=$(cat "$lock")
PIDS+=("$pid")
alive "$pid" || fail "the detached daemon (pid $pid in the lock file) is not running"
assert_eq "$(cat "/proc/$pid/comm")" ktlstund "the lock file's pid"
[ -n "$(ss -Hltn "sport = :$port")" ] || fail "the detached start returned before it listened"
client_args alice
tls_echo "127.0.0.1:$port" "detached-$RANDOM" "$TEST_DIR/e1.out" "${CLIENT_ARGS[@]}" || fail "no echo through the detached daemon"

# ---- a second daemon with the same runtime_dir: refused, naming the first
port2=$(free_port)
conf2="$TEST_DIR/conf/b.ini"
{ global_section; server_tunnel web "$port2" "$echo_port"; } >"$conf2"
n=$(line_of "$conf2" "runtime_dir = $TEST_DIR/run")
want="$(esc "$conf2"):$n: \\[global\\] runtime_dir: runtime_dir $(esc "$TEST_DIR/run") is in use by ktlstund \\(pid $pid\\); stop it or give this instance another runtime_dir"
rc=0
out=$(timeout "$(scale 30)" "$KTLSTUND" -f -c "$conf2" 2>&1 </dev/null) || rc=$?
assert_eq "$rc" 1 "second daemon (-f) exit status"
grep -qE -- "$want" <<<"$out" || fail "second daemon (-f): no /$want/ in: $out"
detached "$conf2" "$port2"
assert_eq "$RC" 1 "second daemon (detached) exit status"
grep -qE -- "$want" <<<"$ERR" || fail "second daemon (detached): no /$want/ in: $ERR"
[ -z "$(ss -Hltn "sport = :$port2")" ] || fail "the refused daemon listens on $port2"
assert_eq "$(cat "$lock")" "$pid" "the lock file's pid after the refusals"
alive "$pid" || fail "the first daemon died"

# ---- -t beside it takes no lock
"$KTLSTUND" -t -c "$conf" >"$TEST_DIR/t.out" 2>&1 || fail "-t beside the daemon failed: $(cat "$TEST_DIR/t.out")"
assert_eq "$(cat "$lock")" "$pid" "the lock file's pid after -t"
tls_echo "127.0.0.1:$port" "after-t-$RANDOM" "$TEST_DIR/e2.out" "${CLIENT_ARGS[@]}" || fail "no echo after -t"

# ---- a lock file left behind does not block: after a stop, and after SIGKILL
stop_detached "$pid"
[ -e "$lock" ] || fail "the lock file is gone after a stop (expected it left, unlocked)"
detached "$conf" "$port"
[ "$RC" = 0 ] || fail "detached start after a stop exited $RC: $ERR"
pid=$(cat "$lock")
PIDS+=("$pid")
kill -KILL "$pid"
for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
port3=$(free_port)
conf3="$TEST_DIR/conf/c.ini"
{ global_section; server_tunnel web "$port3" "$echo_port"; } >"$conf3"
detached "$conf3" "$port3"
[ "$RC" = 0 ] || fail "detached start after SIGKILL of the last one exited $RC: $ERR"
pid3=$(cat "$lock")
PIDS+=("$pid3")
[ "$pid3" != "$pid" ] || fail "the lock file still names the killed daemon"
stop_detached "$pid3"
echo 999999 >"$lock"
detached "$conf3" "$port3"
[ "$RC" = 0 ] || fail "detached start with a stale pid in the lock file exited $RC: $ERR"
pid3=$(cat "$lock")
PIDS+=("$pid3")
stop_detached "$pid3"

# ---- failures after the fork: a listen address in use, a key of another certificate
conf4="$TEST_DIR/conf/d.ini"
{ global_section; server_tunnel web "$echo_port" "$echo_port"; } >"$conf4"
detached "$conf4"
assert_eq "$RC" 1 "detached start with its listen address in use"
grep -qE -- "$(esc "$conf4"):$(line_of "$conf4" "listen = 127.0.0.1:$echo_port"): \\[web\\] listen: 127\\.0\\.0\\.1:$echo_port is already in use" <<<"$ERR" ||
    fail "the detached start's failure does not say why: $ERR"
grep -q "not starting" <<<"$ERR" || fail "the detached start does not say it is not starting: $ERR"
sleep 0.2
alive "$(cat "$lock")" && fail "the failed daemon still runs"
port5=$(free_port)
conf5="$TEST_DIR/conf/e.ini"
{ global_section; server_tunnel web "$port5" "$echo_port" "key = $PKI/alice.key"; } >"$conf5"
detached "$conf5" "$port5"
assert_eq "$RC" 1 "detached start with a key of another certificate"
grep -qE -- "\\[web\\] key: key $(esc "$PKI/alice.key") does not belong to certificate" <<<"$ERR" ||
    fail "the detached start's failure does not say why: $ERR"
exit 0
