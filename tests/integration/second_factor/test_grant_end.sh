#!/usr/bin/env bash
# A data connection lives no longer than the second-factor grant that let it in: when
# the grant expires (grant_lifetime) or is withdrawn (the identity got locked), the
# gated tunnel's live connections of that certificate end within a few seconds,
# without close_notify, with "access withdrawn: second-factor grant ... ended" in the
# audit line; while the grant lives, they stay.
source "$(dirname "$0")/lib.sh"

sf_make_ca
sf_cert alice
sf_cert bob
sf_user alice; u_alice=$SF_USER
sf_user bob; u_bob=$SF_USER
sf_pam_dir "$TEST_DIR/pam.d" "$TEST_DIR/oath"
sf_enrol "$TEST_DIR/oath" "$u_alice" HOTP
sf_enrol "$TEST_DIR/oath" "$u_bob" HOTP
printf 'cn:alice %s\ncn:bob %s\n' "$u_alice" "$u_bob" >"$TEST_DIR/users.map"

echo_port=$(free_port) p_short=$(free_port) p_lock=$(free_port)
c_short=$(free_port) c_lock=$(free_port) c_bob=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
conf="$TEST_DIR/ktlstund.ini"
{
    global_section
    sf_gated_tunnel short "$p_short" "$echo_port" "grant_lifetime = 6s"
    sf_gated_tunnel lock "$p_lock" "$echo_port" "max_failures = 2"
    sf_client_tunnel c-short "$c_short" "$p_short" alice
    sf_client_tunnel c-lock "$c_lock" "$p_lock" alice
    sf_client_tunnel c-bob "$c_bob" "$p_lock" bob
} >"$conf"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"

note "grant_lifetime 6 s: the connection lives while the grant does, then ends"
sf_expect_login "$conf" c-short "$(sf_hotp 0)" 0 "Access granted" "login on [short]"
login_done=$(now_ms)
hold alice-short "127.0.0.1:$p_short" "$TEST_DIR/alice.pem" "$TEST_DIR/user.key"
sleep 2
assert_hold_open alice-short "with the grant still live"
wait_hold_ended alice-short "$(scale 10)" "grant expired"
elapsed=$(($(now_ms) - login_done))
note "alice-short ended $elapsed ms after the login: $(hold_outcome alice-short)"
[ "$elapsed" -ge 5000 ] || fail "the connection ended $elapsed ms after the login, before its 6 s grant"
[ "$elapsed" -le $((9000 * SLOW)) ] || fail "the connection outlived its 6 s grant by more than 3 s ($elapsed ms)"
assert_log "$log" 'info: audit tunnel=short .*subject="CN=alice" .*close="access withdrawn: second-factor grant of alice \(sha256 [0-9a-f]{16}…\) ended' \
    "the audit line names the grant"

note "a lock withdraws the grant: the connection ends; another user's stays"
sf_expect_login "$conf" c-lock "$(sf_hotp 1)" 0 "Access granted" "alice's login on [lock]"
sf_expect_login "$conf" c-bob "$(sf_hotp 0)" 0 "Access granted" "bob's login on [lock]"
hold alice-lock "127.0.0.1:$p_lock" "$TEST_DIR/alice.pem" "$TEST_DIR/user.key"
hold bob-lock "127.0.0.1:$p_lock" "$TEST_DIR/bob.pem" "$TEST_DIR/user.key"
bob_pid=$HOLD_PID
sleep 1.5
assert_hold_open alice-lock "before the lock"
sf_expect_login "$conf" c-lock 000000 1 "Wrong code" "first wrong code"
sf_expect_login "$conf" c-lock 000001 1 "" "second wrong code"
assert_log "$log" 'withdrew 1 grant\(s\) of locked identity "alice"' "the lock withdrew alice's grant"
wait_hold_ended alice-lock "$(scale 5)" "grant withdrawn by the lock"
assert_log "$log" 'info: audit tunnel=lock .*subject="CN=alice" .*close="access withdrawn: second-factor grant of alice \(sha256 [0-9a-f]{16}…\) ended' \
    "the audit line of the withdrawn grant"
sleep 1
assert_hold_open bob-lock "alice's lock"

# Its client ends the last connection, so the stop need not wait out shutdown_timeout.
kill "$bob_pid"
stop_ktlstund "$KTLSTUND_PID"
