#!/bin/bash
# Access withdrawn from offloaded tunnels (ktls = require): the session lives in the
# kernel and the worker holds no SSL object, yet
#
#   disconnect  `ktlstun disconnect mallory` ends mallory's held tunnel: a fatal
#               access_denied alert sent through the kernel, no close_notify, and
#               "access withdrawn: disconnected by an administrator" in the audit
#   crl-reload  the CRL rewritten to revoke alice and a reload (SIGHUP) end alice's held
#               tunnel, served by a worker of the old generation, with a
#               certificate_revoked alert and "access withdrawn: certificate revoked by
#               the CRL reloaded at ..."; mallory's tunnel, held through the same
#               reload, stays open
#
# Each ended connection's audit line proves it was offloaded (ktls=tx+rx,
# userspace_bytes=0), and ktlstun_connections_total counts it as access_withdrawn.
GROUP=ktls-withdrawn
PORT_BASE=25000
source "$(dirname "$0")/lib/ktls.sh"
need ktlstund ktlstun tls_misbehave echo_server curl

load_tls
ports 4
ECHO=${PORTS[0]} METRICS=${PORTS[1]} P_DISC=${PORTS[2]} P_CRL=${PORTS[3]}
start_echo "127.0.0.1:$ECHO"
cp "$PKI/crl.pem" "$W/crl.pem"
chmod 0644 "$W/crl.pem"
CONF=$W/server.ini LOG=$W/server.log
{
    global_section "metrics_listen = $METRICS"
    server_tunnel s-disc "$P_DISC" "$ECHO"
    server_tunnel s-crl "$P_CRL" "$ECHO" "crl = $W/crl.pem"
} >"$CONF"
SHARED_LOGS=("$LOG" "$ECHO_LOG")
start_daemon "$CONF" "$LOG"
DAEMON=$DAEMON_PID

# hold NAME PORT WHO: an idle TLS 1.3 connection as WHO (a PKI leaf) to 127.0.0.1:PORT,
# relaying once its probe came back; output in $W/hold.NAME.out.
hold() {
    local out=$W/hold.$1.out
    spawn "$out" tls_misbehave "127.0.0.1:$2" hold --cert "$PKI/$3.pem" --key "$PKI/$3.key" \
        --ca "$PKI/ca.pem" --timeout 120
    LOGS+=("$out")
    wait_for "$out" '^action: holding' "$LIMIT" 1 "$SPAWN_PID" || die "held connection $1 did not start: $(tr '\n' ' ' <"$out")"
}

# ended NAME OUTCOME: held connection NAME ended, and tls_misbehave saw OUTCOME.
ended() {
    local out=$W/hold.$1.out got
    wait_for "$out" '^outcome: ' 20 || die "connection $1 still open 20 s after its access was withdrawn"
    got=$(sed -n 's/^outcome: //p' "$out")
    [ "$got" = "$2" ] || die "connection $1 ended with '$got', expected '$2'"
}

# withdrawn_metric TUNNEL: ktlstun_connections_total{result="access_withdrawn"} of TUNNEL.
withdrawn_metric() {
    metric "$(fetch_metrics "$METRICS")" "ktlstun_connections_total{tunnel=\"$1\",result=\"access_withdrawn\"}"
}

disconnect() {
    hold mallory "$P_DISC" mallory
    local out
    out=$(ktlstun disconnect mallory -c "$CONF" 2>&1) || die "ktlstun disconnect failed: $out"
    [ "$out" = "ended 1 tunnel of mallory" ] || die "ktlstun disconnect said '$out'"
    ended mallory "alert access denied"
    expect_offloaded "$LOG" s-disc 1 TLSv1.3
    [ "$(field "$AUDIT" close)" = "access withdrawn: disconnected by an administrator" ] ||
        die "close reason '$(field "$AUDIT" close)'"
    [ "$(withdrawn_metric s-disc)" = 1 ] || die "access_withdrawn on s-disc is '$(withdrawn_metric s-disc)', expected 1"
}

crl_reload() {
    hold alice "$P_CRL" alice
    hold mallory "$P_CRL" mallory
    cat "$PKI/crl-alice.pem" >"$W/crl.pem"
    kill -HUP "$DAEMON" || die "the daemon is gone"
    wait_for "$LOG" 'notice: reloaded configuration \(generation 2' "$LIMIT" || die "no reload logged"
    ended alice "alert certificate revoked"
    expect_offloaded "$LOG" s-crl 1 TLSv1.3
    case $(field "$AUDIT" close) in
        "access withdrawn: certificate revoked by the CRL reloaded at "*" (CRL $W/crl.pem) (CN=alice)") ;;
        *) die "close reason '$(field "$AUDIT" close)'" ;;
    esac
    [ "$(withdrawn_metric s-crl)" = 1 ] || die "access_withdrawn on s-crl is '$(withdrawn_metric s-crl)', expected 1"
    sleep 2
    ! grep -q '^outcome: ' "$W/hold.mallory.out" ||
        die "mallory's tunnel, not revoked, ended: $(sed -n 's/^outcome: //p' "$W/hold.mallory.out")"
}

check disconnect disconnect
check crl-reload crl_reload
stop_shared stop "$DAEMON"
finish
