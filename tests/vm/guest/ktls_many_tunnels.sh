#!/bin/bash
# 2,000 offloaded tunnels open at once through a client tunnel -> server tunnel pair,
# with fs.pipe-user-pages-soft at its default. Each offloaded connection splices
# through two pipes per tunnel end and every worker of both daemons runs as ktlstun,
# so past about a thousand pipes the kernel hands that user one-page pipes: every
# connection must still carry its data intact both ways, the daemons must say once
# which sysctl to raise, and the kernel must have done the record work (audit lines
# ktls=tx+rx and userspace_bytes=0, /proc/net/tls_stat counting a software TX and RX
# session per tunnel end per connection).
# vm-kernel: current
GROUP=ktls-many-tunnels
PORT_BASE=27000
source "$(dirname "$0")/lib/ktls.sh"
need ktlstund many_conns echo_server

TUNNELS=${MANY_TUNNELS:-2000}
# Past one page each way, so the one-page pipes are crossed many times per connection.
MIN_BYTES=$((32 * 1024))
MAX_BYTES=$((96 * 1024))
# Every tunnel stays open to the end, but at most this many move data at a time: the
# guest's 1 GB leaves TCP a small net.ipv4.tcp_mem, and with all 2,000 streaming at
# once the kernel resets sockets closed under memory pressure (TCPAbortOnMemory; the
# echo server's among them), which is the kernel's limit, not the relay's.
ACTIVE=200
# A worker holds 2 sockets and 4 pipe fds per connection; systemd gives a service a
# hard limit far above this, which ktlstund raises its soft limit to.
ulimit -Hn 65536 && ulimit -Sn 4096 || die "cannot raise RLIMIT_NOFILE for the test"

load_tls
ports 3
ECHO=${PORTS[0]} S_PORT=${PORTS[1]} C_PORT=${PORTS[2]}
start_echo "127.0.0.1:$ECHO"
S_CONF=$W/server.ini C_CONF=$W/client.ini S_LOG=$W/server.log C_LOG=$W/client.log
# All connections come from 127.0.0.1: the per-source limits would refuse most. Under
# TCG a worker takes tens of milliseconds per handshake, so a thousand queued ones
# outlast the default handshake_timeout.
{
    global_section
    server_tunnel s-many "$S_PORT" "$ECHO" "max_connections_per_source = 0" \
        "handshake_rate_per_source = 0" "handshake_timeout = 180s"
} >"$S_CONF"
{
    global_section
    client_tunnel c-many "$C_PORT" "$S_PORT" "handshake_timeout = 180s"
} >"$C_CONF"
SHARED_LOGS=("$S_LOG" "$C_LOG")
start_daemon "$S_CONF" "$S_LOG"
S_PID=$DAEMON_PID
start_daemon "$C_CONF" "$C_LOG"
C_PID=$DAEMON_PID

# The kernel's default, which this test is about: a test that raised it would prove
# nothing.
pipe_soft_default() {
    [ "$(cat /proc/sys/fs/pipe-user-pages-soft)" = 16384 ] ||
        die "fs.pipe-user-pages-soft is $(cat /proc/sys/fs/pipe-user-pages-soft), expected the default 16384"
}

# ends: how connections ended or were refused, most frequent first, from both logs,
# and the kernel's TCP aborts and memory state (a guest of 1 GB holds 8,000 sockets).
ends() {
    grep -hoE '(reason|close)="[^"]*"' "$S_LOG" "$C_LOG" | sort | uniq -c | sort -rn | head -n 5 |
        tr -s ' \n' '  '
    awk 'NR % 2 == 1 { split($0, k) } NR % 2 == 0 { split($0, v); for (i = 2; i <= NF; i++)
            if (k[i] ~ /^TCP(AbortOn|MemoryPressures|RcvQDrop|OFODrop|Backlog)/ && v[i] > 0) printf "%s=%s ", k[i], v[i] }' \
        /proc/net/netstat
    tr '\n' ' ' </proc/net/sockstat
    grep -E '^(MemFree|Slab):' /proc/meminfo | tr -s ' \n' '  '
    grep -h 'audit tunnel=' "$S_LOG" "$C_LOG" | grep -v 'closed by both sides' | head -n 2 |
        sed -E 's/subject=.*(bytes_in)/\1/'
}

# offloaded LOG TUNNEL: TUNNEL wrote TUNNELS audit lines, each with ktls=tx+rx,
# userspace_bytes=0 and tls=TLSv1.3 (lib's expect_offloaded, in one awk: its bash loop
# takes minutes over 2,000 lines under TCG).
offloaded() {
    wait_audit "$1" "$2" "$TUNNELS"
    sleep 0.2
    local bad
    bad=$(awk -v t="$2" -v want="$TUNNELS" '
        index($0, "info: audit tunnel=" t " ") {
            n++
            if ($0 !~ / ktls=tx\+rx / || $0 !~ / userspace_bytes=0 / || $0 !~ / tls=TLSv1\.3 /) { print; exit }
        }
        END { if (n != want) print n " audit lines, expected " want }' "$1")
    [ -z "$bad" ] || die "[$2] not every connection was offloaded: $bad"
}

many() {
    local out i
    stat_snapshot
    out=$(many_conns "127.0.0.1:$C_PORT" --connections "$TUNNELS" --min-bytes "$MIN_BYTES" \
        --max-bytes "$MAX_BYTES" --active "$ACTIVE" --seed "$RANDOM" --timeout 200 2>&1) ||
        die "many_conns: $(printf '%s' "$out" | tail -n 4 | tr '\n' ' ') / ends in the logs: $(ends)"
    note "$out"
    [[ $out == *" $TUNNELS open at once"* ]] || die "not all $TUNNELS tunnels were open at once: $out"
    offloaded "$C_LOG" c-many
    offloaded "$S_LOG" s-many
    expect_sw_sessions $((2 * TUNNELS))
    [ "$(stat_delta TlsDecryptError)" = 0 ] || die "TlsDecryptError rose by $(stat_delta TlsDecryptError)"
}

# The kernel did shrink pipes (else the test proved nothing), and the daemons said so
# once per worker, naming the sysctl and its value.
pipe_warning() {
    local re='warning: .*fs\.pipe-user-pages-soft.*16384' n
    n=$(cat "$S_LOG" "$C_LOG" | grep -cE "$re")
    [ "$n" -ge 1 ] || die "no warning naming fs.pipe-user-pages-soft = 16384 in either daemon's log"
    [ "$n" -le 4 ] || die "$n warnings about fs.pipe-user-pages-soft, expected one per worker at most"
}

check pipe-user-pages-soft-default pipe_soft_default
check "tunnels-$TUNNELS-at-once" many
check one-page-pipes-warned pipe_warning
stop_shared clean-shutdown "$S_PID" "$C_PID"
finish
