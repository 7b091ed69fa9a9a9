#!/usr/bin/env bash
# pki.sh DIR — a fresh test PKI for the integration suite, made with the openssl CLI.
#
#   root CA ─► intermediate CA ─► leaves (EC P-256 unless RSA is the point)
#
# Files in DIR (NAME.pem = leaf + intermediate, NAME.crt = leaf only, NAME.key,
# NAME.sha256 = certificate fingerprint, NAME.spki = SubjectPublicKeyInfo SHA-256,
# NAME.serial = serial in hex; both lowercase hex without colons):
#   ca.pem                  the root: what every verifier trusts
#   cadir/                  the root as a hashed directory (ca = DIR)
#   intermediate.pem        the intermediate CA certificate alone
#   server                  SAN DNS:localhost, IP:127.0.0.1; serverAuth
#   server-new              same names, new key and serial (reload test)
#   server-wrongsan         SAN DNS:wrong.example.com only; serverAuth
#   server-expired          as server, notAfter in the past
#   server-notyet           as server, notBefore a year from now
#   server-soon             as server, notAfter in ten days
#   server-noeku            as server without extendedKeyUsage (good for either purpose)
#   alice                   CN=alice, OU=eng, SAN email + spiffe URI; clientAuth
#   mallory                 CN=mallory; clientAuth
#   expired                 notAfter in the past
#   notyet                  notBefore a year from now
#   unknownca               signed by a root nobody trusts (leaf only in .pem)
#   selfsigned              self-signed leaf
#   revoked                 revoked in crl.pem
#   noclientauth            extendedKeyUsage serverAuth only
#   sha1                    signed by the intermediate with SHA-1
#   rsa1024                 RSA 1024-bit key
#   caleaf                  CN=Rogue Issuing CA: a CA certificate (CA:TRUE, keyCertSign) that
#                           also has digitalSignature and clientAuth (OpenSSL verifies it
#                           as a client leaf)
#   twocn                   two commonNames, CN=alice then CN=mallory in DER order; clientAuth
#   crl.pem                 intermediate CRL (revokes "revoked") + root CRL (revokes none)
#   crl-alice.pem           intermediate CRL revoking "revoked" and alice (higher crlNumber) + root CRL
#   crl-leaf.pem            the intermediate CRL alone (for leaf-only CRL checking)
#   crl-leaf-alice.pem      the intermediate CRL revoking alice too, alone
#   crl-root.pem            the root CRL alone (no intermediate CRL)
#
# Ends with a self-check: every good leaf verifies against ca.pem (+ CRLs, all levels),
# every bad one fails with the OpenSSL error it exists to provoke. Prints the time taken.
set -euo pipefail

dir=${1:?usage: pki.sh DIR}
start_ns=$(date +%s%N)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
work="$dir/.work"
rm -rf "$work"
mkdir -p "$work"

die() { echo "pki.sh: $*" >&2; exit 1; }

ossl() {
    local out
    if ! out=$(openssl "$@" 2>&1); then
        echo "$out" >&2
        die "openssl $1 failed"
    fi
}

# A CA database for `openssl ca`: it is what lets us set past/future validity on
# OpenSSL 3.0 (whose `x509 -req` has no -not_before/-not_after) and issue CRLs.
make_ca_config() {  # NAME KEY CERT
    local name=$1 key=$2 cert=$3 db="$work/db-$1"
    mkdir -p "$db/new"
    : >"$db/index.txt"
    echo "unique_subject = no" >"$db/index.txt.attr"
    echo 1000 >"$db/serial"
    echo 1000 >"$db/crlnumber"
    cat >"$work/$name.cnf" <<EOF
[ca]
default_ca = this_ca
[this_ca]
dir            = $db
database       = $db/index.txt
new_certs_dir  = $db/new
serial         = $db/serial
crlnumber      = $db/crlnumber
certificate    = $cert
private_key    = $key
default_md     = sha256
default_days   = 365
default_crl_days = 30
policy         = policy_any
copy_extensions = none
[policy_any]
commonName             = supplied
organizationalUnitName = optional
organizationName       = optional
[crl_ext]
authorityKeyIdentifier = keyid:always
EOF
}

