#!/usr/bin/env bash
# The lock state file and the helper's own user: `ktlstun unlock` run as root while
# the daemon is stopped leaves the file with its owner and mode, so a helper running
# as pam_user still reads it and keeps its locks; and a state file the helper cannot
# read refuses every login ("second factor unavailable: lock state unreadable: ...",
# logged at error) until it can be read again (fail closed), instead of starting
# without its locks.
source "$(dirname "$0")/lib.sh"

[ "$(id -u)" = 0 ] || fail "this test needs root (the helper switches to its own user)"
sf_alice_vpn "max_failures = 2" "failure_window = 15m" "lockout = 10m"
conf=$SF_CONF u_alice=$SF_USER
sf_user pam
pam_user=$SF_USER
# The helper runs as a user lib.sh removes at exit: end the daemon first.
trap 'sf_rc=$?; stop_started_as "$pam_user"; sf_cleanup; (exit $sf_rc); cleanup' EXIT
# The helper runs as pam_user (as ktlstun-pam under the unit): it reads the config and
# the PAM stack, rewrites alice's users file and owns state_dir.
sed -i "/^\[global\]/a pam_user = $pam_user" "$conf"
d=$TEST_DIR
while [ "$d" != / ] && [ "$d" != /tmp ]; do
    chmod o+x "$d"
    d=$(dirname "$d")
done
chown "$pam_user" "$TEST_DIR/oath" "$TEST_DIR/oath/$u_alice" "$TEST_DIR/state"
chmod 0700 "$TEST_DIR/state"
state="$TEST_DIR/state/lockout.state"

starts=0
start_again() {
    starts=$((starts + 1))
    log="$TEST_DIR/ktlstund.$starts.log"
    start_ktlstund "$conf" "$log"
}
start_again
helper=$(pgrep -P "$KTLSTUND_PID" -x ktlstund-pam)
assert_eq "$(awk '/^Uid:/ { print $2 }' "/proc/$helper/status")" "$(id -u "$pam_user")" "the helper's uid"

note "two failures lock alice; the address has failures on record too"
sf_expect_login "$conf" c-alice 000000 1 "1 more failed attempt locks this identity" "first wrong code"
sf_expect_login "$conf" c-alice 111111 1 "Locked" "locking failure"
assert_eq "$(stat -c '%U %a' "$state")" "$pam_user 600" "the lock state written by the helper"
# A record: TUNNEL KIND KEY LEVEL LOCKED_UNTIL LAST_LOCK_END COUNT [TIME:TAG]...
grep -qE ' source 127\.0\.0\.1 [0-9]+ [0-9]+ [0-9]+ [1-9]' "$state" ||
    fail "no failures of the address on record: $(cat "$state")"
stop_ktlstund "$KTLSTUND_PID"

note "daemon stopped: root unlocks the address; the file keeps its owner and mode"
rc=0
out=$("$KTLSTUN" unlock 127.0.0.1 -c "$conf" 2>&1) || rc=$?
[ "$rc" = 0 ] || [ "$rc" = 1 ] || fail "offline unlock of the address: $out"
assert_contains "$out" "127.0.0.1 was not locked (its failure counts were cleared)" "offline unlock message"
grep -qE ' source 127\.0\.0\.1 [0-9]+ [0-9]+ [0-9]+ 0$' "$state" ||
    fail "the address's failures are still on record: $(cat "$state")"
assert_eq "$(stat -c '%U %a' "$state")" "$pam_user 600" "the lock state after root's offline unlock"
grep -q ' identity alice ' "$state" || fail "alice's lock left the file: $(cat "$state")"

note "the daemon starts again: alice's lock is still there"
start_again
assert_no_log "$log" "lock state unreadable" "lock state read at start"
sf_expect_login "$conf" c-alice "$(sf_hotp 0)" 1 "Locked" "the right code while locked"
stop_ktlstund "$KTLSTUND_PID"

note "a state file the helper cannot read: every login refused, until it can"
chmod 000 "$state"
start_again
assert_log "$log" "error: second factor unavailable: lock state unreadable: cannot read $state: Permission denied" \
    "unreadable state at start"
sf_expect_login "$conf" c-alice "$(sf_hotp 0)" 3 "unavailable" "login while the state is unreadable"
assert_log "$log" "error: \\[vpn\\] second factor unavailable: lock state unreadable: cannot read $state: Permission denied; login of \"alice\" refused" \
    "refused login logged"
rc=0
out=$("$KTLSTUN" unlock --list -c "$conf" 2>&1) || rc=$?
[ "$rc" != 0 ] || fail "unlock --list succeeded while the state is unreadable: $out"
assert_contains "$out" "the lock state cannot be read" "unlock --list while unreadable"
[ "$(stat -c '%a' "$state")" = 0 ] || fail "the helper replaced the unreadable file"
chmod 600 "$state"
sf_expect_login "$conf" c-alice "$(sf_hotp 0)" 1 "Locked" "the right code once the state reads again"
assert_log "$log" "notice: second factor: $state is readable again; logins resume" "recovery logged"
stop_ktlstund "$KTLSTUND_PID"
