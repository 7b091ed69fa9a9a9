#!/usr/bin/env bash
# openssl s_client with a client certificate through a server tunnel to echo_server:
# TLS 1.3 and 1.2, CA as a file and as a hashed directory, the chain the daemon sends
# (the client trusts the root only), the audit line's byte counts, and the TLS 1.2
# ciphers: AEAD only by default, CBC only where `ciphers` lists it.
source "$(dirname "$0")/lib.sh"

echo_port=$(free_port)
port=$(free_port)
port_dir=$(free_port)
port_cbc=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
ipv6=0
if [ -n "$(ip -6 addr show dev lo 2>/dev/null | grep -w '::1/128')" ]; then
    ipv6=1
    echo6_port=$(free_port)
    port6=$(free_port)
    start_echo "[::1]:$echo6_port" "$TEST_DIR/echo6.out"
fi

conf="$TEST_DIR/ktlstund.ini"
{
    global_section
    server_tunnel echo "$port" "$echo_port" "crl = $PKI/crl.pem"
    server_tunnel echo-cadir "$port_dir" "$echo_port" "ca = $PKI/cadir"
    server_tunnel echo-cbc "$port_cbc" "$echo_port" \
        "ciphers = ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES128-GCM-SHA256"
    if [ "$ipv6" = 1 ]; then
        server_tunnel echo6 "[::1]:$port6" "[::1]:$echo6_port"
    fi
} >"$conf"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID
client_args alice

token="ping-$RANDOM-$RANDOM"
tls_echo "127.0.0.1:$port" "$token" "$TEST_DIR/s1.out" "${CLIENT_ARGS[@]}" \
    || fail "no echo through [echo] (TLS 1.3): $(cat "$TEST_DIR/s1.out.err")"
assert_log "$log" 'info: audit tunnel=echo ' "no audit line after s_client closed"
line=$(audit_lines "$log" echo | tail -n 1)
assert_eq "$(audit_field "$line" tls)" TLSv1.3 "audit tls"
assert_eq "$(audit_field "$line" bytes_in)" "$((${#token} + 1))" "audit bytes_in"
assert_eq "$(audit_field "$line" bytes_out)" "$((${#token} + 1))" "audit bytes_out"
assert_eq "$(audit_field "$line" subject)" "CN=alice,OU=eng,O=ktlstun test" "audit subject"
grep -q '^accepted ' "$TEST_DIR/echo.out" || fail "echo_server saw no connection"

token="ping12-$RANDOM"
tls_echo "127.0.0.1:$port" "$token" "$TEST_DIR/s2.out" "${CLIENT_ARGS[@]}" -tls1_2 \
    || fail "no echo through [echo] (TLS 1.2): $(cat "$TEST_DIR/s2.out.err")"
assert_log "$log" 'info: audit tunnel=echo ' "no audit line for TLS 1.2" 5 2
line=$(audit_lines "$log" echo | tail -n 1)
assert_eq "$(audit_field "$line" tls)" TLSv1.2 "audit tls"

# TLS 1.2 ciphers (the server key is EC: the ECDSA suites). By default AEAD only: a
# client offering nothing but CBC gets no handshake and is logged as refused.
for cipher in ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384 ECDHE-ECDSA-CHACHA20-POLY1305; do
    token="aead-$RANDOM"
    tls_echo "127.0.0.1:$port" "$token" "$TEST_DIR/aead.out" "${CLIENT_ARGS[@]}" -tls1_2 -cipher "$cipher" \
        || fail "no echo through [echo] with TLS 1.2 $cipher: $(cat "$TEST_DIR/aead.out.err")"
    wait_for_log "$log" "info: audit tunnel=echo .* cipher=$cipher " 5 \
        || fail "no audit line with cipher=$cipher: $(audit_lines "$log" echo | tail -n 1)"
