#!/usr/bin/env bash
# Keys that never sit in a file:
#   PKCS#11: a SoftHSM2 token made in this test's dir (its own SOFTHSM2_CONF), the key
#   pair generated inside the token, its certificate signed through the pkcs11 engine,
#   the daemon serving with key = "pkcs11:…" (PIN from key_passphrase_file) on two
#   workers, data moved, a reload loading the key again; a wrong PIN refused at
#   FILE:LINE by -t and check-config, an unknown object by them and a reload; the
#   same key used by workers running as another user (the token's files theirs).
#   TPM: swtpm started here, a key made inside it with tpm2-tools and made persistent
#   (handle:0x81000001), its certificate signed through the tpm2 provider, the daemon
#   serving with it on two workers (TLS 1.3 and 1.2, X25519 and P-256, client
#   certificates), data moved, a reload; an absent handle refused at FILE:LINE by -t,
#   check-config and a reload; a worker that finds the key gone refusing to start; a TSS2 PRIVATE KEY file refused with the way to make
#   the key persistent (see README "Keys in files, PKCS#12, tokens and TPMs").
# No PRIVATE KEY PEM of these keys exists in the test's dir.
source "$(dirname "$0")/lib.sh"

MODULE=/usr/lib/softhsm/libsofthsm2.so
[ -e "$MODULE" ] || fail "softhsm2 is not installed ($MODULE)"
H="$TEST_DIR/hsm"
mkdir -p "$H/tokens" "$TEST_DIR/conf"
cat >"$H/softhsm2.conf" <<CONF
directories.tokendir = $H/tokens
objectstore.backend = file
log.level = ERROR
CONF
export SOFTHSM2_CONF="$H/softhsm2.conf"
PIN=$((RANDOM + 100000))
printf '%s\n' "$PIN" >"$H/pin"
printf '%s\n' "$((PIN + 1))" >"$H/wrong-pin"
chmod 600 "$H/pin" "$H/wrong-pin"
softhsm2-util --init-token --free --label ktlstun --pin "$PIN" --so-pin "$((PIN + 7))" >/dev/null
pkcs11-tool --module "$MODULE" --token-label ktlstun --login --pin "$PIN" \
    --keypairgen --key-type EC:prime256v1 --label server --id 01 >/dev/null 2>&1 ||
    fail "pkcs11-tool could not generate a key pair in the token"

# A CA of this test's own signs the token key's certificate; the client trusts it.
openssl req -x509 -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$TEST_DIR/hwca.key" \
    -subj "/CN=ktlstun hardware test CA" -days 2 -out "$TEST_DIR/hwca.pem" 2>/dev/null
cat >"$TEST_DIR/ext.cnf" <<'CONF'
[server]
basicConstraints = critical, CA:FALSE
keyUsage         = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName   = DNS:localhost, IP:127.0.0.1
CONF
URI="pkcs11:token=ktlstun;object=server;type=private"
openssl req -new -engine pkcs11 -keyform engine -key "$URI;pin-value=$PIN" \
    -subj "/O=ktlstun test/CN=localhost" -out "$H/server.csr" 2>"$H/req.err" ||
    fail "no CSR signed by the token's key: $(cat "$H/req.err")"
openssl x509 -req -in "$H/server.csr" -CA "$TEST_DIR/hwca.pem" -CAkey "$TEST_DIR/hwca.key" -CAcreateserial \
    -days 2 -extfile "$TEST_DIR/ext.cnf" -extensions server -out "$H/server.pem" 2>/dev/null
cat "$PKI/ca.pem" "$TEST_DIR/hwca.pem" >"$TEST_DIR/cas.pem"

echo_port=$(free_port)
port=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
write_conf() {
    local file=$1
    shift
    {
        global_section
        server_tunnel token "$port" "$echo_port" "cert = $H/server.pem" "key = \"$URI\"" \
            "key_passphrase_file = $H/pin" "pkcs11_module = $MODULE" "ca = $TEST_DIR/cas.pem" "$@"
    } >"$file"
}
conf="$TEST_DIR/conf/hsm.ini"
write_conf "$conf"
cp "$conf" "$TEST_DIR/conf/good.ini"
check_ok "$conf"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID

# Several connections at once, so that both workers sign with the token.
client=(-CAfile "$TEST_DIR/hwca.pem" -verify_return_error -verify_hostname localhost
    -cert "$PKI/alice.pem" -cert_chain "$PKI/alice.pem" -key "$PKI/alice.key")
echoes() {
    local i pids=() rc=0
    for i in 1 2 3 4 5 6; do
        tls_echo "127.0.0.1:$port" "token-$1-$i-$RANDOM" "$TEST_DIR/$1-$i.echo" "${client[@]}" &
        pids+=($!)
    done
    for i in "${pids[@]}"; do
        wait "$i" || rc=1
    done
    return "$rc"
}
echoes first || fail "no echo through the token's key: $(cat "$TEST_DIR"/first-*.echo.err | head -n 5)"
served=$(audit_lines "$log" token | grep -c 'result=completed' || true)
[ "$served" -ge 6 ] || fail "expected 6 completed connections, the audit has $served"
workers=$(audit_lines "$log" token | sed -n 's/^ktlstund\[\([0-9]*\)\].*/\1/p' | sort -u | wc -l)
note "connections served by $workers worker(s)"

# ---- refused: a wrong PIN, an object the token does not hold
at_key() { echo ":$(line_of "$1" "$2"): \\[token\\] key: "; }
refused() {
    local file=$1 re=$2
    check_error "$file" "^$(esc "$file")$re"
    cp "$file" "$conf"
    assert_eq "$(reload "$pid" "$log")" refused "reload with $(basename "$file")"
    assert_log "$log" "error: $(esc "$conf")$re" "the reload's refusal of $(basename "$file")"
    cp "$TEST_DIR/conf/good.ini" "$conf"
}
# A wrong PIN: the checks log in afresh and refuse it. (The running daemon's token
# stays logged in from its start, so a reload does not log in again: the unit's
# ExecReload= runs ktlstund -t first, which refuses it.)
f="$TEST_DIR/conf/wrong-pin.ini"
write_conf "$f" "key_passphrase_file = $H/wrong-pin"
check_error "$f" "^$(esc "$f")$(at_key "$f" "key = \"$URI\"")no private key found in the token for $(esc "$URI") \\(check the token and object names, and the PIN\\)"
f="$TEST_DIR/conf/no-object.ini"
write_conf "$f" "key = \"pkcs11:token=ktlstun;object=absent;type=private\""
refused "$f" "$(at_key "$f" "key = \"pkcs11:token=ktlstun;object=absent;type=private\"")no private key found in the token"
grep -qF -- "$PIN" "$log" && fail "the PIN is in the log"

assert_eq "$(reload "$pid" "$log")" reloaded "reload of the good configuration (the token's key loaded again)"
echoes again || fail "no echo through the token's key after the reload"
stop_ktlstund "$pid"

# ---- workers that run as another user: libp11 opens the module again in each worker
# after the fork, as that user, so the token's files must be theirs to read.
user=nobody
chown -R "$user" "$H/tokens"
chmod o+x "$TEST_DIR" "$(dirname "$TEST_DIR")" "$H"
rm -rf "$TEST_DIR/run"
f="$TEST_DIR/conf/user.ini"
{
    global_section "user = $user"
    server_tunnel token "$port" "$echo_port" "cert = $H/server.pem" "key = \"$URI\"" \
        "key_passphrase_file = $H/pin" "pkcs11_module = $MODULE" "ca = $TEST_DIR/cas.pem"
} >"$f"
start_ktlstund "$f" "$TEST_DIR/user.log"
pid=$KTLSTUND_PID
echoes user || fail "no echo through the token's key with workers running as $user"
stop_ktlstund "$pid"