# Extension sections used with `openssl ca -extfile`.
cat >"$work/ext.cnf" <<'EOF'
[root_ca]
basicConstraints       = critical, CA:TRUE
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
[intermediate_ca]
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, keyCertSign, cRLSign
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
[server]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
[server_noeku]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
subjectAltName         = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
[server_wrongsan]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectAltName         = DNS:wrong.example.com
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
[alice]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = clientAuth
subjectAltName         = email:alice@example.com, URI:spiffe://example.com/alice
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
[client]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
[server_only_eku]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = serverAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
[ca_leaf]
basicConstraints       = critical, CA:TRUE, pathlen:0
keyUsage               = critical, digitalSignature, keyCertSign, cRLSign
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
authorityKeyIdentifier = keyid:always
[selfsigned]
basicConstraints       = critical, CA:FALSE
keyUsage               = critical, digitalSignature, keyEncipherment
extendedKeyUsage       = clientAuth
subjectKeyIdentifier   = hash
EOF

# A minimal request config, so `openssl req` adds nothing from the system openssl.cnf.
cat >"$work/req.cnf" <<'EOF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
EOF

ec_key()  { ossl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1"; }
rsa_key() { ossl genpkey -algorithm RSA -pkeyopt "rsa_keygen_bits:$2" -out "$1"; }

csr() {  # KEY SUBJECT OUT
    ossl req -config "$work/req.cnf" -new -key "$1" -subj "$2" -out "$3"
}

# sign CA_NAME CSR OUT EXTSECTION [extra openssl ca options...]
sign() {
    local ca=$1 in=$2 out=$3 ext=$4
    shift 4
    ossl ca -batch -notext -config "$work/$ca.cnf" -extfile "$work/ext.cnf" \
        -preserveDN -extensions "$ext" -in "$in" -out "$out" "$@"
}

# Roots: the trusted one and one nobody trusts.
for root in root unknownroot; do
    ec_key "$work/$root.key"
done
ossl req -x509 -new -key "$work/root.key" -subj "/O=ktlstun test/CN=ktlstun Test Root CA" \
    -days 3650 -sha256 -extensions root_ca -config <(cat "$work/req.cnf" "$work/ext.cnf") -out "$dir/ca.pem"
ossl req -x509 -new -key "$work/unknownroot.key" -subj "/O=elsewhere/CN=Unknown Root CA" \
    -days 3650 -sha256 -extensions root_ca -config <(cat "$work/req.cnf" "$work/ext.cnf") -out "$work/unknownroot.pem"
make_ca_config root "$work/root.key" "$dir/ca.pem"
make_ca_config unknownroot "$work/unknownroot.key" "$work/unknownroot.pem"

# Intermediate.
ec_key "$work/intermediate.key"
csr "$work/intermediate.key" "/O=ktlstun test/CN=ktlstun Test Intermediate CA" "$work/intermediate.csr"
sign root "$work/intermediate.csr" "$dir/intermediate.pem" intermediate_ca -days 1825
make_ca_config intermediate "$work/intermediate.key" "$dir/intermediate.pem"

# leaf NAME SUBJECT EXTSECTION [KEYTYPE] [openssl ca options...]
#   KEYTYPE: ec (default) or rsaBITS
leaf() {
    local name=$1 subject=$2 ext=$3 keytype=${4:-ec} ca=${CA:-intermediate}
    shift 3
    [ $# -gt 0 ] && shift
    case $keytype in
        ec) ec_key "$dir/$name.key" ;;
        rsa*) rsa_key "$dir/$name.key" "${keytype#rsa}" ;;
    esac
    csr "$dir/$name.key" "$subject" "$work/$name.csr"
    sign "$ca" "$work/$name.csr" "$dir/$name.crt" "$ext" "$@"
    if [ "$ca" = intermediate ]; then
        cat "$dir/$name.crt" "$dir/intermediate.pem" >"$dir/$name.pem"
    else
        cp "$dir/$name.crt" "$dir/$name.pem"
    fi
}

now_plus() { date -u -d "$1" +%y%m%d%H%M%SZ; }

leaf server          "/O=ktlstun test/CN=localhost"          server
leaf server-new      "/O=ktlstun test/CN=localhost"          server
leaf server-wrongsan "/O=ktlstun test/CN=wrong.example.com"  server_wrongsan
leaf server-expired  "/O=ktlstun test/CN=localhost"          server ec \
    -startdate 200101000000Z -enddate 210101000000Z
