#!/usr/bin/env bash
# Mistakes in ktlstun.ini and in the files it names, each reported at its FILE:LINE
# with the fix, in ktlstun's words rather than OpenSSL's, by `ktlstund -t`, `ktlstun
# check-config`, the start (refused) and a reload (refused, the running configuration
# keeps serving):
#   a typo of a key (did you mean), a stunnel or ghostunnel key name (ktlstun's name),
#   a pkcs11: URI as key with its ';' unquoted (not cut there, not opened as a file),
#   a key in a TPM given otherwise than by a persistent handle, a key that does not
#   belong to the certificate, a leaf after another certificate, a PKCS#12 bundle or an
#   encrypted key without a passphrase configured (never a passphrase prompt), a DER
#   key.
source "$(dirname "$0")/lib.sh"

port=$(free_port)
echo_port=$(free_port)
mkdir -p "$TEST_DIR/conf"

# write_conf FILE ["KEY = VALUE" for [web]]...: with runtime_dir $RUN, so that the
# refused starts do not meet the running daemon's lock.
RUN=$TEST_DIR/run
write_conf() {
    local file=$1
    shift
    { global_section "runtime_dir = $RUN"; server_tunnel web "$port" "$echo_port" "$@"; } >"$file"
}
line_of() { grep -n -F -x -- "$2" "$1" | head -n 1 | cut -d: -f1; }
esc() { sed 's/[][\.*^$/+?(){}|#]/\\&/g' <<<"$1"; }
# at FILE LINE_TEXT KEY: the ERE for "FILE:LINE: [web] KEY: " at the line LINE_TEXT.
at() { echo "$(esc "$1"):$(line_of "$1" "$2"): \\[web\\] $3: "; }

# refused FILE ERE: -t, check-config and a start with FILE exit 1 and print ERE
# (anchored at the line's start for the checks), and nothing in OpenSSL's words.
refused() {
    local file=$1 re=$2 out rc tool
    for tool in t c s; do
        rc=0
        case $tool in
            t) out=$(timeout 20 "$KTLSTUND" -t -c "$file" 2>&1 </dev/null) || rc=$? ;;
            c) out=$(timeout 20 "$KTLSTUN" check-config -c "$file" 2>&1 </dev/null) || rc=$? ;;
            s) out=$(timeout 20 "$KTLSTUND" -f -c "$file" 2>&1 </dev/null) || rc=$? ;;
        esac
        [ "$rc" = 1 ] || fail "$tool: $(basename "$file") exited $rc, expected 1: $out"
        if [ "$tool" = s ]; then
            grep -qE -- "(^|: error: )$re" <<<"$out" || fail "start with $(basename "$file"): no /$re/ in: $out"
        else
            grep -qE -- "^$re" <<<"$out" || fail "$tool: $(basename "$file"): no /^$re/ in: $out"
        fi
        grep -qiE "values mismatch|no start line|bad decrypt|PEM routines|pass phrase" <<<"$out" &&
            fail "$tool: $(basename "$file"): OpenSSL's words: $out"
    done
    return 0
}

# ---- a daemon to reload
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
conf="$TEST_DIR/conf/running.ini"
write_conf "$conf"
cp "$conf" "$TEST_DIR/conf/good.ini"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID
client_args alice
RUN=$TEST_DIR/run-cases
mkdir -p "$RUN"

# case NAME ERE-AFTER-WHERE KEY LINE_TEXT ["KEY = VALUE"]...: the configuration with
# the arguments, refused everywhere with "FILE:LINE: [web] KEY: " and the ERE.
case_of() {
    local name=$1 re=$2 key=$3 line_text=$4 f where
    shift 4
    f="$TEST_DIR/conf/$name.ini"
    write_conf "$f" "$@"
    where=$(at "$f" "$line_text" "$key")
    refused "$f" "$where$re"
    cp "$f" "$conf"
    where=$(at "$conf" "$line_text" "$key")
    assert_eq "$(reload "$pid" "$log")" refused "reload with $name"
    assert_log "$log" "error: $where$re" "the reload's refusal of $name"
    tls_echo "127.0.0.1:$port" "after-$name-$RANDOM" "$TEST_DIR/$name.echo" "${CLIENT_ARGS[@]}" ||
        fail "no echo after the refused reload with $name"
}

# ---- key names
case_of typo "unknown key; did you mean 'allow_ou'\\?" allow_uo "allow_uo = eng" "allow_uo = eng"
case_of stunnel "unknown key: \`accept\` is stunnel's name; in ktlstun it is \`listen\` \\(see README: Coming from other tools\\)" \
    accept "accept = 127.0.0.1:1" "accept = 127.0.0.1:1"
case_of ghostunnel "unknown key: \`cacert\` is ghostunnel's name; in ktlstun it is \`ca\`" \
    cacert "cacert = $PKI/ca.pem" "cacert = $PKI/ca.pem"