# ---- a TPM: swtpm on free loopback ports, a key generated in it
# The swtpm TCTI reaches the control channel on the next port.
for _ in 1 2 3 4 5 6 7 8; do
    tpm_port=$(free_port)
    ctrl_port=$((tpm_port + 1))
    [ -z "$(ss -Hltn "sport = :$ctrl_port")" ] && break
done
mkdir -p "$TEST_DIR/tpm"
spawn "$TEST_DIR/swtpm.out" swtpm socket --tpm2 --server "type=tcp,port=$tpm_port,bindaddr=127.0.0.1" \
    --ctrl "type=tcp,port=$ctrl_port,bindaddr=127.0.0.1" --flags not-need-init,startup-clear \
    --tpmstate "dir=$TEST_DIR/tpm"
wait_listening "$tpm_port" || fail "swtpm does not listen: $(cat "$TEST_DIR/swtpm.out")"
export TPM2OPENSSL_TCTI="swtpm:host=127.0.0.1,port=$tpm_port" TPM2TOOLS_TCTI="swtpm:host=127.0.0.1,port=$tpm_port"
T="$TEST_DIR/tpm"
# A key made and loaded inside the TPM (no private part written out), then persistent
# at 0x81000001; swtpm has three transient object slots, flushed between the steps.
{
    tpm2_createprimary -Q -C o -g sha256 -G ecc -c "$T/primary.ctx" && tpm2_flushcontext -t &&
        tpm2_create -Q -C "$T/primary.ctx" -G ecc256:ecdsa -c "$T/key.ctx" && tpm2_flushcontext -t &&
        tpm2_evictcontrol -Q -C o -c "$T/key.ctx" 0x81000001 && tpm2_flushcontext -t
} >"$T/make.err" 2>&1 || fail "no persistent key made in swtpm: $(cat "$T/make.err")"
rm -f "$T/primary.ctx" "$T/key.ctx"
openssl req -new -provider tpm2 -provider default -key handle:0x81000001 \
    -subj "/O=ktlstun test/CN=localhost" -out "$T/server.csr" 2>"$T/req.err" ||
    fail "no CSR signed by the TPM's key: $(cat "$T/req.err")"
openssl x509 -req -in "$T/server.csr" -CA "$TEST_DIR/hwca.pem" -CAkey "$TEST_DIR/hwca.key" -CAcreateserial \
    -days 2 -extfile "$TEST_DIR/ext.cnf" -extensions server -out "$T/server.pem" 2>/dev/null
write_tpm_conf() {
    local file=$1
    shift
    {
        global_section "workers = 2"
        server_tunnel tpm "$port" "$echo_port" "cert = $T/server.pem" "key = handle:0x81000001" \
            "ca = $TEST_DIR/cas.pem" "$@"
    } >"$file"
}
conf="$TEST_DIR/conf/tpm.ini"
write_tpm_conf "$conf"
check_ok "$conf"
log="$TEST_DIR/tpm.log"
start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID
# TLS 1.3 and 1.2, X25519 and P-256 key exchanges, client certificates, both workers
# signing with the TPM at once. (In TLS 1.2 the client must list the certificate's
# curve, P-256, among its groups.)
tpm_echoes() {
    local i pids=() rc=0 variants=("-tls1_3 -groups X25519" "-tls1_3 -groups P-256"
        "-tls1_2 -groups X25519:P-256" "-tls1_2 -groups P-256")
    for i in 0 1 2 3 4 5 6 7 8 9 10 11; do
        # shellcheck disable=SC2086
        tls_echo "127.0.0.1:$port" "tpm-$1-$i-$RANDOM" "$TEST_DIR/tpm-$1-$i.echo" "${client[@]}" \
            ${variants[i % 4]} &
        pids+=($!)
    done
    for i in "${pids[@]}"; do
        wait "$i" || rc=1
    done
    return "$rc"
}
tpm_echoes first || fail "no echo through the TPM's key: $(cat "$TEST_DIR"/tpm-first-*.echo.err | head -n 5)"
served=$(audit_lines "$log" tpm | grep -c 'result=completed' || true)
[ "$served" -ge 12 ] || fail "expected 12 completed connections, the audit has $served"
for v in TLSv1.3 TLSv1.2; do
    audit_lines "$log" tpm | grep -q "tls=$v " || fail "no $v connection in the audit"
