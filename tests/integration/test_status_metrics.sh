#!/usr/bin/env bash
# ktlstun status (table and --json) against live connections, and the Prometheus
# endpoint after traffic and a refusal.
source "$(dirname "$0")/lib.sh"

echo_port=$(free_port)
tls_port=$(free_port)
plain_port=$(free_port)
metrics_port=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"

conf="$TEST_DIR/ktlstund.ini"
# expiry_warning longer than the test certificates live: every one of them warns.
{
    global_section "metrics_listen = $metrics_port" "expiry_warning = 365d"
    server_tunnel gateway "$tls_port" "$echo_port" "crl = $PKI/crl.pem"
    client_tunnel worker "$plain_port" "$tls_port"
} >"$conf"
log="$TEST_DIR/ktlstund.log"
start_notify_capture "$TEST_DIR/notify.sock" "$TEST_DIR/notify.out"
NOTIFY_SOCKET="$TEST_DIR/notify.sock" start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID
assert_log "$log" "warning: \[gateway\] certificate $PKI/server.pem expires in [0-9]+d" \
    "no expiry warning for the gateway certificate"
assert_log "$log" "warning: \[gateway\] CRL $PKI/crl.pem expires in [0-9]+d" "no expiry warning for the CRL"
assert_log "$log" "warning: \[worker\] certificate $PKI/alice.pem expires in [0-9]+d" \
    "no expiry warning for the worker certificate"
assert_log "$TEST_DIR/notify.out" 'STATUS=2 tunnels, 2 workers, [0-9]+ connections; certificate of \[gateway\] expires in' \
    "STATUS= does not name the expiring certificate"

for i in 1 2 3; do
    plain_echo "127.0.0.1:$plain_port" "short-$i-$RANDOM" || fail "echo $i through the tunnel pair"
done
client_args
openssl s_client -connect "127.0.0.1:$tls_port" "${CLIENT_ARGS[@]}" </dev/null >/dev/null 2>&1 || true
assert_log "$log" 'refused tunnel=gateway .*reason="no client certificate"' "no refusal logged"

# One connection held open through both tunnels.
spawn_fed held "exec socat -t 30 - TCP:127.0.0.1:$plain_port"
held=$SPAWN_PID held_fd=$FED_FD
printf 'held-data\n' >&"$held_fd"
wait_for_log "$TEST_DIR/held.out" '^held-data$' 5 || fail "held connection got no echo"

json=$("$KTLSTUN" status --json -c "$conf")
echo "$json" | jq -e . >/dev/null || fail "status --json is not JSON: $json"
assert_eq "$(echo "$json" | jq '.workers | length')" 2 "workers in status"
assert_eq "$(echo "$json" | jq '[.tunnels[].name] | sort | join(",")' -r)" "gateway,worker" "tunnels in status"
assert_eq "$(echo "$json" | jq '[.connections[] | select(.state == "relaying")] | length')" 2 \
    "live connections (one per tunnel)"
gw=$(echo "$json" | jq -c '.connections[] | select(.tunnel == "gateway")')
assert_eq "$(echo "$gw" | jq -r .subject)" "CN=alice,OU=eng,O=ktlstun test" "gateway peer identity"
assert_eq "$(echo "$gw" | jq -r .sha256)" "$(cat "$PKI/alice.sha256")" "gateway peer fingerprint"
assert_eq "$(echo "$gw" | jq -r .tls)" "TLSv1.3" "gateway TLS version"
assert_eq "$(echo "$gw" | jq .bytes_in)" 10 "gateway bytes_in of the held connection"
assert_eq "$(echo "$gw" | jq .ktls_tx)" false "kTLS TX on a host without kTLS"
wk=$(echo "$json" | jq -c '.connections[] | select(.tunnel == "worker")')
assert_eq "$(echo "$wk" | jq -r .subject)" "CN=localhost,O=ktlstun test" "worker tunnel's server identity"
assert_eq "$(echo "$json" | jq '.tunnels[] | select(.name == "gateway") | .active')" 1 "gateway active"
table=$("$KTLSTUN" status -c "$conf")
assert_contains "$table" "2 workers (0 draining)" "status table header"
assert_contains "$table" "CN=alice" "status table lists the held connection"

metrics=$(curl -sS --max-time 5 "http://127.0.0.1:$metrics_port/metrics")
metric() { echo "$metrics" | awk -v m="$1" '$1 == m {print $2}'; }
assert_eq "$(metric 'ktlstun_connections_total{tunnel="gateway",result="completed"}')" 3 "completed on gateway"
assert_eq "$(metric 'ktlstun_connections_total{tunnel="gateway",result="refused"}')" 1 "refused on gateway"
assert_eq "$(metric 'ktlstun_handshake_failures_total{tunnel="gateway",reason="no_client_certificate"}')" 1 \
    "refusal reason"
assert_eq "$(metric 'ktlstun_connections_active{tunnel="gateway"}')" 1 "active on gateway"
assert_eq "$(metric 'ktlstun_relayed_connections_total{tunnel="worker",path="userspace"}')" 4 "userspace relays"
in_bytes=$(metric 'ktlstun_bytes_total{tunnel="gateway",direction="in"}')
[ "$in_bytes" -ge 40 ] || fail "gateway bytes in: $in_bytes"
expiry=$(echo "$metrics" | grep '^ktlstun_certificate_expiry_seconds{tunnel="gateway",kind="cert"' | awk '{print $2}')
[ "${expiry:-0}" -gt 86400 ] || fail "certificate expiry seconds: '$expiry'"
echo "$metrics" | grep -q '^ktlstun_certificate_expiry_seconds{tunnel="gateway",kind="crl"' || fail "no CRL expiry metric"
assert_eq "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$metrics_port/nope")" 404 "unknown path"

exec {held_fd}>&-
wait_exit "$held" 10 || true
stop_ktlstund "$pid"
