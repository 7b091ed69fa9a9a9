#!/usr/bin/env bash
# /healthz and /readyz on the metrics listener: 200 "ok" on a daemon that serves; a
# tunnel whose certificate expires while the daemon runs makes /readyz a 503 that
# names it (and only it) while /healthz stays 200; HEAD gets the same status without
# a body; a daemon that is stopping answers 503 on both; a gated tunnel whose login
# service (the PAM helper) is gone makes /readyz a 503; other paths stay 404.
source "$(dirname "$0")/lib.sh"

echo_port=$(free_port)
p_web=$(free_port)
p_brief=$(free_port)
metrics_port=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"

# A server certificate that ends a few seconds from now, from a root of this test's
# own (`openssl ca`, since OpenSSL 3.0's `x509 -req` cannot set an end date).
ca="$TEST_DIR/ca"
short_lived_cert "$ca" brief localhost serverAuth "$(scale 6)"
ends_at=$SHORT_LIVED_ENDS_AT
ends_shown=$(date -u -d "@$ends_at" '+%Y-%m-%d %H:%M:%S UTC')

conf="$TEST_DIR/ktlstund.ini"
{
    global_section "metrics_listen = $metrics_port"
    server_tunnel web "$p_web" "$echo_port"
    server_tunnel brief "$p_brief" "$echo_port" "cert = $ca/brief.pem" "key = $ca/brief.key"
} >"$conf"
log="$TEST_DIR/ktlstund.log"
# The certificate's end comes by moving the daemon's clock past it (clock_shift), not
# by waiting for it.
KTLSTUND=$(clock_shift_daemon) start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID

url="http://127.0.0.1:$metrics_port"
# probe METHOD PATH: prints the status code, then the body.
probe() {
    local method=$1 path=$2 out="$TEST_DIR/probe.body"
    local code
    if [ "$method" = HEAD ]; then
        code=$(curl -sS --max-time 5 -I -o "$out" -w '%{http_code}' "$url$path") || fail "HEAD $path"
        out="$TEST_DIR/probe.none"
        : >"$out"
    else
        code=$(curl -sS --max-time 5 -X "$method" -o "$out" -w '%{http_code}' "$url$path") ||
            fail "$method $path"
    fi
    echo "$code"
    cat "$out"
}

assert_eq "$(probe GET /healthz)" "$(printf '200\nok')" "GET /healthz of a serving daemon"
[ "$(date +%s)" -lt "$ends_at" ] || fail "the daemon took until the certificate ended to start (SLOW=$SLOW)"
assert_eq "$(probe GET /readyz)" "$(printf '200\nok')" "GET /readyz while every certificate is valid"
assert_eq "$(probe HEAD /readyz)" 200 "HEAD /readyz: the status, no body"
assert_eq "$(probe HEAD /healthz)" 200 "HEAD /healthz: the status, no body"
assert_eq "$(probe GET /nope | head -n 1)" 404 "unknown path"
assert_eq "$(probe GET /healthzz | head -n 1)" 404 "a path that starts like /healthz"
assert_eq "$(probe POST /readyz | head -n 1)" 404 "POST is not a probe"
head=$(curl -sS --max-time 5 -D - -o /dev/null "$url/readyz")
assert_contains "$head" "Content-Length: 3" "the length of \"ok\\n\""

shift_s=$((ends_at + 1 - $(date +%s)))
clock_shift $((shift_s > 0 ? shift_s : 0))
assert_eq "$(probe GET /readyz)" "$(printf '503\ntunnel brief: certificate expired %s' "$ends_shown")" \
    "GET /readyz with an expired certificate: one reason line, for that tunnel only"
assert_eq "$(probe HEAD /readyz)" 503 "HEAD /readyz with an expired certificate"
assert_eq "$(probe GET /healthz)" "$(printf '200\nok')" "an expired certificate does not make the daemon dead"
metrics=$(curl -sS --max-time 5 "$url/metrics")
assert_contains "$metrics" "ktlstun_workers 2" "/metrics next to the probes"

# A daemon that is stopping (here: draining a held connection) is neither.
hold held "127.0.0.1:$p_web" "$PKI/alice.pem" "$PKI/alice.key"
kill -TERM "$pid"
wait_for_log "$log" 'shutting down' 5 || fail "no shutdown line"
assert_eq "$(probe GET /healthz)" "$(printf '503\nstopping: the daemon is shutting down')" "GET /healthz while stopping"
assert_eq "$(probe GET /readyz | head -n 2)" "$(printf '503\nstopping: the daemon is shutting down')" \
    "GET /readyz while stopping"
# The held connection has served its turn: ending it lets the daemon exit now rather
# than at shutdown_timeout (test_sigterm.sh covers an exit at shutdown_timeout).
kill "$HOLD_PID"
wait_exit "$pid" "$(scale 15)" || fail "ktlstund did not stop"
forget_pid "$pid"

# A gated tunnel needs the login service: once the PAM helper is gone for good (its
# launcher ended first, so it is not started again), /readyz says so.
mkdir -p "$TEST_DIR/pam.d"
printf 'auth required pam_permit.so\naccount required pam_permit.so\n' >"$TEST_DIR/pam.d/ktlstun"
p_vpn=$(free_port)
metrics_port=$(free_port)
url="http://127.0.0.1:$metrics_port"
conf="$TEST_DIR/gated.ini"
{
    global_section "metrics_listen = $metrics_port"
    server_tunnel vpn "$p_vpn" "$echo_port" "second_factor = pam" "pam_confdir = $TEST_DIR/pam.d"
    server_tunnel web "$p_web" "$echo_port"
} >"$conf"
log="$TEST_DIR/gated.log"
start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID
assert_eq "$(probe GET /readyz)" "$(printf '200\nok')" "GET /readyz with the login service up"
spawner=$(pgrep -P "$pid" -x ktlstund-spawn) || fail "no helper launcher among the daemon's children"
helper=$(pgrep -P "$pid" -x ktlstund-pam) || fail "no PAM helper among the daemon's children"
kill -KILL "$spawner"
wait_for_log "$log" "helper's launcher $spawner ended" 5 || fail "the launcher's end was not noticed"
kill -KILL "$helper"
wait_for_log "$log" "second factor helper $helper killed by signal 9" 5 || fail "the helper's end was not noticed"
assert_eq "$(probe GET /readyz)" \
    "$(printf '503\ntunnel vpn: the second-factor login service (PAM helper) is down')" \
    "GET /readyz without the login service: the gated tunnel only"
assert_eq "$(probe GET /healthz)" "$(printf '200\nok')" "the ungated tunnel still serves"
stop_ktlstund "$pid"
note "health ok"
