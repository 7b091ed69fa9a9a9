#!/usr/bin/env bash
# bind_grant_to_address defaults to yes: a copy of alice's key and certificate used from
# another address (127.0.0.2) cannot ride the grant alice's login made from 127.0.0.1,
# while alice herself gets in; a tunnel that sets bind_grant_to_address = no admits the
# copy too (what `no` gives up).
source "$(dirname "$0")/lib.sh"

sf_alice_vpn
p_loose=$(free_port) c_loose=$(free_port)
echo_port=$(sed -n 's/^target = 127\.0\.0\.1:\([0-9]*\)$/\1/p' "$SF_CONF" | head -n 1)
{
    sf_gated_tunnel loose "$p_loose" "$echo_port" "bind_grant_to_address = no"
    sf_client_tunnel c-loose "$c_loose" "$p_loose" alice
} >>"$SF_CONF"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$SF_CONF" "$log"

# from_other_address PORT TOKEN: alice's certificate and key from 127.0.0.2; prints
# what came back.
from_other_address() {
    printf '%s\n' "$2" | timeout "$(scale 10)" socat -t 3 - \
        "OPENSSL:127.0.0.1:$1,bind=127.0.0.2,cert=$TEST_DIR/alice.pem,key=$TEST_DIR/user.key,cafile=$PKI/ca.pem,commonname=localhost" 2>&1 || true
}

sf_expect_login "$SF_CONF" c-alice "$(sf_hotp 0)" 0 "Access granted" "alice's login on [vpn]"
sf_data "$SF_VPN" alice "owner-$RANDOM" || fail "alice refused from the address she logged in from"
token="copied-key-$RANDOM"
assert_not_contains "$(from_other_address "${SF_VPN##*:}" "$token")" "$token" \
    "the default let a copied key ride alice's grant from 127.0.0.2"
assert_log "$log" 'refused tunnel=vpn peer=127\.0\.0\.2:[0-9]+ reason="second factor: the login of alice .* from another address' \
    "the refusal of the other address"

sf_expect_login "$SF_CONF" c-loose "$(sf_hotp 1)" 0 "Access granted" "alice's login on [loose]"
token="loose-$RANDOM"
assert_contains "$(from_other_address "$p_loose" "$token")" "$token" \
    "bind_grant_to_address = no did not admit the grant from another address"

stop_ktlstund "$KTLSTUND_PID"
