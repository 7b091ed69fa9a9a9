#!/usr/bin/env bash
# Second factor, lockout and alerting: failures count within failure_window, the same
# wrong code counts once, max_failures locks the identity (refused before PAM even
# with the right code, the code stays unused), each lock raises exactly one alert —
# the fail2ban line (checked with fail2ban-regex and the shipped filter) and
# alert_command (its environment and arguments checked) — the lock survives a
# restart, `ktlstun unlock --list` shows its end in local time and `ktlstun unlock`
# lifts it (daemon running, or not), a repeat lock lasts
# twice as long, and refused handshakes from one address alert at
# max_handshake_failures while missing logins do not count.
source "$(dirname "$0")/lib.sh"

command -v fail2ban-regex >/dev/null || fail "fail2ban-regex is needed (fail2ban)"
sf_alice_vpn "max_failures = 3" "failure_window = 15m" "lockout = 1m" "max_handshake_failures = 3" \
    "alert_command = $TEST_DIR/alert.sh \"first argument\" --second"
conf=$SF_CONF vpn=$SF_VPN u_alice=$SF_USER

mkdir -p "$TEST_DIR/alerts"
cat >"$TEST_DIR/alert.sh" <<EOF
#!/bin/sh
# One file per run: the environment ktlstund passed and the arguments.
out="$TEST_DIR/alerts/\$\$"
{ env | grep '^KTLSTUN_' | sort; printf 'ARG=%s\n' "\$@"; env | grep -c '^' | sed 's/^/ENV_COUNT=/'; } >"\$out.tmp"
mv "\$out.tmp" "\$out"
EOF
chmod +x "$TEST_DIR/alert.sh"

log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"
# A restarted daemon logs to a new file: its "ready" line must be its own.
starts=1
start_again() {
    starts=$((starts + 1))
    log="$TEST_DIR/ktlstund.$starts.log"
    start_ktlstund "$conf" "$log"
}
alerts() { find "$TEST_DIR/alerts" -type f ! -name '*.tmp' | wc -l; }
lock_re='second-factor lock: tunnel=vpn identity="alice"'

note "missing logins are refused but are no attack: they do not count as handshake failures"
for i in 1 2 3 4; do
    sf_expect_denied "$vpn" alice "data without login ($i)"
done

note "two failures, the repeated code counted once"
sf_expect_login "$conf" c-alice 000000 1 "2 more failed attempts lock this identity" "first wrong code"
sf_expect_login "$conf" c-alice 000000 1 "Wrong code" "same wrong code"
assert_log "$log" 'second-factor failure: .*failures=- reason=".*same answer as before, not counted again' \
    "repeated code counted"
sf_expect_login "$conf" c-alice 111111 1 "1 more failed attempt locks this identity" "second counted failure"
[ "$(alerts)" = 0 ] || fail "alert before the lock"

note "the third counted failure locks: one alert, through every channel"
# A lock's remaining time is printed to the second: "1m", or "59s" a moment later.
sf_expect_login_matching "$conf" c-alice 222222 1 "Locked: too many failed attempts\. Try again in (1m|5[0-9]s)" "locking failure"
assert_log "$log" "$lock_re user=$u_alice source=127\\.0\\.0\\.1 failures=3 locked_until=[0-9T:Z-]+ lock=identity level=1" \
    "lock line"
wait_for_log_files() { local i; for ((i = 0; i < 50 * SLOW; i++)); do [ "$(alerts)" -ge "$1" ] && return 0; sleep 0.1; done; return 1; }
wait_for_log_files 1 || fail "alert_command did not run"
alert_file=$(find "$TEST_DIR/alerts" -type f ! -name '*.tmp' | head -n 1)
for line in "KTLSTUN_EVENT=lock" "KTLSTUN_LOCK_KIND=identity" "KTLSTUN_TUNNEL=vpn" \
    "KTLSTUN_IDENTITY=alice" "KTLSTUN_USER=$u_alice" "KTLSTUN_SOURCE_ADDRESS=127.0.0.1" \
    "KTLSTUN_FAILURES=3" "KTLSTUN_LOCK_LEVEL=1" "ARG=first argument" "ARG=--second"; do
    grep -qxF "$line" "$alert_file" || fail "alert_command lacks '$line': $(cat "$alert_file")"
