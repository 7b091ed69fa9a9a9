#!/usr/bin/env bash
# Second factor, the everyday paths: a gated tunnel refuses data with a TLS
# insufficient_security alert (the client tunnel's log says what to run) until
# `ktlstun login` passes real PAM (pam_oath, TOTP and HOTP, pam_unix for the
# account); then data flows (openssl s_client and the client tunnel).
# A reused code, a wrong code, an unmapped certificate and an expired account are
# refused with their own message; a grant ends at grant_lifetime and, with
# bind_grant_to_address, only works from the address that logged in; login against an
# ungated tunnel or a closed port says so.
source "$(dirname "$0")/lib.sh"

sf_make_ca
for name in alice bob carol dave erin; do
    sf_cert "$name"
done
sf_user alice; u_alice=$SF_USER
sf_user bob; u_bob=$SF_USER
sf_user erin; u_erin=$SF_USER
sf_user dave -e 2000-01-01; u_dave=$SF_USER   # expired account: pam_acct_mgmt says no

oath="$TEST_DIR/oath"
sf_pam_dir "$TEST_DIR/pam.d" "$oath"
sf_enrol "$oath" "$u_alice" TOTP
for u in "$u_bob" "$u_erin" "$u_dave"; do
    sf_enrol "$oath" "$u" HOTP
done
cat >"$TEST_DIR/users.map" <<EOF
# identity            user
cn:alice              $u_alice
email:bob@example.com $u_bob
cn:erin               $u_erin
cn:dave               $u_dave
EOF

echo_port=$(free_port)
p_vpn=$(free_port) p_short=$(free_port) p_plain=$(free_port) p_closed=$(free_port)
c_alice=$(free_port) c_bob=$(free_port) c_carol=$(free_port) c_dave=$(free_port)
c_erin=$(free_port) c_plain=$(free_port) c_closed=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"

conf="$TEST_DIR/ktlstund.ini"
{
    global_section
    sf_gated_tunnel vpn "$p_vpn" "$echo_port"
    sf_gated_tunnel short "$p_short" "$echo_port" "grant_lifetime = 6s" "bind_grant_to_address = yes"
    server_tunnel plain "$p_plain" "$echo_port" "ca = $TEST_DIR/users-ca.pem"
    sf_client_tunnel c-alice "$c_alice" "$p_vpn" alice
    sf_client_tunnel c-bob "$c_bob" "$p_vpn" bob
    sf_client_tunnel c-carol "$c_carol" "$p_vpn" carol
    sf_client_tunnel c-dave "$c_dave" "$p_vpn" dave
    sf_client_tunnel c-erin "$c_erin" "$p_short" erin
    sf_client_tunnel c-plain "$c_plain" "$p_plain" alice
    sf_client_tunnel c-closed "$c_closed" "$p_closed" alice
} >"$conf"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"

note "no login yet: refused with insufficient_security, and both ends' logs say what to do"
sf_expect_denied "127.0.0.1:$p_vpn" alice "data before login"
assert_log "$log" 'refused tunnel=vpn peer=127\.0\.0\.1:[0-9]+ reason="second factor: no live login for alice .*ktlstun login' \
    "refusal without a login"
if plain_echo "127.0.0.1:$c_alice" "through-client-$RANDOM"; then
    fail "the client tunnel carried data before login"
fi
assert_log "$log" 'audit tunnel=c-alice .*close="peer sent alert: insufficient security" result=error' \
    "the client tunnel's close reason"
assert_log "$log" 'warning: \[c-alice\] a one-time-password login is needed, from this machine \(alert insufficient_security\): run: ktlstun login c-alice$' \
    "the client tunnel's warning says what to run"
assert_contains "$("$KTLSTUN" status --json -c "$conf" | jq -r '.tunnels[] | select(.name == "c-alice") | .last_refusal')" \
    "run: ktlstun login c-alice" "ktlstun status: [c-alice]'s last refusal"
assert_contains "$("$KTLSTUN" status --json -c "$conf" | jq -r '.tunnels[] | select(.name == "vpn") | .last_refusal')" \
    "second factor: no live login for alice" "ktlstun status: [vpn]'s last refusal"


note "right TOTP code: granted; data flows through s_client and the client tunnel"
first_code=$(sf_totp)
sf_expect_login "$conf" c-alice "$first_code" 0 "Access granted through c-alice until" "TOTP login"
grep -q "One-time password (OATH) for \`$u_alice'" "$TEST_DIR"/login.*.out || fail "pam_oath's prompt was not shown"
assert_log "$log" "second-factor success: tunnel=vpn identity=\"alice\" user=$u_alice source=127\.0\.0\.1 grant_until=" \
    "success line"
