#!/usr/bin/env bash
# An abort never looks like a clean end (userspace relay, kTLS off; the kTLS path is
# tests/vm/guest/ktls_aborts.sh):
#   app → [client daemon: c-*] → TLS → [server daemon: s-*] → backend
# stream_end plays the application and the backend and tells a FIN from a reset.
#   clean          data both ways, FINs: both ends see a clean EOF with every byte
#   app reset      the application resets after 3 MiB: the backend sees a reset, no EOF
#   backend reset  the backend resets after 3 MiB: the application sees a reset
#   TLS reset      a TLS client resets its connection to a server tunnel: the backend
#                  sees a reset
#   TLS FIN        a TLS client ends with a FIN but no close_notify: the same
#   unreachable    the server tunnel's target refuses: the application sees a reset,
#                  the client tunnel says in plain words (warning) that the server ended
#                  the tunnel abnormally, audit and metrics count an error, and the
#                  server tunnel logs the refusing target at warning
#   killed worker  SIGKILL of a worker mid-transfer: both ends see a reset, whichever
#                  daemon's worker died
source "$(dirname "$0")/lib.sh"

backend=$(free_port)
dead=$(free_port)
s_port=$(free_port)
s_dead=$(free_port)
c_port=$(free_port)
c_dead=$(free_port)
metrics=$(free_port)
MIB=$((1024 * 1024))

mkdir -p "$TEST_DIR/s-state" "$TEST_DIR/s-run"
s_conf="$TEST_DIR/server.ini" s_log="$TEST_DIR/server.log"
{
    global_section "workers = 1" "state_dir = $TEST_DIR/s-state" "runtime_dir = $TEST_DIR/s-run"
    server_tunnel s-main "$s_port" "$backend" "ktls = off"
    server_tunnel s-dead "$s_dead" "$dead" "ktls = off"
} >"$s_conf"
c_conf="$TEST_DIR/client.ini" c_log="$TEST_DIR/client.log"
{
    global_section "workers = 1" "metrics_listen = $metrics"
    client_tunnel c-main "$c_port" "$s_port" "ktls = off"
    client_tunnel c-dead "$c_dead" "$s_dead" "ktls = off"
} >"$c_conf"
start_ktlstund "$s_conf" "$s_log"
start_ktlstund "$c_conf" "$c_log"

# start_backend NAME ARGS...: stream_end listening on the backend port; sets BACKEND_PID.
start_backend() {
    local name=$1
    shift
    spawn "$TEST_DIR/$name.backend" "$TOOLS/stream_end" listen "127.0.0.1:$backend" --timeout "$(scale 20)" "$@"
    BACKEND_PID=$SPAWN_PID
    wait_for_log "$TEST_DIR/$name.backend" '^listening$' "$(scale 5)" 1 "$BACKEND_PID" ||
        fail "$name: the backend did not listen: $(cat "$TEST_DIR/$name.backend")"
}

# start_app NAME PORT ARGS...: stream_end connecting to the client tunnel on PORT; sets APP_PID.
start_app() {
    local name=$1 port=$2
    shift 2
    spawn "$TEST_DIR/$name.app" "$TOOLS/stream_end" connect "127.0.0.1:$port" --timeout "$(scale 20)" "$@"
    APP_PID=$SPAWN_PID
}

# ended PID FILE MESSAGE: the stream_end PID ends within 20 s.
ended() {
    wait_exit "$1" "$(scale 25)" || fail "$3: stream_end did not end: $(cat "$2")"
}

# field FILE KEY: KEY's value in stream_end's report FILE.
field() { sed -n "s/^$2: //p" "$1"; }

# outcome NAME SIDE EXPECTED MESSAGE
outcome() {
    local got
    got=$(field "$TEST_DIR/$1.$2" outcome)
    [ "$got" = "$3" ] || fail "$4: the $2 saw '$got', expected '$3' ($(tr '\n' ' ' <"$TEST_DIR/$1.$2"))"
}

clean() {
    start_backend clean --send $((1 * MIB))
    start_app clean "$c_port" --send $((2 * MIB))
    ended "$APP_PID" "$TEST_DIR/clean.app" clean
    ended "$BACKEND_PID" "$TEST_DIR/clean.backend" clean
    outcome clean app eof "clean transfer"
    outcome clean backend eof "clean transfer"
    assert_eq "$(field "$TEST_DIR/clean.backend" received)" $((2 * MIB)) "bytes at the backend"
    assert_eq "$(field "$TEST_DIR/clean.app" received)" $((1 * MIB)) "bytes at the application"
    assert_log "$c_log" 'info: audit tunnel=c-main .*close="closed by both sides" result=completed' \
        "the clean transfer is not audited as completed"
}

app_reset() {
    start_backend app-reset
    start_app app-reset "$c_port" --send $((8 * MIB)) --reset-after $((3 * MIB))
    ended "$APP_PID" "$TEST_DIR/app-reset.app" "app reset"
    ended "$BACKEND_PID" "$TEST_DIR/app-reset.backend" "app reset"
    outcome app-reset backend reset "an application that reset after 3 MiB"
    local got
    got=$(field "$TEST_DIR/app-reset.backend" received)
    [ "$got" -le $((3 * MIB)) ] || fail "the backend received $got bytes of an application that reset after 3 MiB"
    assert_log "$c_log" 'info: audit tunnel=c-main .*close="application reset the connection" result=error' \
        "the application's reset is not audited as an error"
    assert_log "$s_log" 'info: audit tunnel=s-main .*close="TLS peer reset the connection" result=error' \
        "the server tunnel does not audit the client tunnel's reset"
}

