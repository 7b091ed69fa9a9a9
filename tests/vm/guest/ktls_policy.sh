#!/bin/bash
# The per-tunnel ktls policy on a kernel that has kTLS:
#   auto     offloads too (ktls=tx+rx, userspace_bytes=0, tls_stat counts the sessions);
#   off      never does (ktls=off, every payload byte through userspace, tls_stat still);
#   require  against a peer that does not offload: the TLS is the same, ours is in the
#            kernel, theirs in OpenSSL;
#   require  with a suite the kernel cannot carry (TLS_AES_128_CCM_8_SHA256) refuses the
#            connection with its reason, in server and client mode, and never reaches the
#            target; auto with that suite falls back to userspace with one line saying why.
# Metrics count each relay on its path (ktlstun_relayed_connections_total{path=...}).
GROUP=ktls-policy
PORT_BASE=27000
source "$(dirname "$0")/lib/ktls.sh"
need ktlstund load_client echo_server socat curl

BYTES=262144
CCM8=TLS_AES_128_CCM_8_SHA256
PAIRS=(auto off mixed ccm8-auto ccm8-server ccm8-client)

load_tls
ports 3
ECHO=${PORTS[0]} ECHO_REFUSED=${PORTS[1]} METRICS=${PORTS[2]}
declare -A S_PORT C_PORT
for id in "${PAIRS[@]}"; do
    ports 2
    S_PORT[$id]=${PORTS[0]}
    C_PORT[$id]=${PORTS[1]}
done
start_echo "127.0.0.1:$ECHO_REFUSED"
REFUSED_ECHO_LOG=$ECHO_LOG
start_echo "127.0.0.1:$ECHO"
CONF=$W/policy.ini LOG=$W/policy.log
ccm8=("tls_min_version = 1.3" "ciphersuites = $CCM8")
{
    global_section "metrics_listen = $METRICS"
    server_tunnel s-auto "${S_PORT[auto]}" "$ECHO" "ktls = auto"
    client_tunnel c-auto "${C_PORT[auto]}" "${S_PORT[auto]}" "ktls = auto"
    server_tunnel s-off "${S_PORT[off]}" "$ECHO" "ktls = off"
    client_tunnel c-off "${C_PORT[off]}" "${S_PORT[off]}" "ktls = off"
    server_tunnel s-mixed "${S_PORT[mixed]}" "$ECHO"
    client_tunnel c-mixed "${C_PORT[mixed]}" "${S_PORT[mixed]}" "ktls = off"
    server_tunnel s-ccm8-auto "${S_PORT[ccm8-auto]}" "$ECHO" "ktls = auto" "${ccm8[@]}"
    client_tunnel c-ccm8-auto "${C_PORT[ccm8-auto]}" "${S_PORT[ccm8-auto]}" "ktls = off" "${ccm8[@]}"
    server_tunnel s-ccm8-server "${S_PORT[ccm8-server]}" "$ECHO_REFUSED" "${ccm8[@]}"
    client_tunnel c-ccm8-server "${C_PORT[ccm8-server]}" "${S_PORT[ccm8-server]}" "ktls = off" "${ccm8[@]}"
    server_tunnel s-ccm8-client "${S_PORT[ccm8-client]}" "$ECHO" "ktls = off" "${ccm8[@]}"
    client_tunnel c-ccm8-client "${C_PORT[ccm8-client]}" "${S_PORT[ccm8-client]}" "${ccm8[@]}"
} >"$CONF"
SHARED_LOGS=("$LOG")
start_daemon "$CONF" "$LOG"
DAEMON=$DAEMON_PID

# relay ID: a 0-byte and a BYTES connection through pair ID, echoed and compared.
relay() {
    must load_client "127.0.0.1:${C_PORT[$1]}" --connections 2 --min-bytes 0 --max-bytes "$BYTES" \
        --seed "$RANDOM" --timeout 120
}

# expect_paths TUNNEL KTLS USERSPACE: the metrics count that many relays on each path.
expect_paths() {
    local metrics k u
    metrics=$(fetch_metrics "$METRICS")
    k=$(metric "$metrics" "ktlstun_relayed_connections_total{tunnel=\"$1\",path=\"ktls\"}")
    u=$(metric "$metrics" "ktlstun_relayed_connections_total{tunnel=\"$1\",path=\"userspace\"}")
    [ "$k" = "$2" ] && [ "$u" = "$3" ] ||
        die "[$1] metrics count $k kTLS and $u userspace relays, expected $2 and $3"
}