grep -q "Coming from other tools" "$(dirname "$0")/../../README.md" || fail "README has no 'Coming from other tools'"

# ---- a PKCS#11 URI: unquoted, its ';' would start a comment; never opened as a file
case_of pkcs11 "a pkcs11: URI holds ';', which starts a comment here: put the value in double quotes" \
    key "key = pkcs11:token=ktlstun;object=web" "key = pkcs11:token=ktlstun;object=web"

# ---- a key in a TPM: another scheme than handle:, a handle that is not persistent, a
# TSS2 key file (a persistent handle is served: test_hardware_keys.sh)
case_of tpm2scheme "a key in a TPM is given by its persistent handle: key = handle:0x81000001" \
    key "key = tpm2:0x81000001" "key = tpm2:0x81000001"
case_of tpm2handle "'handle:0x80000001' is not a persistent TPM handle: give key = handle:0x81000000 to handle:0x81ffffff" \
    key "key = handle:0x80000001" "key = handle:0x80000001"
printf -- '-----BEGIN TSS2 PRIVATE KEY-----\nMAA=\n-----END TSS2 PRIVATE KEY-----\n' >"$TEST_DIR/conf/server.tss2"
case_of tss2 "$(esc "$TEST_DIR/conf/server.tss2") is a key in a TPM \\(TSS2 PRIVATE KEY\\): give the key's persistent handle instead: make the key persistent with tpm2_evictcontrol -C o -c KEY\\.ctx 0x81000001, then key = handle:0x81000001" \
    key "key = $TEST_DIR/conf/server.tss2" "key = $TEST_DIR/conf/server.tss2"

# ---- a key of another certificate
case_of mismatch "key $(esc "$PKI/alice.key") does not belong to certificate $(esc "$PKI/server.pem") \\(the certificate's public key differs\\)" \
    key "key = $PKI/alice.key" "key = $PKI/alice.key"

# ---- the leaf after another leaf
cat "$PKI/alice.crt" "$PKI/server.crt" >"$TEST_DIR/conf/second.pem"
case_of second "$(esc "$TEST_DIR/conf/second.pem"): key .* belongs to certificate 2 in the file, not to the first: put the leaf first, then its intermediates" \
    cert "cert = $TEST_DIR/conf/second.pem" "cert = $TEST_DIR/conf/second.pem"

# ---- a PKCS#12 bundle with a passphrase, and encrypted keys (PKCS#8 and the
# traditional Proc-Type form), with no passphrase configured
openssl pkcs12 -export -in "$PKI/server.pem" -inkey "$PKI/server.key" -passout pass:secret \
    -out "$TEST_DIR/conf/server.p12" 2>/dev/null
p12=$(esc "$TEST_DIR/conf/server.p12")
case_of p12cert "$p12 is a PKCS#12 bundle protected by a passphrase: set key_passphrase_file \\(or key_passphrase_credential\\)" \
    cert "cert = $TEST_DIR/conf/server.p12" "cert = $TEST_DIR/conf/server.p12" "key ="
case_of p12key "$p12 is a PKCS#12 bundle protected by a passphrase" \
    key "key = $TEST_DIR/conf/server.p12" "key = $TEST_DIR/conf/server.p12"

openssl pkey -in "$PKI/server.key" -aes256 -passout pass:secret -out "$TEST_DIR/conf/enc8.key"
openssl pkey -in "$PKI/server.key" -traditional -aes256 -passout pass:secret -out "$TEST_DIR/conf/enctrad.key"
grep -q "Proc-Type: 4,ENCRYPTED" "$TEST_DIR/conf/enctrad.key" || fail "openssl wrote no traditional encrypted key"
for k in enc8 enctrad; do
    kf=$(esc "$TEST_DIR/conf/$k.key")
    case_of "$k" "$kf is encrypted with a passphrase: set key_passphrase_file \\(or key_passphrase_credential\\) to the file that holds it" \
        key "key = $TEST_DIR/conf/$k.key" "key = $TEST_DIR/conf/$k.key"
done

# ---- a DER key
openssl pkey -in "$PKI/server.key" -outform DER -out "$TEST_DIR/conf/server.der"
case_of der "$(esc "$TEST_DIR/conf/server.der") holds no private key in PEM form; a DER one converts with openssl pkey -inform DER" \
    key "key = $TEST_DIR/conf/server.der" "key = $TEST_DIR/conf/server.der"

# ---- nothing of a key reaches the log
body=$(sed -n 2p "$PKI/server.key")
[ -n "$body" ] || fail "server.key has no second line"
grep -qF -- "$body" "$log" && fail "key material in the log"

cp "$TEST_DIR/conf/good.ini" "$conf"
assert_eq "$(reload "$pid" "$log")" reloaded "reload back to the good configuration"
stop_ktlstund "$pid"