done
workers=$(audit_lines "$log" tpm | sed -n 's/^ktlstund\[\([0-9]*\)\].*/\1/p' | sort -u | wc -l)
note "TPM: connections served by $workers worker(s)"
assert_eq "$(reload "$pid" "$log")" reloaded "reload with the TPM's key"
tpm_echoes again || fail "no echo through the TPM's key after the reload"

# An absent handle: refused at FILE:LINE by -t, check-config and a reload.
f="$TEST_DIR/conf/tpm-absent.ini"
write_tpm_conf "$f" "key = handle:0x81000002"
re="$(at "$f" "key = handle:0x81000002" tpm key)the TPM \\(TCTI $(esc "$TPM2OPENSSL_TCTI")\\) gives no key for handle:0x81000002"
check_error "$f" "$re"
cp "$f" "$conf"
assert_eq "$(reload "$pid" "$log")" refused "reload with an absent handle"
assert_log "$log" "error: $(esc "$conf"):$(line_of "$conf" "key = handle:0x81000002"): \\[tpm\\] key: the TPM" "the reload's refusal of an absent handle"
tpm_echoes kept || fail "no echo through the TPM's key after the refused reload"
write_tpm_conf "$conf"
# A worker that cannot load the key does not start: the key evicted, a worker killed,
# its replacement says why and exits.
tpm2_evictcontrol -Q -C o -c 0x81000001 2>"$T/evict.err" || fail "cannot evict the key: $(cat "$T/evict.err")"
worker=$(audit_lines "$log" tpm | tail -n 1 | sed -n 's/^ktlstund\[\([0-9]*\)\].*/\1/p')
kill -KILL "$worker"
assert_log "$log" "error: $(esc "$conf"):$(line_of "$conf" "key = handle:0x81000001"): \\[tpm\\] key: the TPM \\(TCTI $(esc "$TPM2OPENSSL_TCTI")\\) gives no key for handle:0x81000001" \
    "a worker's refusal to start without the TPM's key"
assert_log "$log" "error: worker [0-9]+ exited with status 1" "the worker without its key exiting"
stop_ktlstund "$pid"

# A TSS2 PRIVATE KEY file (a key under a transient parent): refused, with the way to
# make it persistent.
openssl genpkey -provider tpm2 -provider default -algorithm EC -pkeyopt group:P-256 \
    -out "$T/server.tss2" 2>"$T/genpkey.err" ||
    fail "no key generated in swtpm: $(cat "$T/genpkey.err")"
grep -q "BEGIN TSS2 PRIVATE KEY" "$T/server.tss2" || fail "the TPM key is no TSS2 blob"
f="$TEST_DIR/conf/tss2.ini"
write_conf "$f" "key = $T/server.tss2" "key_passphrase_file =" "pkcs11_module ="
check_error "$f" "^$(esc "$f")$(at_key "$f" "key = $T/server.tss2")$(esc "$T/server.tss2") is a key in a TPM \\(TSS2 PRIVATE KEY\\): give the key's persistent handle instead: make the key persistent with tpm2_evictcontrol"
rm -f "$T/server.tss2"

# ---- no private key of the token or the TPM in a file here
token_pub=$(openssl x509 -in "$H/server.pem" -noout -pubkey)
while IFS= read -r file; do
    pub=$(openssl pkey -in "$file" -pubout 2>/dev/null || true)
    [ "$pub" != "$token_pub" ] || fail "$file holds the token's private key"
done < <(grep -rlE -- "-----BEGIN (EC |ENCRYPTED )?PRIVATE KEY-----" "$TEST_DIR" || true)
# The only private keys in files here are the test CA's (the clients' are the suite's).
others=$(grep -rlE -- "-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----" "$TEST_DIR" | grep -vxF "$TEST_DIR/hwca.key" || true)
[ -z "$others" ] || fail "private keys in files: $others"
