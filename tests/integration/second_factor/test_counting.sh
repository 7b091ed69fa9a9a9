#!/usr/bin/env bash
# Second factor, what counts: two certificates mapped to one local user share the
# user's budget (a lock of kind "user": in the alert, alert_command, the fail2ban line,
# the state file, `ktlstun unlock --list` and `ktlstun unlock USER`); a user without a
# second-factor enrolment (no pam_oath file, or one without a line for the user) is told
# so plainly, the operator warned, and no failure counted; and with TOTP, the same wrong
# code counts once only within one time step (30 s): a rotating set of four wrong codes
# reaches five failures (the daemon's clock is moved a time step ahead for that, not
# waited for: tests/tools/preload/clock_shift.c).
source "$(dirname "$0")/lib.sh"

command -v fail2ban-regex >/dev/null || fail "fail2ban-regex is needed (fail2ban)"
sf_make_ca
for name in laptop phone zed carol dave tina; do
    sf_cert "$name"
done
sf_user bob; u_bob=$SF_USER
sf_user zed; u_zed=$SF_USER
sf_user carol; u_carol=$SF_USER
sf_user dave; u_dave=$SF_USER
sf_user tina; u_tina=$SF_USER
oath="$TEST_DIR/oath"
sf_pam_dir "$TEST_DIR/pam.d" "$oath"
sf_enrol "$oath" "$u_bob" HOTP
sf_enrol "$oath" "$u_zed" HOTP
sf_enrol "$oath" "$u_tina" TOTP
# carol has no file; dave's file holds another user's line only.
printf 'HOTP %s - %s 0\n' "$u_bob" "$SF_SECRET" >"$oath/$u_dave"
chmod 600 "$oath/$u_dave"
cat >"$TEST_DIR/users.map" <<EOF
cn:laptop  $u_bob
cn:phone   $u_bob
cn:zed     $u_zed
cn:carol   $u_carol
cn:dave    $u_dave
cn:tina    $u_tina
EOF
mkdir -p "$TEST_DIR/alerts"
cat >"$TEST_DIR/alert.sh" <<EOF
#!/bin/sh
env | grep '^KTLSTUN_' | sort >"$TEST_DIR/alerts/\$\$.tmp"
mv "$TEST_DIR/alerts/\$\$.tmp" "$TEST_DIR/alerts/\$\$"
EOF
chmod +x "$TEST_DIR/alert.sh"

echo_port=$(free_port) p_users=$(free_port) p_enrol=$(free_port) p_totp=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
conf="$TEST_DIR/ktlstund.ini"
{
    global_section
    sf_gated_tunnel users "$p_users" "$echo_port" "max_failures = 3" "lockout = 1m" \
        "alert_command = $TEST_DIR/alert.sh"
    sf_gated_tunnel enrol "$p_enrol" "$echo_port" "max_failures = 3" "lockout = 1m"
    sf_gated_tunnel totp "$p_totp" "$echo_port" "max_failures = 5" "lockout = 1m"
} >"$conf"
clients="$TEST_DIR/clients.ini"
{
    sf_client_tunnel c-laptop 1 "$p_users" laptop
    sf_client_tunnel c-phone 2 "$p_users" phone
    sf_client_tunnel c-zed 3 "$p_users" zed
    sf_client_tunnel c-carol 4 "$p_enrol" carol
    sf_client_tunnel c-dave 5 "$p_enrol" dave
    sf_client_tunnel c-tina 6 "$p_totp" tina
} >"$clients"
log="$TEST_DIR/ktlstund.log"
# The daemon's clock can be moved ahead (clock_shift) for tina's last attempt.
KTLSTUND=$(clock_shift_daemon) start_ktlstund "$conf" "$log"
alerts() { find "$TEST_DIR/alerts" -type f ! -name '*.tmp' | wc -l; }

note "tina (TOTP) tries four wrong codes; the first again at once is not counted"
for code in 111111 222222 333333 444444; do
    sf_expect_login "$clients" c-tina "$code" 1 "Wrong code" "tina's wrong code $code"
done
sf_expect_login "$clients" c-tina 111111 1 "Wrong code" "tina's first code again"
assert_log "$log" 'second-factor failure: tunnel=totp identity="tina" .*failures=- reason=".*same answer as before, not counted again' \
    "a repeat within 30 s"

