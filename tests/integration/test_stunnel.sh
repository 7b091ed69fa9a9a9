#!/usr/bin/env bash
# stunnel interop both ways, with integrity checks (load_client, half-close):
#   load_client → stunnel client (cert alice) → ktlstun server tunnel → echo_server
#   load_client → ktlstun client tunnel (cert alice) → stunnel server (requireCert) → echo_server
source "$(dirname "$0")/lib.sh"

STUNNEL=$(command -v stunnel4 || command -v stunnel) || fail "stunnel4 is not installed"

echo_port=$(free_port)
k_server=$(free_port)
st_client=$(free_port)
st_server=$(free_port)
k_client=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"

cat >"$TEST_DIR/stunnel.conf" <<EOF
foreground = yes
pid =
debug = info
output = $TEST_DIR/stunnel.log

[to-ktlstun]
client = yes
accept = 127.0.0.1:$st_client
connect = 127.0.0.1:$k_server
cert = $PKI/alice.pem
key = $PKI/alice.key
CAfile = $PKI/ca.pem
verifyChain = yes
checkHost = localhost

[from-ktlstun]
accept = 127.0.0.1:$st_server
connect = 127.0.0.1:$echo_port
cert = $PKI/server.pem
key = $PKI/server.key
CAfile = $PKI/ca.pem
verifyChain = yes
requireCert = yes
EOF
spawn "$TEST_DIR/stunnel.out" "$STUNNEL" "$TEST_DIR/stunnel.conf"
wait_listening "$st_server" "$st_client" ||
    fail "stunnel did not start: $(cat "$TEST_DIR/stunnel.out" "$TEST_DIR/stunnel.log" 2>/dev/null | tail)"

conf="$TEST_DIR/ktlstund.ini"
{
    global_section
    server_tunnel in "$k_server" "$echo_port" "crl = $PKI/crl.pem" "allow_cn = alice"
    client_tunnel out "$k_client" "$st_server"
} >"$conf"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID

n=20
"$TOOLS/load_client" "127.0.0.1:$st_client" --connections $n --min-bytes 0 --max-bytes 2000000 --seed 11 \
    --timeout "$(scale 60)" >"$TEST_DIR/load1.out" 2>&1 || fail "stunnel client → ktlstun server: $(tail -n 5 "$TEST_DIR/load1.out")"
assert_log "$log" 'info: audit tunnel=in ' "audit lines for [in]" 5 $n
audit_lines "$log" in | grep -q 'subject="CN=alice,OU=eng,O=ktlstun test"' || fail "[in] audit does not name alice"

"$TOOLS/load_client" "127.0.0.1:$k_client" --connections $n --min-bytes 0 --max-bytes 2000000 --seed 12 \
    --timeout "$(scale 60)" >"$TEST_DIR/load2.out" 2>&1 || fail "ktlstun client → stunnel server: $(tail -n 5 "$TEST_DIR/load2.out")"
assert_log "$log" 'info: audit tunnel=out ' "audit lines for [out]" 5 $n
grep -q 'Certificate accepted at depth=0: .*CN=alice' "$TEST_DIR/stunnel.log" \
    || fail "stunnel server did not verify alice's certificate: $(grep -i certificate "$TEST_DIR/stunnel.log" | tail -n 5)"

# Per-connection byte counts agree with the payloads (echo: in == out).
while read -r line; do
    [ "$(audit_field "$line" bytes_in)" = "$(audit_field "$line" bytes_out)" ] || fail "bytes_in != bytes_out: $line"
done < <(grep -E 'info: audit tunnel=(in|out) ' "$log")

stop_ktlstund "$pid"
note "stunnel interop ok"
