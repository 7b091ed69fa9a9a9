#!/usr/bin/env bash
# A refused client learns why on its own machine. Two daemons, as on two machines: a
# gateway with server tunnels and a workstation with client tunnels, the workstation
# logging at warning only. Each refusal reaches the workstation as its own TLS alert
# and its log says in plain words what it means and what to do: not on the allow list
# or pins (access_denied), a revoked certificate (certificate_revoked), an expired one
# (certificate_expired, seen with s_client), a server certificate this client does not
# accept, a target that answers plain HTTP. `ktlstun status` shows the last refusal per
# tunnel on both machines. A retrying application does not flood the workstation's log.
source "$(dirname "$0")/lib.sh"

echo_port=$(free_port) http_port=$(free_port)
g_allow=$(free_port) g_crl=$(free_port) g_any=$(free_port) g_pin=$(free_port)
c_allow=$(free_port) c_revoked=$(free_port) c_ok=$(free_port)
c_name=$(free_port) c_http=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"

# A plain HTTP server that answers whatever comes first, as web servers answer a TLS
# ClientHello sent to their plain port.
cat >"$TEST_DIR/http.sh" <<'EOF'
head -c 5 >/dev/null
printf 'HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n'
EOF
spawn "$TEST_DIR/http.out" socat "TCP-LISTEN:$http_port,bind=127.0.0.1,reuseaddr,fork" \
    "EXEC:sh $TEST_DIR/http.sh"
wait_listening "$http_port" || fail "the plain HTTP responder did not listen"

mkdir -p "$TEST_DIR/gw-state" "$TEST_DIR/gw-run" "$TEST_DIR/ws-state" "$TEST_DIR/ws-run"
gw_conf="$TEST_DIR/gateway.ini"
{
    ini_section global "log_level = info" "state_dir = $TEST_DIR/gw-state" "runtime_dir = $TEST_DIR/gw-run" \
        "workers = 2" "shutdown_timeout = 5"
    server_tunnel allowed "$g_allow" "$echo_port" "allow_cn = bob"
    server_tunnel revocation "$g_crl" "$echo_port" "crl = $PKI/crl.pem"
    server_tunnel open "$g_any" "$echo_port"
    server_tunnel pinned "$g_pin" "$echo_port" "pin_sha256 = $(cat "$PKI/mallory.spki")"
} >"$gw_conf"
ws_conf="$TEST_DIR/workstation.ini"
{
    ini_section global "log_level = warning" "state_dir = $TEST_DIR/ws-state" "runtime_dir = $TEST_DIR/ws-run" \
        "workers = 2" "shutdown_timeout = 5"
    client_tunnel vpn "$c_allow" "$g_allow"
    client_tunnel revoked "$c_revoked" "$g_crl" "cert = $PKI/revoked.pem" "key = $PKI/revoked.key"
    client_tunnel ok "$c_ok" "$g_any"
    client_tunnel elsewhere "$c_name" "$g_any" "server_name = wrong.example.com"
    client_tunnel web "$c_http" "$http_port"
} >"$ws_conf"
gw_log="$TEST_DIR/gateway.log"
ws_log="$TEST_DIR/workstation.log"
start_ktlstund "$gw_conf" "$gw_log"
gw_pid=$KTLSTUND_PID
# At warning the workstation's "ready" line (a notice) never comes: wait for its ports.
"$KTLSTUND" -c "$ws_conf" -f >>"$ws_log" 2>&1 </dev/null &
ws_pid=$!
PIDS+=("$ws_pid")
DAEMON_LOGS+=("$ws_log")
wait_listening "$c_allow" "$c_revoked" "$c_ok" "$c_name" "$c_http" ||
    fail "the workstation's client tunnels did not listen: $(cat "$ws_log")"

# tunnel_json CONFIG NAME KEY: KEY of tunnel NAME in `ktlstun status --json`.
tunnel_json() {
    "$KTLSTUN" status --json -c "$1" | jq -r --arg n "$2" --arg k "$3" '.tunnels[] | select(.name == $n) | .[$k] // ""'
}

note "the happy path still works"
plain_echo "127.0.0.1:$c_ok" "hello-$RANDOM" || fail "no echo through [ok]"
assert_eq "$(tunnel_json "$ws_conf" ok last_refusal)" "" "[ok] shows a refusal it never had"

note "not on the allow list: curl fails, the workstation's log says why and what to do"
before=$(date +%s)
if out=$(curl -sS --max-time "$(scale 10)" "http://127.0.0.1:$c_allow/" 2>&1); then
    fail "curl through [vpn] succeeded: $out"
fi
assert_log "$ws_log" "ktlstund\\[[0-9]+\\]: warning: \\[vpn\\] the server refused this client's certificate: it is not on this gateway's allow list \\(alert access_denied\\); ask the gateway's administrator to allow CN=alice" \
    "the workstation's plain-words warning for the allow list"
assert_log "$gw_log" 'warning: refused tunnel=allowed peer=127\.0\.0\.1:[0-9]+ reason="[^"]*not in allow_cn' \
    "the gateway's refusal line"
assert_contains "$(tunnel_json "$ws_conf" vpn last_refusal)" "not on this gateway's allow list (alert access_denied)" \
    "ktlstun status on the workstation: [vpn]'s last refusal"
