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
mkdir -p "$ca/new"
: >"$ca/index.txt"
echo 1000 >"$ca/serial"
cat >"$ca/ca.cnf" <<EOF
[ca]
default_ca = this_ca
[this_ca]
database = $ca/index.txt
new_certs_dir = $ca/new
serial = $ca/serial
certificate = $ca/root.pem
private_key = $ca/root.key
default_md = sha256
policy = policy_any
[policy_any]
commonName = supplied
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
EOF
for name in root brief; do
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$ca/$name.key" 2>/dev/null
done
openssl req -config "$ca/ca.cnf" -x509 -new -key "$ca/root.key" -subj "/CN=brief test root" \
    -days 2 -extensions root -out "$ca/root.pem"
openssl req -config "$ca/ca.cnf" -new -key "$ca/brief.key" -subj "/CN=brief" -out "$ca/brief.csr"
ends_at=$(($(date +%s) + $(scale 8)))
openssl ca -batch -notext -config "$ca/ca.cnf" -extfile "$ca/ca.cnf" -extensions client \
    -in "$ca/brief.csr" -out "$ca/brief.pem" \
    -startdate "$(date -u -d '-1 hour' +%y%m%d%H%M%SZ)" \
    -enddate "$(date -u -d "@$ends_at" +%y%m%d%H%M%SZ)" 2>"$ca/ca.err" \
    || fail "could not issue the short-lived certificate: $(cat "$ca/ca.err")"
cat "$PKI/ca.pem" "$ca/root.pem" >"$TEST_DIR/trusted.pem"

conf="$TEST_DIR/ktlstund.ini"
{
    global_section "workers = 1"   # one worker: the one that remembered the chain
    server_tunnel srv "$p_srv" "$echo_port" "ca = $TEST_DIR/trusted.pem"
} >"$conf"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"

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
while [ "$(date +%s)" -le $((ends_at + 1)) ]; do
    sleep 0.2
done
if tls_echo "127.0.0.1:$p_srv" "brief-late-$RANDOM" "$TEST_DIR/brief-late.out" "${CLIENT_ARGS[@]}" \
    -cert "$ca/brief.pem" -key "$ca/brief.key"; then
    fail "an expired certificate was admitted because its chain verified before it expired"
fi
assert_log "$log" 'warning: refused tunnel=srv peer=[^ ]+ reason="certificate expired on [^"]*\(CN=brief\)' \
    "the expired certificate's refusal"
note "verified chains ok"