sf_data "127.0.0.1:$p_vpn" alice "after-login-$RANDOM" || fail "no echo after login: $(cat "$TEST_DIR/data.out.err")"
plain_echo "127.0.0.1:$c_alice" "client-tunnel-$RANDOM" || fail "no echo through the client tunnel after login"
# ktlstun status lists the grant once, however many workers report it.
status_json=$("$KTLSTUN" status --json -c "$conf")
assert_eq "$(echo "$status_json" | jq '[.grants[] | select(.tunnel == "vpn" and .identity == "alice")] | length')" 1 \
    "alice's grant in ktlstun status"
left=$(echo "$status_json" | jq '.grants[] | select(.identity == "alice") | .expires_in')
[ "$left" -gt 0 ] && [ "$left" -le 28800 ] || fail "grant expires_in $left (grant_lifetime 8h)"
assert_contains "$("$KTLSTUN" status -c "$conf")" "GRANTED TO" "status table lists grants"
# The grant is alice's certificate's, not the tunnel's: bob still waits outside.
sf_expect_denied "127.0.0.1:$p_vpn" bob "another certificate after alice's login"

note "the same code again is rejected (pam_oath remembers it), a wrong code too"
# The very code used above: computing it again could land in the next 30 s step.
sf_expect_login "$conf" c-alice "$first_code" 1 "Wrong code" "reused TOTP code"
sf_expect_login "$conf" c-alice 000000 1 "Wrong code" "wrong code"
assert_log "$log" "second-factor failure: tunnel=vpn identity=\"alice\" user=$u_alice source=127\.0\.0\.1 failures=2/5" \
    "failures counted"
assert_no_log "$log" "$(sf_totp)" "a one-time password reached the log"

note "HOTP, mapped by email: granted once per code"
sf_expect_login "$conf" c-bob "$(sf_hotp 0)" 0 "Access granted" "HOTP login"
sf_data "127.0.0.1:$p_vpn" bob "bob-$RANDOM" || fail "no echo for bob after login"
sf_expect_login "$conf" c-bob "$(sf_hotp 0)" 1 "Wrong code" "reused HOTP code"
sf_expect_login "$conf" c-bob "$(sf_hotp 1)" 0 "Access granted" "next HOTP code"

note "unmapped certificate, expired account"
sf_expect_login "$conf" c-carol 123456 1 "does not know whose certificate this is" "unmapped identity"
assert_log "$log" 'second-factor failure: tunnel=vpn identity="carol" user=- .*reason="carol .* is not listed in' \
    "unmapped identity logged"
sf_expect_login "$conf" c-dave "$(sf_hotp 0)" 1 "account check refused" "expired account"
sf_expect_denied "127.0.0.1:$p_vpn" dave "expired account after a right code"

note "login where none is needed, or nobody listens"
sf_expect_login "$conf" c-plain 123456 3 "does not offer a second-factor login" "ungated tunnel"
sf_expect_login "$conf" c-closed 123456 3 "cannot reach 127.0.0.1:$p_closed" "closed port"
sf_expect_login "$conf" vpn 123456 2 "not a client tunnel" "server tunnel named"

note "bind_grant_to_address: the grant works from 127.0.0.1 only; then it expires"
# The checks below must fit in the 6 s grant even on a loaded machine (ASan, CI); the
# grant began before login_done, so 6.5 s after it the grant is over.
sf_expect_login "$conf" c-erin "$(sf_hotp 0)" 0 "Access granted" "login on the short tunnel"
login_done=$(now_ms)
sf_data "127.0.0.1:$p_short" erin "bound-$RANDOM" || fail "no echo from the login's address"
out=$(printf 'other-address\n' | timeout 5 socat -t 3 - \
    "OPENSSL:127.0.0.1:$p_short,bind=127.0.0.2,cert=$TEST_DIR/erin.pem,key=$TEST_DIR/user.key,cafile=$PKI/ca.pem,commonname=localhost" 2>&1) || true
# (socat reports the alert as a plain end of stream; s_client cannot pick its address.)
assert_not_contains "$out" "other-address" "a grant bound to 127.0.0.1 worked from 127.0.0.2"
assert_log "$log" 'refused tunnel=short peer=127\.0\.0\.2:[0-9]+ reason="second factor: the login of erin .* from another address' \
    "bound refusal reason"
left_ms=$((login_done + 6500 - $(now_ms)))
if [ "$left_ms" -gt 0 ]; then
    sleep "$((left_ms / 1000)).$(printf '%03d' $((left_ms % 1000)))"
fi
sf_expect_denied "127.0.0.1:$p_short" erin "data after grant_lifetime"

stop_ktlstund "$KTLSTUND_PID"
assert_no_log "$log" 'second factor helper .* (exited|killed)' "the PAM helper died"
