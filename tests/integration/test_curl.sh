#!/usr/bin/env bash
# curl with a client certificate through a server tunnel to a plain HTTP backend
# (socat): body checked both ways, and the audit line checked field by field against
# what curl measured (request/response sizes) and the PKI (subject, SANs, fingerprint).
source "$(dirname "$0")/lib.sh"

backend=$(free_port)
port=$(free_port)
port13=$(free_port)
port_cli=$(free_port)

# The backend answers with the request path, after reading the whole request head.
cat >"$TEST_DIR/http.sh" <<'EOF'
#!/bin/bash
read -r method path proto
while IFS= read -r line; do
    [ "$line" = $'\r' ] || [ -z "$line" ] && break
done
body="hello path=$path"
printf 'HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s' "${#body}" "$body"
EOF
chmod +x "$TEST_DIR/http.sh"
spawn "$TEST_DIR/backend.log" socat -d -d "TCP-LISTEN:$backend,bind=127.0.0.1,reuseaddr,fork" "EXEC:$TEST_DIR/http.sh"
wait_listening "$backend" || fail "the HTTP backend did not listen: $(cat "$TEST_DIR/backend.log")"

conf="$TEST_DIR/ktlstund.ini"
{
    global_section
    server_tunnel web "$port" "$backend" "crl = $PKI/crl.pem"
    server_tunnel web13 "$port13" "$backend" "tls_min_version = 1.3"
    client_tunnel web-cli "$port_cli" "$port"
} >"$conf"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID

curl_alice() {  # PORT PATH [curl args...]: prints the -w line, body to $TEST_DIR/body
    local p=$1 path=$2
    shift 2
    curl -sS --max-time "$(scale 10)" --cacert "$PKI/ca.pem" --cert "$PKI/alice.pem" --key "$PKI/alice.key" \
        -o "$TEST_DIR/body" -w '%{http_code} %{size_request} %{size_header} %{size_download} %{local_port}' \
        "$@" "https://localhost:$p$path"
}

expected_ktls=off
kernel_has_ktls && expected_ktls=on
alice_sha=$(cat "$PKI/alice.sha256")

# check_audit LINE SIZES TLS CIPHER_ERE
check_audit() {
    local line=$1 sizes=$2 tls=$3 cipher_re=$4 code req hdr body lport v
    read -r code req hdr body lport <<<"$sizes"
    assert_eq "$(audit_field "$line" peer)" "127.0.0.1:$lport" "audit peer"
    assert_eq "$(audit_field "$line" subject)" "CN=alice,OU=eng,O=ktlstun test" "audit subject"
    v=$(audit_field "$line" sans)
    assert_contains "$v" "email:alice@example.com" "audit sans"
    assert_contains "$v" "URI:spiffe://example.com/alice" "audit sans"
    assert_eq "$(audit_field "$line" sha256)" "$alice_sha" "audit sha256 (alice's certificate fingerprint)"
    assert_eq "$(audit_field "$line" tls)" "$tls" "audit tls"
    v=$(audit_field "$line" cipher)
    [[ $v =~ ^($cipher_re)$ ]] || fail "audit cipher '$v' does not match /$cipher_re/: $line"
    assert_eq "$(audit_field "$line" ktls)" "$expected_ktls" "audit ktls"
    assert_eq "$(audit_field "$line" bytes_in)" "$req" "audit bytes_in (curl's request size)"
    assert_eq "$(audit_field "$line" bytes_out)" "$((hdr + body))" "audit bytes_out (response head + body)"
    [[ $(audit_field "$line" duration) =~ ^[0-9]+\.[0-9]{3}s$ ]] || fail "audit duration malformed: $line"
    [ -n "$(audit_field "$line" close)" ] || fail "audit close reason empty: $line"
}

# ---- TLS 1.3, default suites
sizes=$(curl_alice "$port" /some/path?q=1) || fail "curl through [web] failed"
assert_eq "$(cat "$TEST_DIR/body")" "hello path=/some/path?q=1" "response body"
assert_eq "${sizes%% *}" 200 "HTTP status"
assert_log "$log" 'info: audit tunnel=web ' "no audit line for the curl request"
line=$(audit_lines "$log" web | tail -n 1)
check_audit "$line" "$sizes" TLSv1.3 'TLS_AES_256_GCM_SHA384|TLS_AES_128_GCM_SHA256|TLS_CHACHA20_POLY1305_SHA256'