# expect_userspace LOG TUNNEL COUNT: COUNT audit lines saying ktls=off, each with every
# payload byte counted as copied through userspace.
expect_userspace() {
    local line
    wait_audit "$1" "$2" "$3"
    sleep 0.2
    AUDIT=$(audit_lines "$1" "$2")
    [ "$(printf '%s\n' "$AUDIT" | grep -c .)" = "$3" ] || die "[$2] wrote more than $3 audit lines"
    while read -r line; do
        [ "$(field "$line" ktls)" = off ] || die "[$2] expected ktls=off: $line"
        [ "$(field "$line" userspace_bytes)" = $(($(field "$line" bytes_in) + $(field "$line" bytes_out))) ] ||
            die "[$2] userspace_bytes is not bytes_in + bytes_out: $line"
    done <<<"$AUDIT"
    [ "$(audit_sum userspace_bytes)" = $((2 * BYTES)) ] ||
        die "[$2] userspace_bytes add up to $(audit_sum userspace_bytes), expected $((2 * BYTES))"
}

auto() {
    stat_snapshot
    relay auto
    expect_offloaded "$LOG" c-auto 2 TLSv1.3
    expect_offloaded "$LOG" s-auto 2 TLSv1.3
    expect_sw_sessions 4
    expect_paths s-auto 2 0
    expect_paths c-auto 2 0
}

off() {
    stat_snapshot
    relay off
    expect_userspace "$LOG" c-off 2
    expect_userspace "$LOG" s-off 2
    expect_sw_sessions 0
    expect_paths s-off 0 2
    expect_paths c-off 0 2
}

mixed() {
    stat_snapshot
    relay mixed
    expect_offloaded "$LOG" s-mixed 2 TLSv1.3
    expect_userspace "$LOG" c-mixed 2
    expect_sw_sessions 2
}

ccm8_auto() {
    stat_snapshot
    relay ccm8-auto
    expect_userspace "$LOG" s-ccm8-auto 2
    [ "$(grep -c "tunnel=s-ccm8-auto peer=[0-9.:]* kTLS not used, relaying in userspace: cipher $CCM8 cannot be offloaded" "$LOG")" = 2 ] ||
        die "no line per connection saying why s-ccm8-auto relays in userspace"
    expect_sw_sessions 0
    expect_paths s-ccm8-auto 0 2
}

# refused ID TUNNEL: a connection through pair ID is refused by TUNNEL after the
# handshake, with the reason, and no data comes back.
refused() {
    local out reason="ktls = require but kernel TLS offload is not available: cipher $CCM8 cannot be offloaded"
    out=$(printf 'refused-line\n' | timeout 60 socat -t 30 - "TCP:127.0.0.1:${C_PORT[$1]}" 2>&1)
    [ -z "$out" ] || die "data came back through a connection $2 must refuse: $out"
    wait_for "$LOG" "warning: refused tunnel=$2 peer=[0-9.:]+ reason=\"$reason\"" ||
        die "no refusal with reason \"$reason\" for $2"
    [ -z "$(audit_lines "$LOG" "$2")" ] || die "$2 wrote an audit line for a refused connection"
}

ccm8_server() {
    stat_snapshot
    refused ccm8-server s-ccm8-server
    sleep 0.5
    [ "$(grep -c '^accepted ' "$REFUSED_ECHO_LOG")" = 0 ] || die "a refused connection reached the target"
    expect_sw_sessions 0
    expect_paths s-ccm8-server 0 0
}

ccm8_client() {
    stat_snapshot
    refused ccm8-client c-ccm8-client
    expect_sw_sessions 0
    expect_paths c-ccm8-client 0 0
}

check auto-offloads auto
check off-stays-in-userspace off
check require-with-a-userspace-peer mixed
check auto-falls-back-for-ccm8 ccm8_auto
check require-refuses-ccm8-server-mode ccm8_server
check require-refuses-ccm8-client-mode ccm8_client
stop_shared clean-shutdown "$DAEMON"
finish