note "two certificates of one user: their failures add up to a user lock"
sf_expect_login "$clients" c-laptop 111111 1 "2 more failed attempts lock this identity" "laptop's first wrong code"
sf_expect_login "$clients" c-laptop 222222 1 "Wrong code" "laptop's second wrong code"
# A login of someone else from the same address clears the address's count, so only
# the user's count can reach the limit below.
sf_expect_login "$clients" c-zed "$(sf_hotp 0)" 0 "Access granted" "zed's login"
sf_expect_login "$clients" c-phone 333333 1 "Locked: too many failed attempts" \
    "phone's wrong code, the user's third"
lock_re="second-factor lock: tunnel=users identity=\"phone\" user=$u_bob source=127\\.0\\.0\\.1 failures=3 locked_until=[0-9T:Z-]+ lock=user level=1"
assert_log "$log" "$lock_re" "user lock line"
sf_expect_login "$clients" c-phone "$(sf_hotp 0)" 1 "Locked: too many failed attempts for this user" \
    "phone's right code while the user is locked"
sf_expect_login "$clients" c-laptop "$(sf_hotp 0)" 1 "Locked: too many failed attempts for this user" \
    "laptop's right code while the user is locked"
for ((i = 0; i < 50 * SLOW && $(alerts) < 1; i++)); do sleep 0.1; done
alert_file=$(find "$TEST_DIR/alerts" -type f ! -name '*.tmp' | head -n 1)
[ -n "$alert_file" ] || fail "alert_command did not run for the user lock"
for line in KTLSTUN_EVENT=lock KTLSTUN_LOCK_KIND=user KTLSTUN_IDENTITY=phone "KTLSTUN_USER=$u_bob"; do
    grep -qxF "$line" "$alert_file" || fail "alert_command lacks '$line': $(cat "$alert_file")"
done
mkdir -p "$TEST_DIR/fail2ban/filter.d"
cp /etc/fail2ban/filter.d/common.conf "$SF_REPO/etc/fail2ban/filter.d/ktlstun.conf" "$TEST_DIR/fail2ban/filter.d/"
sed "s/^/$(date '+%b %e %H:%M:%S') gateway /" "$log" >"$TEST_DIR/syslog"
f2b=$(fail2ban-regex "$TEST_DIR/syslog" "$TEST_DIR/fail2ban/filter.d/ktlstun.conf" 2>&1) || fail "fail2ban-regex: $f2b"
assert_contains "$f2b" " 1 matched" "fail2ban-regex matches the user lock"
grep -qE "^users user $u_bob 1 [0-9]+ " "$TEST_DIR/state/lockout.state" || fail "no user lock in the state file"
assert_contains "$("$KTLSTUN" unlock --list -c "$conf")" "users user $u_bob until" "user lock listed"
out=$("$KTLSTUN" unlock "$u_bob" -c "$conf" 2>&1) || fail "ktlstun unlock $u_bob: $out"
assert_contains "$out" "unlocked $u_bob" "unlock message"
sf_expect_login "$clients" c-phone "$(sf_hotp 1)" 0 "Access granted" "phone after the unlock"
sleep 0.5
assert_eq "$(alerts)" 1 "alert_command runs"
assert_eq "$(log_count "$log" 'second-factor lock: ')" 1 "lock lines"

note "no second-factor enrolment: said plainly, logged for the operator, not counted"
for name in carol dave; do
    u=$u_carol
    [ "$name" = dave ] && u=$u_dave
    for ((i = 1; i <= 4; i++)); do
        out="$TEST_DIR/$name.$i.out"
        sf_login "$clients" "c-$name" 123456 "$out"
        [ "$SF_RC" = 3 ] || fail "$name's login without enrolment ($i) exited $SF_RC: $(cat "$out")"
        grep -qF "no second factor is enrolled for user $u; ask the server's administrator to enrol $u" \
            "$out" || fail "$name is not told plainly ($i): $(cat "$out")"
    done
    assert_log "$log" "warning: \\[enrol\\] second factor: \"$name\" maps to user $u, who has no second-factor enrolment" \
        "operator warning for $name"
    assert_no_log "$log" "second-factor failure: tunnel=enrol identity=\"$name\" .*failures=[0-9]" \
        "a missing enrolment counted as a failure"
done
assert_no_log "$log" 'second-factor lock: tunnel=enrol' "a missing enrolment locked"

note "tina's first code again, a time step later: counted, the fifth failure locks"
# 31 s on the daemon's clock since her first code, however little passed here.
clock_shift 31
sf_expect_login "$clients" c-tina 111111 1 "Locked: too many failed attempts" \
    "the same wrong code 30 s later"
assert_log "$log" 'second-factor lock: tunnel=totp identity="tina" .*failures=5 ' "tina's lock"
stop_ktlstund "$KTLSTUND_PID"