# ---- TLS 1.3 with the suite chosen by the client: the audit must name it
sizes=$(curl_alice "$port" /aes128 --tls13-ciphers TLS_AES_128_GCM_SHA256) || fail "curl TLS_AES_128_GCM_SHA256 failed"
assert_eq "$(cat "$TEST_DIR/body")" "hello path=/aes128" "response body (AES-128)"
assert_log "$log" 'info: audit tunnel=web ' "no audit line for the second request" 5 2
line=$(audit_lines "$log" web | tail -n 1)
check_audit "$line" "$sizes" TLSv1.3 TLS_AES_128_GCM_SHA256

# ---- TLS 1.2
sizes=$(curl_alice "$port" /tls12 --tlsv1.2 --tls-max 1.2) || fail "curl TLS 1.2 failed"
assert_eq "$(cat "$TEST_DIR/body")" "hello path=/tls12" "response body (TLS 1.2)"
assert_log "$log" 'info: audit tunnel=web ' "no audit line for the TLS 1.2 request" 5 3
line=$(audit_lines "$log" web | tail -n 1)
check_audit "$line" "$sizes" TLSv1.2 '[A-Z0-9_-]*(AES|CHACHA)[A-Z0-9_-]*'

# ---- tls_min_version = 1.3 refuses TLS 1.2 and serves 1.3
if curl_alice "$port13" /old --tlsv1.2 --tls-max 1.2 >/dev/null 2>&1; then
    fail "[web13] (tls_min_version = 1.3) accepted a TLS 1.2 client"
fi
sizes=$(curl_alice "$port13" /new) || fail "curl TLS 1.3 to [web13] failed"
assert_eq "$(cat "$TEST_DIR/body")" "hello path=/new" "response body ([web13])"
[ "$(audit_lines "$log" web13 | wc -l)" = 1 ] || fail "[web13] should have exactly one audit line: $(audit_lines "$log" web13)"

# ---- plain curl through a client tunnel: its audit counts the plain side's bytes and
#      names the server's certificate
sizes=$(curl -sS --max-time "$(scale 10)" -o "$TEST_DIR/body" \
    -w '%{http_code} %{size_request} %{size_header} %{size_download} %{local_port}' \
    "http://127.0.0.1:$port_cli/via-client-tunnel") || fail "plain curl through [web-cli] failed"
assert_eq "$(cat "$TEST_DIR/body")" "hello path=/via-client-tunnel" "response body through [web-cli]"
assert_log "$log" 'info: audit tunnel=web-cli ' "no audit line for [web-cli]"
line=$(audit_lines "$log" web-cli | tail -n 1)
read -r code req hdr body lport <<<"$sizes"
assert_eq "$(audit_field "$line" peer)" "127.0.0.1:$lport" "[web-cli] audit peer (the plain client)"
assert_eq "$(audit_field "$line" sha256)" "$(cat "$PKI/server.sha256")" "[web-cli] audit sha256 (the server's certificate)"
assert_eq "$(audit_field "$line" subject)" "CN=localhost,O=ktlstun test" "[web-cli] audit subject"
assert_eq "$(audit_field "$line" bytes_in)" "$req" "[web-cli] audit bytes_in (plain request)"
assert_eq "$(audit_field "$line" bytes_out)" "$((hdr + body))" "[web-cli] audit bytes_out (plain response)"
assert_log "$log" 'info: audit tunnel=web ' "no [web] audit line for the client tunnel's connection" 5 4

# ---- no client certificate: refused, backend not reached
before=$(grep -c 'accepting connection from' "$TEST_DIR/backend.log" || true)
if curl -sS --max-time "$(scale 10)" --cacert "$PKI/ca.pem" -o /dev/null "https://localhost:$port/nocert" 2>/dev/null; then
    fail "curl without a client certificate got through"
fi
assert_log "$log" 'warning: refused tunnel=web peer=127\.0\.0\.1:[0-9]+ reason="[^"]*no client certificate' \
    "refusal of a client without certificate not logged"
after=$(grep -c 'accepting connection from' "$TEST_DIR/backend.log" || true)
assert_eq "$after" "$before" "backend connections after the refused client"
[ "$(audit_lines "$log" web | wc -l)" = 4 ] || fail "a refused connection produced an audit line"

stop_ktlstund "$pid"
note "curl ok"
