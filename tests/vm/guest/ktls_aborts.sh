#!/bin/bash
# An abort never looks like a clean end, on the kTLS path (ktls = require everywhere;
# tests/integration/test_aborts.sh covers the userspace relay):
#   app → [client daemon: c-*] → TLS → [server daemon: s-*] → backend
# stream_end plays the application and the backend and tells a FIN from a reset.
#
#   clean          data both ways, FINs: a clean EOF at both ends with every byte,
#                  result=completed
#   app-reset      the application resets after 3 MiB: the backend sees a reset
#   backend-reset  the backend resets after 3 MiB: the application sees a reset
#   tls-reset      a TLS client (tls_misbehave) resets its connection to s-main: the
#   tls-fin        backend sees a reset; the same for a FIN without close_notify
#   unreachable    s-dead's target refuses: the server tunnel ends the tunnel with a
#                  fatal internal_error alert (or a reset), the application sees a
#                  reset, the client tunnel says so at warning, audit and metrics
#                  count an error; the server logs its refusing target at warning
#   kill-client    SIGKILL of a daemon's worker mid-transfer: both ends see a reset
#   kill-server
#
# Every audit line checked says ktls=tx+rx: the ends were in the kernel.
GROUP=ktls-aborts
PORT_BASE=29000
source "$(dirname "$0")/lib/ktls.sh"
need ktlstund ktlstun stream_end tls_misbehave jq curl

MIB=$((1024 * 1024))
load_tls
ports 7
BACKEND=${PORTS[0]} DEAD=${PORTS[1]} S_MAIN=${PORTS[2]} S_DEAD=${PORTS[3]}
C_MAIN=${PORTS[4]} C_DEAD=${PORTS[5]} METRICS=${PORTS[6]}
S_CONF=$W/server.ini S_LOG=$W/server.log C_CONF=$W/client.ini C_LOG=$W/client.log
{
    WORKERS=1 global_section
    server_tunnel s-main "$S_MAIN" "$BACKEND"
    server_tunnel s-dead "$S_DEAD" "$DEAD"
} >"$S_CONF"
{
    WORKERS=1 global_section "metrics_listen = $METRICS"
    client_tunnel c-main "$C_MAIN" "$S_MAIN"
    client_tunnel c-dead "$C_DEAD" "$S_DEAD"
} >"$C_CONF"
SHARED_LOGS=("$S_LOG" "$C_LOG")
start_daemon "$S_CONF" "$S_LOG"
S_DAEMON=$DAEMON_PID
start_daemon "$C_CONF" "$C_LOG"
C_DAEMON=$DAEMON_PID

# start_backend NAME ARGS...: stream_end listening on BACKEND; sets BACKEND_PID.
start_backend() {
    local name=$1 out=$W/$1.backend
    shift
    spawn "$out" stream_end listen "127.0.0.1:$BACKEND" --timeout "$LIMIT" "$@"
    BACKEND_PID=$SPAWN_PID
    LOGS+=("$out")
    wait_for "$out" '^listening$' 20 1 "$BACKEND_PID" || die "$name: the backend did not listen: $(cat "$out")"
}

# start_app NAME PORT ARGS...: stream_end connecting to PORT; sets APP_PID.
start_app() {
    local name=$1 port=$2 out=$W/$1.app
    shift 2
    spawn "$out" stream_end connect "127.0.0.1:$port" --timeout "$LIMIT" "$@"
    APP_PID=$SPAWN_PID
    LOGS+=("$out")
}

# ended PID FILE: the stream_end PID ends within LIMIT seconds.
ended() {
    wait_exit "$1" "$LIMIT" || die "stream_end did not end: $(tr '\n' ' ' <"$2")"
}

# report NAME SIDE KEY: KEY's value in the report of NAME's SIDE (app or backend).
report() { sed -n "s/^$3: //p" "$W/$1.$2"; }

# outcome NAME SIDE EXPECTED
outcome() {
    local got
    got=$(report "$1" "$2" outcome)
    [ "$got" = "$3" ] || die "the $2 saw '$got', expected '$3' ($(tr '\n' ' ' <"$W/$1.$2"))"
}

# last_audit LOG TUNNEL COUNT ERE: TUNNEL's COUNT-th audit line says ktls=tx+rx and
# matches ERE.
last_audit() {
    wait_audit "$1" "$2" "$3"
    local line
    line=$(audit_lines "$1" "$2" | sed -n "${3}p")
    [ "$(field "$line" ktls)" = tx+rx ] || die "[$2] not offloaded: $line"
    [[ $line =~ $4 ]] || die "[$2] audit line does not match /$4/: $line"
}

# clean C_COUNT S_COUNT: the C_COUNT-th audit line of c-main, S_COUNT-th of s-main.
clean() {
    stat_snapshot
    start_backend clean --send $((1 * MIB))
    start_app clean "$C_MAIN" --send $((2 * MIB))
    ended "$APP_PID" "$W/clean.app"
    ended "$BACKEND_PID" "$W/clean.backend"
    outcome clean app eof
    outcome clean backend eof
    [ "$(report clean backend received)" = $((2 * MIB)) ] || die "the backend received $(report clean backend received) bytes"
    [ "$(report clean app received)" = $((1 * MIB)) ] || die "the application received $(report clean app received) bytes"
    last_audit "$C_LOG" c-main "$1" 'userspace_bytes=0 .*close="closed by both sides" result=completed'
    last_audit "$S_LOG" s-main "$2" 'userspace_bytes=0 .*close="closed by both sides" result=completed'
    # Both tunnel ends of the one connection went into the kernel, each way.
    expect_sw_sessions 2
}

