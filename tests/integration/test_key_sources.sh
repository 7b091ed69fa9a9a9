#!/usr/bin/env bash
# Keys that are not plain PEM files, served and checked:
#   a PKCS#12 bundle as cert without a key line, without a passphrase and with one
#   (key_passphrase_file; key_passphrase_credential from $CREDENTIALS_DIRECTORY, as
#   systemd's LoadCredential= gives it), the chain inside the bundle sent; encrypted
#   PEM keys (PKCS#8 and the traditional form) with either passphrase key; a handshake
#   and data through each. Refused at FILE:LINE by -t, check-config and a reload (the
#   running configuration keeps serving): a wrong passphrase, a credential without
#   CREDENTIALS_DIRECTORY or without its file. No passphrase ever reaches the log.
source "$(dirname "$0")/lib.sh"

SECRET="correct horse $RANDOM battery"
K="$TEST_DIR/keys"
mkdir -p "$K" "$TEST_DIR/creds" "$TEST_DIR/conf"
chmod 700 "$K" "$TEST_DIR/creds"
printf '%s\n' "$SECRET" >"$K/pass.txt"
printf '%s\n' "$SECRET" >"$TEST_DIR/creds/web.pass"
printf 'not it\n' >"$K/wrong.txt"
chmod 600 "$K/pass.txt" "$K/wrong.txt" "$TEST_DIR/creds/web.pass"

# The bundle carries the leaf, its key and the intermediate (the chain to send).
openssl pkcs12 -export -in "$PKI/server.crt" -inkey "$PKI/server.key" -certfile "$PKI/intermediate.pem" \
    -passout pass: -out "$K/nopass.p12"
openssl pkcs12 -export -in "$PKI/server.crt" -inkey "$PKI/server.key" -certfile "$PKI/intermediate.pem" \
    -passout "file:$K/pass.txt" -out "$K/pass.p12"
openssl pkey -in "$PKI/server.key" -aes256 -passout "file:$K/pass.txt" -out "$K/enc8.key"
openssl pkey -in "$PKI/server.key" -traditional -aes256 -passout "file:$K/pass.txt" -out "$K/enctrad.key"
grep -q "ENCRYPTED PRIVATE KEY" "$K/enc8.key" || fail "openssl wrote no PKCS#8 encrypted key"
grep -q "Proc-Type: 4,ENCRYPTED" "$K/enctrad.key" || fail "openssl wrote no traditional encrypted key"

export CREDENTIALS_DIRECTORY="$TEST_DIR/creds"
echo_port=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
declare -A ports
names=(p12 p12pass p12cred encfile enccred)
for name in "${names[@]}"; do
    ports[$name]=$(free_port)
done
# tunnel NAME "KEY = VALUE"...: a server tunnel on ports[NAME] with the server.pem
# defaults replaced by the arguments ("key =" drops the key line).
tunnel() {
    local name=$1
    shift
    server_tunnel "$name" "${ports[$name]}" "$echo_port" "$@"
}
conf="$TEST_DIR/conf/keys.ini"
{
    global_section
    tunnel p12 "cert = $K/nopass.p12" "key ="
    tunnel p12pass "cert = $K/pass.p12" "key =" "key_passphrase_file = $K/pass.txt"
    tunnel p12cred "cert = $K/pass.p12" "key = $K/pass.p12" "key_passphrase_credential = web.pass"
    tunnel encfile "key = $K/enc8.key" "key_passphrase_file = $K/pass.txt"
    tunnel enccred "key = $K/enctrad.key" "key_passphrase_credential = web.pass"
} >"$conf"
grep -q "^key = " <(sed -n '/^\[p12\]/,/^$/p' "$conf") && fail "the p12 tunnel has a key line"
check_ok "$conf"

log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID
# -verify_return_error against the root alone: the intermediate must come from the
# tunnel, so from the bundle for the PKCS#12 ones.
client_args alice
for name in "${names[@]}"; do
    tls_echo "127.0.0.1:${ports[$name]}" "through-$name-$RANDOM" "$TEST_DIR/$name.echo" "${CLIENT_ARGS[@]}" ||
        fail "no echo through $name: $(cat "$TEST_DIR/$name.echo.err")"
done
served_cert "127.0.0.1:${ports[p12]}" "$TEST_DIR/p12.served"
assert_eq "$(cert_sha256 "$TEST_DIR/p12.served")" "$(cert_sha256 "$PKI/server.crt")" "the bundle's leaf is served"