leaf server-notyet   "/O=ktlstun test/CN=localhost"          server ec \
    -startdate "$(now_plus '+1 year')" -enddate "$(now_plus '+2 years')"
leaf server-soon     "/O=ktlstun test/CN=localhost"          server ec \
    -enddate "$(now_plus '+10 days')"
leaf server-noeku    "/O=ktlstun test/CN=localhost"          server_noeku
leaf alice           "/O=ktlstun test/OU=eng/CN=alice"       alice
leaf mallory         "/O=ktlstun test/CN=mallory"            client
leaf expired         "/O=ktlstun test/CN=expired"            client ec \
    -startdate 200101000000Z -enddate 210101000000Z
leaf notyet          "/O=ktlstun test/CN=notyet"             client ec \
    -startdate "$(now_plus '+1 year')" -enddate "$(now_plus '+2 years')"
leaf revoked         "/O=ktlstun test/CN=revoked"            client
leaf noclientauth    "/O=ktlstun test/CN=noclientauth"       server_only_eku
leaf sha1            "/O=ktlstun test/CN=sha1"               client ec -md sha1
leaf rsa1024         "/O=ktlstun test/CN=rsa1024"            client rsa1024
leaf caleaf          "/O=ktlstun test/CN=Rogue Issuing CA"   ca_leaf
leaf twocn           "/O=ktlstun test/CN=alice/CN=mallory"   client
CA=unknownroot leaf unknownca "/O=elsewhere/CN=stranger"     client

# Self-signed leaf (not a CA).
ec_key "$dir/selfsigned.key"
ossl req -x509 -new -key "$dir/selfsigned.key" -subj "/O=ktlstun test/CN=selfsigned" -days 365 -sha256 \
    -extensions selfsigned -config <(cat "$work/req.cnf" "$work/ext.cnf") -out "$dir/selfsigned.crt"
cp "$dir/selfsigned.crt" "$dir/selfsigned.pem"

# CRLs: both CAs publish one, so either leaf-only or whole-chain CRL checking works.
ossl ca -config "$work/root.cnf" -gencrl -crlexts crl_ext -out "$work/crl-root.pem"
ossl ca -config "$work/intermediate.cnf" -revoke "$dir/revoked.crt" -crl_reason keyCompromise
ossl ca -config "$work/intermediate.cnf" -gencrl -crlexts crl_ext -out "$dir/crl-leaf.pem"
ossl ca -config "$work/intermediate.cnf" -revoke "$dir/alice.crt" -crl_reason keyCompromise
ossl ca -config "$work/intermediate.cnf" -gencrl -crlexts crl_ext -out "$dir/crl-leaf-alice.pem"
cat "$dir/crl-leaf.pem" "$work/crl-root.pem" >"$dir/crl.pem"
cat "$dir/crl-leaf-alice.pem" "$work/crl-root.pem" >"$dir/crl-alice.pem"
cp "$work/crl-root.pem" "$dir/crl-root.pem"

# CA as a hashed directory.
mkdir -p "$dir/cadir"
cp "$dir/ca.pem" "$dir/cadir/root.pem"
ossl rehash "$dir/cadir"