app_reset() {
    start_backend app-reset
    start_app app-reset "$C_MAIN" --send $((8 * MIB)) --reset-after $((3 * MIB))
    ended "$APP_PID" "$W/app-reset.app"
    ended "$BACKEND_PID" "$W/app-reset.backend"
    outcome app-reset backend reset
    [ "$(report app-reset backend received)" -le $((3 * MIB)) ] || die "the backend received $(report app-reset backend received) bytes"
    last_audit "$C_LOG" c-main 2 'close="application reset the connection" result=error'
    last_audit "$S_LOG" s-main 2 'close="(peer sent alert: internal error|TLS peer reset the connection)" result=error'
}

backend_reset() {
    start_backend backend-reset --send $((8 * MIB)) --reset-after $((3 * MIB))
    start_app backend-reset "$C_MAIN"
    ended "$APP_PID" "$W/backend-reset.app"
    ended "$BACKEND_PID" "$W/backend-reset.backend"
    outcome backend-reset app reset
    [ "$(report backend-reset app received)" -le $((3 * MIB)) ] || die "the application received $(report backend-reset app received) bytes"
    last_audit "$S_LOG" s-main 3 'close="target reset the connection" result=error'
    last_audit "$C_LOG" c-main 3 'close="the server ended the tunnel abnormally \((alert internal error|reset)\): it may not reach its target" result=error'
}

# tls_peer ACTION COUNT CLOSE: tls_misbehave does ACTION to s-main after its probe came
# back from the echoing backend; the backend sees a reset.
tls_peer() {
    start_backend "tls-$1" --echo
    local out=$W/tls-$1.peer
    spawn "$out" tls_misbehave "127.0.0.1:$S_MAIN" "$1" --cert "$PKI/alice.pem" --key "$PKI/alice.key" \
        --ca "$PKI/ca.pem" --timeout "$LIMIT"
    LOGS+=("$out")
    local peer=$SPAWN_PID
    ended "$BACKEND_PID" "$W/tls-$1.backend"
    wait_exit "$peer" "$LIMIT" || die "tls_misbehave $1 failed: $(tr '\n' ' ' <"$out")"
    outcome "tls-$1" backend reset
    grep -q '^outcome: close_notify' "$out" && die "the server tunnel answered $1 with close_notify"
    last_audit "$S_LOG" s-main "$2" "close=\"$3\" result=error"
}

unreachable() {
    start_app unreachable "$C_DEAD"
    ended "$APP_PID" "$W/unreachable.app"
    outcome unreachable app reset
    [ "$(report unreachable app received)" = 0 ] || die "the application received bytes"
    local said='the server ended the tunnel abnormally \((alert internal error|reset)\): it may not reach its target'
    wait_for "$C_LOG" "warning: tunnel=c-dead peer=127\\.0\\.0\\.1:[0-9]+: $said" 20 ||
        die "the client tunnel does not say the server ended the tunnel abnormally"
    last_audit "$C_LOG" c-dead 1 "close=\"$said\" result=error"
    wait_for "$S_LOG" "warning: tunnel=s-dead peer=127\\.0\\.0\\.1:[0-9]+: target 127\\.0\\.0\\.1:$DEAD unreachable: Connection refused" 20 ||
        die "the server tunnel does not log its refusing target at warning"
    last_audit "$S_LOG" s-dead 1 'result=target_unreachable'
    local m
    m=$(fetch_metrics "$METRICS")
    [ "$(metric "$m" 'ktlstun_connections_total{tunnel="c-dead",result="error"}')" = 1 ] || die "metrics count no error on c-dead"
    [ "$(metric "$m" 'ktlstun_connections_total{tunnel="c-dead",result="completed"}')" = 0 ] || die "metrics count a completion on c-dead"
}

# killed NAME CONF: SIGKILL of CONF's worker while data flows both ways; both ends
# see a reset, and the daemon replaces its worker.
killed() {
    local worker i
    worker=$(ktlstun status --json -c "$2" | jq -r '.workers[].pid')
    [ -n "$worker" ] || die "no worker listed by ktlstun status"
    start_backend "kill-$1" --send $((100000 * MIB))
    start_app "kill-$1" "$C_MAIN" --send $((100000 * MIB))
    # Both tunnels relay once the backend has its connection; then data flows a while.
    wait_for "$W/kill-$1.backend" '^accepted$' "$LIMIT" 1 "$BACKEND_PID" ||
        die "the backend got no connection: $(tr '\n' ' ' <"$W/kill-$1.backend")"
    sleep 1
    alive "$APP_PID" && alive "$BACKEND_PID" || die "the transfer ended early"
    kill -KILL "$worker"
    ended "$APP_PID" "$W/kill-$1.app"
    ended "$BACKEND_PID" "$W/kill-$1.backend"
    outcome "kill-$1" app reset
    outcome "kill-$1" backend reset
    for ((i = 0; i < 100; i++)); do
        [ -n "$(ktlstun status --json -c "$2" | jq -r '.workers[].pid' | grep -vx "$worker")" ] && return 0
        sleep 0.2
    done
    die "the daemon did not replace its killed worker"
}

check clean clean 1 1
check app-reset app_reset
check backend-reset backend_reset
check tls-reset tls_peer reset 4 "TLS peer reset the connection"
check tls-fin tls_peer fin 5 "TLS peer ended without close_notify"
check unreachable unreachable
check kill-client killed client "$C_CONF"
check kill-server killed server "$S_CONF"
check clean-after clean 5 7
stop_shared stop "$S_DAEMON" "$C_DAEMON"
finish