at=$(tunnel_json "$ws_conf" vpn last_refusal_at)
[ -n "$at" ] && [ "$at" -ge "$before" ] && [ "$at" -le $(($(date +%s) + 1)) ] ||
    fail "[vpn] last_refusal_at '$at' is not the time of the refusal (>= $before)"
assert_contains "$(tunnel_json "$gw_conf" allowed last_refusal)" "not in allow_cn" \
    "ktlstun status on the gateway: [allowed]'s last refusal"
assert_contains "$(tunnel_json "$gw_conf" allowed last_refusal_identity)" "CN=alice" \
    "ktlstun status on the gateway: who [allowed] refused"
table=$("$KTLSTUN" status -c "$ws_conf")
assert_contains "$table" "LAST REFUSAL" "the status table has a last-refusal section"
assert_contains "$table" "not on this gateway's allow list" "the status table shows [vpn]'s last refusal"
table=$("$KTLSTUN" status -c "$gw_conf")
assert_contains "$table" "not in allow_cn" "the gateway's status table shows [allowed]'s last refusal"

note "a pin mismatch and a subject with two CNs are access_denied too (s_client)"
# expect_alert ADDR CERT TEXT: s_client with CERT is refused with the alert TEXT.
expect_alert() {
    client_args "$2"
    tls_echo "$1" "alert-$RANDOM" "$TEST_DIR/alert.out" "${CLIENT_ARGS[@]}" && fail "data flowed with $2 to $1"
    grep -q "$3" "$TEST_DIR/alert.out.err" || fail "$2 to $1: no '$3': $(cat "$TEST_DIR/alert.out.err")"
}
expect_alert "127.0.0.1:$g_pin" alice 'alert access denied'
expect_alert "127.0.0.1:$g_allow" twocn 'alert access denied'
expect_alert "127.0.0.1:$g_allow" alice 'alert access denied'

note "a revoked client certificate: certificate_revoked, and a new certificate is what helps"
plain_echo "127.0.0.1:$c_revoked" "revoked-$RANDOM" && fail "data flowed with a revoked certificate"
assert_log "$ws_log" "warning: \\[revoked\\] the server refused this client's certificate: it is revoked \\(alert certificate_revoked\\); ask for a new certificate" \
    "the workstation's warning for a revoked certificate"
assert_contains "$(tunnel_json "$gw_conf" revocation last_refusal)" "revoked" "the gateway's last refusal on [revocation]"

note "an expired client certificate: certificate_expired (ktlstund will not start with one: s_client)"
# The words for it are the unit test's (tests/unit/test_refusal_words.c).
client_args expired
tls_echo "127.0.0.1:$g_any" "expired-$RANDOM" "$TEST_DIR/expired.out" "${CLIENT_ARGS[@]}" &&
    fail "data flowed with an expired certificate"
grep -q 'alert certificate expired' "$TEST_DIR/expired.out.err" ||
    fail "no certificate_expired alert: $(cat "$TEST_DIR/expired.out.err")"
assert_contains "$(tunnel_json "$gw_conf" open last_refusal)" "certificate expired" "the gateway's last refusal on [open]"
assert_contains "$(tunnel_json "$gw_conf" open last_refusal)" "CN=expired" "who [open] refused"

note "this client does not accept the server's certificate"
plain_echo "127.0.0.1:$c_name" "name-$RANDOM" && fail "data flowed to a server of another name"
assert_log "$ws_log" "warning: \\[elsewhere\\] the server's certificate is not for the name this tunnel expects: server certificate does not match server_name wrong\\.example\\.com" \
    "the workstation's warning for a name mismatch"

note "a plain HTTP server behind a client tunnel"
out=$(curl -sS --max-time "$(scale 10)" "http://127.0.0.1:$c_http/" 2>&1) && fail "curl through [web] succeeded: $out"
assert_log "$ws_log" "warning: \\[web\\] the server did not answer with TLS \\(it looks like plain HTTP\\): check that \`target\` points at the server tunnel's TLS port" \
    "the workstation's warning for a plain HTTP target"
assert_no_log "$ws_log" "wrong version number|packet length too long" "OpenSSL's words reached the workstation's log"
assert_contains "$(tunnel_json "$ws_conf" web last_refusal)" "did not answer with TLS" "[web]'s last refusal in ktlstun status"

note "a retrying application does not flood the log"
count=$(log_count "$ws_log" 'warning: \[vpn\] the server refused')
for ((i = 0; i < 16; i++)); do
    plain_echo "127.0.0.1:$c_allow" "retry-$i" && fail "data flowed through [vpn] on retry $i"
done
added=$(($(log_count "$ws_log" 'warning: \[vpn\] the server refused') - count))
# Each of the two workers writes at most 5 in 10 s, then one line for the rest.
[ "$added" -lt 16 ] || fail "16 refusals wrote $added warnings: not rate-limited"
assert_log "$ws_log" "warning: \\[vpn\\] the server refused .* \\(and [0-9]+ more like it in the last 10 s\\)" \
    "no summary of the held-back warnings" "$(scale 15)"

stop_ktlstund "$ws_pid"
stop_ktlstund "$gw_pid"
