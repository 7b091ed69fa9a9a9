#!/usr/bin/env bash
# Verified chains are remembered per generation, but never past what made them valid:
# the same leaf sent without its intermediate is still refused after it was admitted
# with it, and a certificate that expires is refused from then on although its chain
# verified seconds before.
source "$(dirname "$0")/lib.sh"

echo_port=$(free_port)
p_srv=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"

# A client certificate that ends a few seconds from now, from a root of this test's
# own (`openssl ca`, since OpenSSL 3.0's `x509 -req` cannot set an end date).
ca="$TEST_DIR/ca"
short_lived_cert "$ca" brief brief clientAuth "$(scale 8)"
ends_at=$SHORT_LIVED_ENDS_AT
cat "$PKI/ca.pem" "$ca/root.pem" >"$TEST_DIR/trusted.pem"

conf="$TEST_DIR/ktlstund.ini"
{
    global_section "workers = 1"   # one worker: the one that remembered the chain
    server_tunnel srv "$p_srv" "$echo_port" "ca = $TEST_DIR/trusted.pem"
} >"$conf"
log="$TEST_DIR/ktlstund.log"
# The certificate's end comes by moving the daemon's wall clock (time(), which both
# the remembered chains and OpenSSL's checks read) past it, not by waiting for it.
KTLSTUND=$(clock_shift_daemon) start_ktlstund "$conf" "$log"

client_args
for i in 1 2 3; do
    tls_echo "127.0.0.1:$p_srv" "alice-$i-$RANDOM" "$TEST_DIR/alice$i.out" "${CLIENT_ARGS[@]}" \
        -cert "$PKI/alice.pem" -cert_chain "$PKI/alice.pem" -key "$PKI/alice.key" \
        || fail "alice with her intermediate refused (connection $i)"
done
# The same leaf alone: the intermediate that made it verify is missing.
if tls_echo "127.0.0.1:$p_srv" "alice-alone-$RANDOM" "$TEST_DIR/alone.out" "${CLIENT_ARGS[@]}" \
    -cert "$PKI/alice.crt" -key "$PKI/alice.key"; then
    fail "alice's leaf without its intermediate was admitted because the chain with it verified before"
fi
assert_log "$log" 'warning: refused tunnel=srv peer=[^ ]+ reason="unknown CA: issuer CN=ktlstun Test Intermediate CA' \
    "the leaf-alone refusal"

for i in 1 2; do
    tls_echo "127.0.0.1:$p_srv" "brief-$i-$RANDOM" "$TEST_DIR/brief$i.out" "${CLIENT_ARGS[@]}" \
        -cert "$ca/brief.pem" -key "$ca/brief.key" \
        || fail "the short-lived certificate was refused while still valid (connection $i, $(($(date +%s) - ends_at)) s after its end)"
done
# As far as the daemon can tell, the test waited until the certificate had been expired
# for more than a second.
shift_s=$((ends_at + 2 - $(date +%s)))
clock_shift $((shift_s > 0 ? shift_s : 0))
if tls_echo "127.0.0.1:$p_srv" "brief-late-$RANDOM" "$TEST_DIR/brief-late.out" "${CLIENT_ARGS[@]}" \
    -cert "$ca/brief.pem" -key "$ca/brief.key"; then
    fail "an expired certificate was admitted because its chain verified before it expired"
fi
assert_log "$log" 'warning: refused tunnel=srv peer=[^ ]+ reason="certificate expired on [^"]*\(CN=brief\)' \
    "the expired certificate's refusal"
note "verified chains ok"