done
grep -qE '^KTLSTUN_LOCKED_UNTIL=20[0-9-]+T[0-9:]+Z$' "$alert_file" || fail "no lock end in the alert"
grep -qE '^KTLSTUN_MESSAGE=second-factor lock: tunnel=vpn ' "$alert_file" || fail "no message in the alert"
# A clean environment: ours, PATH, and what sh itself sets (PWD).
count=$(sed -n 's/^ENV_COUNT=//p' "$alert_file")
[ "$count" -le 14 ] || fail "alert_command inherited the daemon's environment ($count variables)"

note "while locked: the right code is refused before PAM, nothing alerts again"
sf_expect_login "$conf" c-alice "$(sf_hotp 0)" 1 "Locked" "right code while locked"
assert_log "$log" 'second-factor failure: .*reason="identity locked until .*, PAM not asked"' "locked refusal"
sf_expect_login "$conf" c-alice 333333 1 "Locked" "wrong code while locked"
# ktlstun status shows the lock, from the PAM helper.
lock=$("$KTLSTUN" status --json -c "$conf" | jq -c '.locks[] | select(.key == "alice")')
[ -n "$lock" ] || fail "alice's lock missing from ktlstun status"
assert_eq "$(echo "$lock" | jq -r .kind)" identity "lock kind in status"
assert_eq "$(echo "$lock" | jq .level)" 1 "lock level in status"
[ "$(echo "$lock" | jq .locked_for)" -gt 0 ] || fail "lock has no time left in status: $lock"
assert_contains "$("$KTLSTUN" status -c "$conf")" "LOCKED" "status table lists locks"
sleep 0.5
assert_eq "$(alerts)" 1 "alert_command runs per lock"
assert_eq "$(log_count "$log" "$lock_re")" 1 "lock lines"

note "fail2ban's filter finds the one lock, for 127.0.0.1"
mkdir -p "$TEST_DIR/fail2ban/filter.d"
cp /etc/fail2ban/filter.d/common.conf "$SF_REPO/etc/fail2ban/filter.d/ktlstun.conf" "$TEST_DIR/fail2ban/filter.d/"
# As syslog would store them: a timestamp and host in front.
sed "s/^/$(date '+%b %e %H:%M:%S') gateway /" "$log" >"$TEST_DIR/syslog"
f2b=$(fail2ban-regex "$TEST_DIR/syslog" "$TEST_DIR/fail2ban/filter.d/ktlstun.conf" 2>&1) || fail "fail2ban-regex: $f2b"
assert_contains "$f2b" " 1 matched" "fail2ban-regex matches"
assert_eq "$(fail2ban-regex -o ip "$TEST_DIR/syslog" "$TEST_DIR/fail2ban/filter.d/ktlstun.conf" 2>/dev/null)" \
    "127.0.0.1" "address fail2ban would ban"

note "the lock survives a restart"
stop_ktlstund "$KTLSTUND_PID"
grep -qE '^vpn identity alice 1 [0-9]+ ' "$TEST_DIR/state/lockout.state" || fail "no lock in the state file"
start_again
sf_expect_login "$conf" c-alice "$(sf_hotp 0)" 1 "Locked" "right code after restart"

note "ktlstun unlock lifts it; the doubling level stays: the next lock lasts 2 minutes"
out=$("$KTLSTUN" unlock alice -c "$conf" 2>&1) || fail "ktlstun unlock: $out"
assert_contains "$out" "unlocked alice" "unlock message"
assert_log "$log" 'second-factor unlock: key="alice" locks_lifted=1' "unlock logged"
"$KTLSTUN" unlock alice -c "$conf" >/dev/null 2>&1 && fail "a second unlock claimed success"
for code in 444444 555555; do
    sf_expect_login "$conf" c-alice "$code" 1 "Wrong code" "wrong code before the second lock"
