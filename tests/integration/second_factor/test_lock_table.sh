#!/usr/bin/env bash
# Second factor, a full lock table: refused handshakes from many addresses (an attacker
# has an IPv6 /64; here 127.0.0.0/8) must not switch counting off. With
# lock_table_size = 16, forty addresses send TLS garbage: address records make room for
# each other, oldest first, and still raise their alert; alice's wrong codes still
# count and lock her. When the failures of people cannot be recorded any more, a login
# is refused before PAM and the refusal logged: counting never fails open.
source "$(dirname "$0")/lib.sh"

sf_make_ca
sf_cert alice
sf_user alice; u_alice=$SF_USER
oath="$TEST_DIR/oath"
sf_pam_dir "$TEST_DIR/pam.d" "$oath"
sf_enrol "$oath" "$u_alice" HOTP
printf 'cn:alice %s\n' "$u_alice" >"$TEST_DIR/users.map"
others=()
for name in ida idb idc idd; do
    sf_cert "$name"
    sf_user "$name"
    sf_enrol "$oath" "$SF_USER" HOTP
    printf 'cn:%s %s\n' "$name" "$SF_USER" >>"$TEST_DIR/users.map"
    others+=("$name")
done

echo_port=$(free_port) vpn_port=$(free_port) other_port=$(free_port)
vpn="127.0.0.1:$vpn_port"
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
conf="$TEST_DIR/ktlstund.ini"
{
    global_section "lock_table_size = 16"
    sf_gated_tunnel vpn "$vpn_port" "$echo_port" "max_failures = 3" "lockout = 1m" \
        "max_handshake_failures = 5"
    # The others fail here: three failures do not lock 127.0.0.1 under max_failures 10.
    sf_gated_tunnel other "$other_port" "$echo_port" "max_failures = 10"
} >"$conf"
clients="$TEST_DIR/clients.ini"
{
    sf_client_tunnel c-alice 1 "$vpn_port" alice
    port=2
    for name in "${others[@]}"; do
        sf_client_tunnel "c-$name" "$((port++))" "$other_port" "$name"
    done
} >"$clients"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"

# garbage_from ADDR: one refused handshake (not TLS at all) from ADDR.
garbage_from() {
    printf 'GET / HTTP/1.0\r\n\r\n' | timeout "$(scale 5)" socat -t 2 - "TCP:$vpn,bind=$1" \
        >/dev/null 2>&1 || true
}

note "forty addresses fill the lock table with refused handshakes"
flood=()
for ((i = 1; i <= 40; i++)); do
    garbage_from "127.0.1.$i" &
    flood+=($!)
done
for pid in "${flood[@]}"; do
    wait "$pid"
done
for ((i = 0; i < 100 * SLOW && $(log_count "$log" 'refused tunnel=vpn peer=127\.0\.1\.') < 40; i++)); do
    sleep 0.05
done
assert_eq "$(log_count "$log" 'refused tunnel=vpn peer=127\.0\.1\.')" 40 "refused handshakes"
sleep 0.5

note "an address with max_handshake_failures refused handshakes still raises its alert"
for ((i = 1; i <= 5; i++)); do
    garbage_from 127.0.2.1
done
assert_log "$log" 'handshake-failure alert: tunnel=vpn source=127\.0\.2\.1 failures=5 ' \
    "handshake alert with the table full of addresses"

note "alice's wrong codes still count: the third locks her, the right code is refused"
for code in 111111 222222 333333; do
    sf_login "$clients" c-alice "$code" "$TEST_DIR/wrong.$code.out"
done
sf_login "$clients" c-alice "$(sf_hotp 0)" "$TEST_DIR/right.out"
if [ "$SF_RC" = 0 ]; then
    fail "the right code was granted after 3 wrong codes: $(grep -c 'not counted' "$log") failures not counted"
fi
grep -q 'Locked' "$TEST_DIR/wrong.333333.out" || fail "the third wrong code did not lock: $(cat "$TEST_DIR/wrong.333333.out")"
grep -q 'Locked' "$TEST_DIR/right.out" || fail "the right code was not refused as locked: $(cat "$TEST_DIR/right.out")"
assert_log "$log" 'second-factor lock: tunnel=vpn identity="alice" .* lock=identity level=1' "alice's lock"
assert_no_log "$log" 'not counted' "a failure went uncounted"

note "no room for more people: the login is refused before PAM, and logged"
# 16 records: 8 for identities and users (alice and her user hold 2), 4 for addresses
# of failed logins, 4 for addresses of refused handshakes.
for name in ida idb idc; do
    sf_expect_login "$clients" "c-$name" 444444 1 "Wrong code" "$name's wrong code"
done
sf_login "$clients" c-idd 555555 "$TEST_DIR/idd.out"
assert_eq "$SF_RC" 3 "exit status of a login that could not be counted: $(cat "$TEST_DIR/idd.out")"
grep -q 'cannot count failed logins' "$TEST_DIR/idd.out" || fail "no clear refusal: $(cat "$TEST_DIR/idd.out")"
grep -q 'One-time password' "$TEST_DIR/idd.out" && fail "the login reached PAM"
assert_log "$log" 'error: \[other\] second factor: the lock table is full .*"idd".* refused' \
    "refusal logged at error"
stop_ktlstund "$KTLSTUND_PID"