done
before=$(log_count "$log" 'warning: refused tunnel=echo peer=')
if tls_echo "127.0.0.1:$port" "cbc-$RANDOM" "$TEST_DIR/cbc.out" "${CLIENT_ARGS[@]}" -tls1_2 \
    -cipher ECDHE-ECDSA-AES128-SHA; then
    fail "[echo] relayed for a TLS 1.2 client offering only ECDHE-ECDSA-AES128-SHA (CBC)"
fi
wait_for_log "$log" 'warning: refused tunnel=echo peer=127\.0\.0\.1:[0-9]+ reason="[^"]*no shared cipher' 5 \
    $((before + 1)) || fail "CBC-only client not refused with 'no shared cipher': $(grep 'refused' "$log" | tail -n 1)"
# Where `ciphers` lists a CBC suite, that suite is accepted.
token="cbc-$RANDOM"
tls_echo "127.0.0.1:$port_cbc" "$token" "$TEST_DIR/cbc-listed.out" "${CLIENT_ARGS[@]}" -tls1_2 \
    -cipher ECDHE-ECDSA-AES128-SHA \
    || fail "no echo through [echo-cbc] with ECDHE-ECDSA-AES128-SHA listed in ciphers: $(cat "$TEST_DIR/cbc-listed.out.err")"
assert_log "$log" 'info: audit tunnel=echo-cbc .* cipher=ECDHE-ECDSA-AES128-SHA ' "no audit line for [echo-cbc] with the CBC suite"

token="pingdir-$RANDOM"
tls_echo "127.0.0.1:$port_dir" "$token" "$TEST_DIR/s3.out" "${CLIENT_ARGS[@]}" \
    || fail "no echo through [echo-cadir] (ca = directory): $(cat "$TEST_DIR/s3.out.err")"
assert_log "$log" 'info: audit tunnel=echo-cadir ' "no audit line for [echo-cadir]"

# IPv6 literals on both sides
if [ "$ipv6" = 1 ]; then
    client_args alice
    token="ping6-$RANDOM"
    tls_echo "[::1]:$port6" "$token" "$TEST_DIR/s6.out" "${CLIENT_ARGS[@]}" \
        || fail "no echo through [echo6] ([::1] listen and target): $(cat "$TEST_DIR/s6.out.err")"
    assert_log "$log" 'info: audit tunnel=echo6 peer=\[::1\]:[0-9]+ ' "audit line for [echo6] with an IPv6 peer"
    grep -q '^accepted ' "$TEST_DIR/echo6.out" || fail "the [::1] backend saw no connection"
else
    note "no ::1 on lo: IPv6 part skipped"
fi

# A stranger's certificate is refused by the directory CA as well.
client_args unknownca
if tls_echo "127.0.0.1:$port_dir" "nope-$RANDOM" "$TEST_DIR/s4.out" "${CLIENT_ARGS[@]}"; then
    fail "[echo-cadir] relayed for a certificate from an unknown CA"
fi
assert_log "$log" 'warning: refused tunnel=echo-cadir peer=127\.0\.0\.1:[0-9]+ reason="[^"]*unknown CA: issuer' \
    "unknown CA not refused by [echo-cadir]"

# The daemon sends its intermediate: a client given only the root verified it above;
# check the chain it presents explicitly too.
client_args alice
timeout "$(scale 10)" openssl s_client -connect "127.0.0.1:$port" "${CLIENT_ARGS[@]}" -showcerts </dev/null >"$TEST_DIR/chain.out" 2>&1 || true
[ "$(grep -c -- '-----BEGIN CERTIFICATE-----' "$TEST_DIR/chain.out")" = 2 ] \
    || fail "server tunnel should send leaf + intermediate: $(grep -E '^ *[0-9] s:' "$TEST_DIR/chain.out")"
grep -q 'Verify return code: 0 (ok)' "$TEST_DIR/chain.out" || fail "chain did not verify: $(grep 'Verify return' "$TEST_DIR/chain.out")"

stop_ktlstund "$pid"
note "s_client ok"
