#!/usr/bin/env bash
# proxy_protocol = v2 on a gated tunnel: the PROXY header's user TLV (0xE1) is the
# local user user_map maps the certificate to, not its CN, and the CN sub-TLV (0x22)
# stays the certificate's. Checked with ../pp_receiver.py as the target, after a real
# login through the shipped PAM stack.
source "$(dirname "$0")/lib.sh"

sf_make_ca
sf_cert alice
sf_user alice
sf_pam_dir "$TEST_DIR/pam.d" "$TEST_DIR/oath"
sf_enrol "$TEST_DIR/oath" "$SF_USER" HOTP
printf 'cn:alice %s\n' "$SF_USER" >"$TEST_DIR/users.map"

py_port=$(free_port) vpn_port=$(free_port) client_port=$(free_port)
: >"$TEST_DIR/py.out"
spawn "$TEST_DIR/py.log" python3 "$SF_DIR/../pp_receiver.py" "$py_port" "$TEST_DIR/py.out"
wait_listening "$py_port" || fail "the receiver did not listen: $(cat "$TEST_DIR/py.log")"
conf="$TEST_DIR/ktlstund.ini"
{
    global_section
    sf_gated_tunnel vpn "$vpn_port" "$py_port" "proxy_protocol = v2"
    sf_client_tunnel c-alice "$client_port" "$vpn_port" alice
} >"$conf"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"

sf_expect_login "$conf" c-alice "$(sf_hotp 0)" 0 "Access granted" "alice's login"
out=$(printf 'hello\n' | timeout "$(scale 10)" socat -t "$(scale 5)" - "TCP:127.0.0.1:$client_port" 2>&1 || true)
assert_eq "$out" "ok" "the receiver's answer through the gated tunnel"
wait_for_log "$TEST_DIR/py.out" "^--$" "$(scale 5)" || fail "the receiver got nothing: $(cat "$TEST_DIR/py.log")"
got=$(cat "$TEST_DIR/py.out")
note "receiver: $(tr '\n' ' ' <<<"$got")"
assert_contains "$got" "0xe1=$SF_USER" "the user TLV is user_map's user"
assert_contains "$got" "ssl_0x22=alice" "the CN sub-TLV is the certificate's"
assert_contains "$got" "0xe0=$(cert_sha256 "$TEST_DIR/alice.pem")" "the certificate's SHA-256"
assert_contains "$got" "data=hello" "the stream after the header"