backend_reset() {
    start_backend backend-reset --send $((8 * MIB)) --reset-after $((3 * MIB))
    start_app backend-reset "$c_port"
    ended "$APP_PID" "$TEST_DIR/backend-reset.app" "backend reset"
    ended "$BACKEND_PID" "$TEST_DIR/backend-reset.backend" "backend reset"
    outcome backend-reset app reset "a backend that reset after 3 MiB"
    local got
    got=$(field "$TEST_DIR/backend-reset.app" received)
    [ "$got" -le $((3 * MIB)) ] || fail "the application received $got bytes of a backend that reset after 3 MiB"
    assert_log "$s_log" 'info: audit tunnel=s-main .*close="target reset the connection" result=error' \
        "the backend's reset is not audited as an error"
}

# tls_peer ACTION: a TLS client that does ACTION (tls_misbehave) to s-main after its
# probe came back from the echoing backend; the backend sees a reset.
tls_peer() {
    start_backend "tls-$1" --echo
    spawn "$TEST_DIR/tls-$1.peer" "$TOOLS/tls_misbehave" "127.0.0.1:$s_port" "$1" --cert "$PKI/alice.pem" \
        --key "$PKI/alice.key" --ca "$PKI/ca.pem" --timeout "$(scale 10)"
    local peer=$SPAWN_PID
    ended "$BACKEND_PID" "$TEST_DIR/tls-$1.backend" "TLS peer $1"
    wait_exit "$peer" "$(scale 15)" || fail "tls_misbehave $1 failed: $(cat "$TEST_DIR/tls-$1.peer")"
    outcome "tls-$1" backend reset "a TLS peer that ended with $1"
    assert_log "$s_log" "info: audit tunnel=s-main .*close=\"$2\" result=error" \
        "the TLS peer's $1 is not audited as an error"
}

unreachable() {
    start_app unreachable "$c_dead"
    ended "$APP_PID" "$TEST_DIR/unreachable.app" unreachable
    outcome unreachable app reset "an application whose server tunnel cannot reach its target"
    assert_eq "$(field "$TEST_DIR/unreachable.app" received)" 0 "bytes at the application"
    assert_log "$c_log" 'warning: tunnel=c-dead peer=127\.0\.0\.1:[0-9]+: the server ended the tunnel abnormally \(reset\): it may not reach its target' \
        "the client tunnel does not say the server ended the tunnel abnormally"
    assert_log "$c_log" 'info: audit tunnel=c-dead .*close="the server ended the tunnel abnormally \(reset\): it may not reach its target" result=error' \
        "the client tunnel's audit line"
    assert_no_log "$c_log" 'audit tunnel=c-dead .*result=completed' "the client tunnel counts a completion"
    assert_log "$s_log" "warning: tunnel=s-dead peer=127\\.0\\.0\\.1:[0-9]+: target 127\\.0\\.0\\.1:$dead unreachable: Connection refused" \
        "the server tunnel does not log its refusing target at warning"
    local m
    m=$(curl -sS --max-time 5 "http://127.0.0.1:$metrics/metrics")
    assert_contains "$m" 'ktlstun_connections_total{tunnel="c-dead",result="error"} 1' "metrics count an error"
    assert_contains "$m" 'ktlstun_connections_total{tunnel="c-dead",result="completed"} 0' "metrics count no completion"
}

# killed NAME CONF: SIGKILL of CONF's worker while the backend streams to the
# application and the application to the backend; both see a reset.
killed() {
    local worker
    worker=$(workers_of "$2")
    start_backend "kill-$1" --send $((100000 * MIB))
    start_app "kill-$1" "$c_port" --send $((100000 * MIB))
    # Both tunnels relay once the backend has its connection; then data flows a while.
    wait_for_log "$TEST_DIR/kill-$1.backend" '^accepted$' "$(scale 10)" 1 "$BACKEND_PID" ||
        fail "kill $1: the backend got no connection: $(cat "$TEST_DIR/kill-$1.backend")"
    sleep 0.5
    alive "$APP_PID" && alive "$BACKEND_PID" || fail "kill $1: the transfer ended early"
    kill -KILL "$worker"
    ended "$APP_PID" "$TEST_DIR/kill-$1.app" "killed $1 worker"
    ended "$BACKEND_PID" "$TEST_DIR/kill-$1.backend" "killed $1 worker"
    outcome "kill-$1" app reset "the application, when the $1 tunnel's worker was killed"
    outcome "kill-$1" backend reset "the backend, when the $1 tunnel's worker was killed"
    wait_worker_replaced "$2" "$worker" 1 || fail "the $1 daemon did not replace its killed worker"
}

clean
app_reset
backend_reset
tls_peer reset "TLS peer reset the connection"
tls_peer fin "TLS peer ended without close_notify"
unreachable
killed client "$c_conf"
killed server "$s_conf"
clean
echo "ok: aborts"