done
sf_expect_login_matching "$conf" c-alice 666666 1 "Try again in (2m|1m 5[0-9]s)" "second lock, doubled"
assert_log "$log" "$lock_re .* level=2" "level 2 lock"
wait_for_log_files 2 || fail "no alert for the second lock"
listed=$("$KTLSTUN" unlock --list -c "$conf") || fail "unlock --list failed"
assert_contains "$listed" "vpn identity alice until" "lock listed"
# assert_local_until LISTED OFFSET: alice's lock in LISTED ends in local time with
# OFFSET (not in epoch seconds), within the doubled lock's two minutes from now.
assert_local_until() {
    local line shown end now
    line=$(echo "$1" | grep '^vpn identity alice until ') || fail "no lock line for alice in: $1"
    [[ $line =~ ^vpn\ identity\ alice\ until\ ([0-9]{4}-[0-9]{2}-[0-9]{2}\ [0-9]{2}:[0-9]{2}:[0-9]{2}\ ([+-][0-9]{4}))\ \(level\ 2\)$ ]] ||
        fail "lock end not shown as local time: $line"
    shown=${BASH_REMATCH[1]}
    assert_eq "${BASH_REMATCH[2]}" "$2" "the local offset of the lock end"
    end=$(date -d "$shown" +%s) || fail "lock end unreadable: $shown"
    now=$(date +%s)
    [ "$end" -gt "$now" ] && [ "$end" -le $((now + 125)) ] || fail "lock end $shown is not within 2 minutes"
}
assert_local_until "$(TZ=UTC-1 "$KTLSTUN" unlock --list -c "$conf")" +0100

note "unlock with the daemon stopped edits the state file (named by alice's subject: it stands for her CN); the code refused while locked works"
stop_ktlstund "$KTLSTUND_PID"
assert_local_until "$(TZ=UTC+5 "$KTLSTUN" unlock --list -c "$conf")" -0500
out=$("$KTLSTUN" unlock "CN=alice,OU=eng" -c "$conf" 2>&1) || fail "offline unlock: $out"
assert_contains "$out" "ktlstund is not running" "offline unlock message"
start_again
sf_expect_login "$conf" c-alice "$(sf_hotp 0)" 0 "Access granted" "login after unlock"
sf_data "$vpn" alice "unlocked-$RANDOM" || fail "no data after unlock"

note "success reset the level; a new lock is 1 minute again and withdraws the grant"
for code in 777777 888888; do
    sf_expect_login "$conf" c-alice "$code" 1 "Wrong code" "wrong code before the third lock"
done
sf_expect_login_matching "$conf" c-alice 999999 1 "Try again in (1m|5[0-9]s)" "third lock, level reset by the success"
wait_for_log_files 3 || fail "no alert for the third lock"
sf_expect_denied "$vpn" alice "data after the identity was locked"

note "refused handshakes from one address: one alert at max_handshake_failures"
client_args alice   # the suite PKI's alice: a CA this tunnel does not trust
for i in 1 2 3 4; do
    openssl s_client -connect "$vpn" "${CLIENT_ARGS[@]}" </dev/null >/dev/null 2>&1 || true
done
assert_log "$log" 'handshake-failure alert: tunnel=vpn source=127\.0\.0\.1 failures=3 ' "handshake alert"
wait_for_log_files 4 || fail "alert_command did not run for handshake failures"
grep -lx 'KTLSTUN_EVENT=handshake-failures' "$TEST_DIR"/alerts/* >/dev/null || fail "no handshake alert command"
sleep 0.5
assert_eq "$(log_count "$log" 'handshake-failure alert:')" 1 "handshake alerts"
assert_eq "$(alerts)" 4 "alert_command runs in all"
stop_ktlstund "$KTLSTUND_PID"
