#!/usr/bin/env bash
# listen = systemd:NAME with sockets passed the way systemd passes them
# (systemd-socket-activate, named fds): two tunnels on two passed sockets, data through
# both; a name nothing passed stops the daemon with a clear error.
source "$(dirname "$0")/lib.sh"

echo_port=$(free_port)
tls_port=$(free_port)
plain_port=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"

write_conf() {  # CONF PLAIN_SOCKET_NAME
    {
        global_section
        server_tunnel gateway systemd:tls "$echo_port"
        client_tunnel worker "systemd:$2" "$tls_port"
    } >"$1"
}
conf="$TEST_DIR/ktlstund.ini"
write_conf "$conf" plain
log="$TEST_DIR/ktlstund.log"
DAEMON_LOGS+=("$log")
# systemd-socket-activate binds, then execs the daemon at the first connection with
# LISTEN_FDS/LISTEN_FDNAMES set, exactly as a .socket unit would.
spawn "$log" systemd-socket-activate -l "127.0.0.1:$tls_port" -l "127.0.0.1:$plain_port" \
    --fdname=tls:plain "$KTLSTUND" -c "$conf" -f
pid=$SPAWN_PID
wait_listening "$plain_port" || fail "systemd-socket-activate did not listen: $(cat "$log")"

token="activated-$RANDOM"
plain_echo "127.0.0.1:$plain_port" "$token" || fail "no echo through two socket-activated tunnels"
assert_log "$log" 'notice: ready \(2 tunnels, 2 workers\)' "daemon not ready after activation"
assert_log "$log" 'info: audit tunnel=gateway ' "no audit line on the activated server tunnel"
assert_log "$log" 'info: audit tunnel=worker ' "no audit line on the activated client tunnel"
# The daemon owns the sockets systemd passed: no second bind happened.
assert_no_log "$log" 'bind:' "a passed socket was bound again"
stop_ktlstund "$pid"

# A name that was not passed is a configuration error naming the tunnel and the names.
conf2="$TEST_DIR/missing.ini"
write_conf "$conf2" nosuchname
log2="$TEST_DIR/missing.log"
spawn "$log2" systemd-socket-activate -l "127.0.0.1:$tls_port" -l "127.0.0.1:$plain_port" \
    --fdname=tls:plain "$KTLSTUND" -c "$conf2" -f
pid2=$SPAWN_PID
wait_listening "$plain_port" || fail "systemd-socket-activate did not listen: $(cat "$log2")"
printf 'x\n' | timeout 5 socat -t 2 - "TCP:127.0.0.1:$plain_port" >/dev/null 2>&1 || true
rc=0
wait_exit "$pid2" "$(scale 10)" || rc=$?
[ "$rc" != 0 ] && [ "$rc" != 255 ] || fail "daemon with an unknown systemd socket name exited $rc"
assert_log "$log2" '\[worker\] listen systemd:nosuchname: systemd passed no socket named nosuchname \(passed: tls plain\)' \
    "no clear error for an unknown socket name"