# Fingerprints, SPKI pins and serials for the tests.
for crt in "$dir"/*.crt; do
    name=$(basename "$crt" .crt)
    openssl x509 -in "$crt" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f' >"$dir/$name.sha256"
    openssl x509 -in "$crt" -noout -pubkey | openssl pkey -pubin -outform DER | sha256sum | cut -d' ' -f1 >"$dir/$name.spki"
    openssl x509 -in "$crt" -noout -serial | sed 's/.*=//' | tr 'A-F' 'a-f' >"$dir/$name.serial"
done
chmod 0600 "$dir"/*.key

# ---- self-check ----------------------------------------------------------------
fail=0
# expect NAME PURPOSE EXPECTED_ERROR_SUBSTRING|ok [extra verify options]
expect() {
    local name=$1 purpose=$2 want=$3 out
    shift 3
    out=$(openssl verify -CAfile "$dir/ca.pem" -untrusted "$dir/intermediate.pem" \
        -purpose "$purpose" "$@" "$dir/$name.crt" 2>&1) && out="ok:$out"
    if [ "$want" = ok ]; then
        case $out in ok:*) ;; *) echo "pki.sh: $name should verify: $out" >&2; fail=1 ;; esac
    else
        case $out in
            ok:*) echo "pki.sh: $name should fail with '$want' but verified" >&2; fail=1 ;;
            *"$want"*) ;;
            *) echo "pki.sh: $name should fail with '$want': $out" >&2; fail=1 ;;
        esac
    fi
}
crl_all=(-crl_check_all -CRLfile "$dir/crl.pem")
expect server          sslserver ok "${crl_all[@]}" -auth_level 2
expect server-new      sslserver ok "${crl_all[@]}" -auth_level 2
expect server-wrongsan sslserver ok "${crl_all[@]}" -auth_level 2
expect server          sslserver ok -verify_hostname localhost -verify_ip 127.0.0.1
expect server-wrongsan sslserver "hostname mismatch" -verify_hostname localhost
expect server-soon     sslserver ok "${crl_all[@]}" -auth_level 2
expect server-noeku    sslserver ok "${crl_all[@]}" -auth_level 2
expect server-noeku    sslclient ok "${crl_all[@]}" -auth_level 2
expect server-expired  sslserver "certificate has expired"
expect server-notyet   sslserver "certificate is not yet valid"
expect alice           sslserver "unsuitable certificate purpose"
expect alice           sslclient "unable to get certificate CRL" -crl_check_all -CRLfile "$dir/crl-leaf.pem"
expect alice           sslclient "unable to get certificate CRL" -crl_check_all -CRLfile "$dir/crl-root.pem"
expect alice           sslclient ok "${crl_all[@]}" -auth_level 2
expect alice           sslclient ok -crl_check -CRLfile "$dir/crl-leaf.pem" -auth_level 2
expect mallory         sslclient ok "${crl_all[@]}" -auth_level 2
expect alice           sslclient "certificate revoked" "-crl_check_all" -CRLfile "$dir/crl-alice.pem"
expect alice           sslclient "certificate revoked" "-crl_check" -CRLfile "$dir/crl-leaf-alice.pem"
expect expired         sslclient "certificate has expired"
expect notyet          sslclient "certificate is not yet valid"
expect unknownca       sslclient "unable to get local issuer certificate"
expect selfsigned      sslclient "self-signed certificate"
expect revoked         sslclient "certificate revoked" "${crl_all[@]}"
expect revoked         sslclient ok
expect noclientauth    sslclient "unsuitable certificate purpose"
expect sha1            sslclient "CA signature digest algorithm too weak" -auth_level 2
expect sha1            sslclient ok
expect rsa1024         sslclient "EE certificate key too weak" -auth_level 2
expect rsa1024         sslclient ok
# What ktlstun refuses itself: OpenSSL's chain verification lets both through.
expect caleaf          sslclient ok "${crl_all[@]}" -auth_level 2
expect twocn           sslclient ok "${crl_all[@]}" -auth_level 2
openssl x509 -in "$dir/sha1.crt" -noout -text | grep -q 'Signature Algorithm: ecdsa-with-SHA1' \
    || { echo "pki.sh: sha1 leaf is not SHA-1 signed" >&2; fail=1; }
openssl x509 -in "$dir/caleaf.crt" -noout -text | grep -q 'CA:TRUE' \
    || { echo "pki.sh: caleaf is not a CA certificate" >&2; fail=1; }
[ "$(openssl x509 -in "$dir/twocn.crt" -noout -subject -nameopt RFC2253)" = "subject=CN=mallory,CN=alice,O=ktlstun test" ] \
    || { echo "pki.sh: twocn does not have CN=alice then CN=mallory: $(openssl x509 -in "$dir/twocn.crt" -noout -subject)" >&2; fail=1; }
[ "$(cat "$dir/server.sha256")" != "$(cat "$dir/server-new.sha256")" ] \
    || { echo "pki.sh: server-new has the same fingerprint as server" >&2; fail=1; }
[ "$fail" = 0 ] || die "self-check failed"

rm -rf "$work"
end_ns=$(date +%s%N)
printf 'pki.sh: PKI in %s ready (%d.%02d s)\n' "$dir" $(((end_ns - start_ns) / 1000000000)) \
    $((((end_ns - start_ns) / 10000000) % 100))