# ---- refusals, by the checks and by a reload
cp "$conf" "$TEST_DIR/conf/good.ini"
# refused FILE ERE: -t and check-config exit 1 with FILE followed by ERE (from
# ":LINE: "), a reload with FILE (as the running configuration's file) is refused with
# it, and the tunnels still echo.
refused() {
    local file=$1 re=$2
    check_error "$file" "^$(esc "$file")$re"
    cp "$file" "$conf"
    assert_eq "$(reload "$pid" "$log")" refused "reload with $(basename "$file")"
    assert_log "$log" "error: $(esc "$conf")$re" "the reload's refusal of $(basename "$file")"
    tls_echo "127.0.0.1:${ports[encfile]}" "after-$RANDOM" "$TEST_DIR/after.echo" "${CLIENT_ARGS[@]}" ||
        fail "no echo after the refused reload with $(basename "$file")"
    cp "$TEST_DIR/conf/good.ini" "$conf"
}

f="$TEST_DIR/conf/wrong-pem.ini"
sed "s|^key_passphrase_file = $K/pass.txt|key_passphrase_file = $K/wrong.txt|" "$TEST_DIR/conf/good.ini" >"$f"
line=$(grep -n "key_passphrase_file = $K/wrong.txt" "$f" | sed -n 2p | cut -d: -f1)
refused "$f" ":$line: \\[encfile\\] key_passphrase_file: the passphrase in $(esc "$K/wrong.txt") does not decrypt $(esc "$K/enc8.key")"
line=$(grep -n "key_passphrase_file = $K/wrong.txt" "$f" | sed -n 1p | cut -d: -f1)
grep -qE "^$(esc "$f"):$line: \\[p12pass\\] key_passphrase_file: the passphrase in $(esc "$K/wrong.txt") does not decrypt $(esc "$K/pass.p12")" <<<"$ERR" ||
    fail "no refusal of the bundle's wrong passphrase: $ERR"

f="$TEST_DIR/conf/nocred.ini"
sed "s|= web.pass|= other.pass|" "$TEST_DIR/conf/good.ini" >"$f"
line=$(grep -n "key_passphrase_credential = other.pass" "$f" | sed -n 1p | cut -d: -f1)
refused "$f" ":$line: \\[p12cred\\] key_passphrase_credential: $(esc "$TEST_DIR/creds/other.pass"): No such file or directory"

f="$TEST_DIR/conf/nodir.ini"
cp "$TEST_DIR/conf/good.ini" "$f"
line=$(grep -n "key_passphrase_credential = web.pass" "$f" | sed -n 1p | cut -d: -f1)
(
    unset CREDENTIALS_DIRECTORY
    check_error "$f" "^$(esc "$f"):$line: \\[p12cred\\] key_passphrase_credential: CREDENTIALS_DIRECTORY is not set: credential web.pass comes from the unit's LoadCredential=web.pass:FILE"
)

# ---- a passphrase file others can read: a warning at its line
chmod 644 "$K/pass.txt"
line=$(grep -n "key_passphrase_file = $K/pass.txt" "$TEST_DIR/conf/good.ini" | sed -n 1p | cut -d: -f1)
check_ok "$TEST_DIR/conf/good.ini" "^$(esc "$TEST_DIR/conf/good.ini"):$line: \\[p12pass\\] key_passphrase_file: warning: $(esc "$K/pass.txt") can be read by its group or others \\(mode 0644\\): chmod 0600"
chmod 600 "$K/pass.txt"

# ---- the passphrase is never in the log, nor in what the checks print
grep -qF -- "$SECRET" "$log" && fail "the passphrase is in the log"
run_check d "$TEST_DIR/conf/wrong-pem.ini"
grep -qF -- "not it" <<<"$ERR$OUT" && fail "the wrong passphrase is in -t's output"

assert_eq "$(reload "$pid" "$log")" reloaded "reload of the good configuration (keys loaded again)"
for name in "${names[@]}"; do
    tls_echo "127.0.0.1:${ports[$name]}" "again-$name-$RANDOM" "$TEST_DIR/$name.again" "${CLIENT_ARGS[@]}" ||
        fail "no echo through $name after the reload"
done
stop_ktlstund "$pid"
