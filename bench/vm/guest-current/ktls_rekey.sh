#!/bin/bash
# bench/vm guest script, on a kernel whose kTLS takes new keys (6.14 and later): what a
# KeyUpdate every 64 MiB (`rekey_bytes = 64M` on both tunnels) costs an offloaded
# stream, against the same pair without rekey_bytes, in the same VM run.
#
# Set-up per mode: a client-tunnel daemon and a server-tunnel daemon (1 worker each)
# in front of an echo server. One connection (stream_gap) pushes STREAM_BYTES each way
# through client tunnel -> server tunnel -> echo and back, as fast as the path takes
# them, and reports the longest pause between two reads of the echo. Each run does
# both modes, one after the other, so both see the same host noise.
#   cpu        utime/stime of every process of each daemon around the stream; its
#              handshake is in it (one per run and mode, the same on both sides).
#   syscalls   one more stream per mode with `strace -c -f` attached to both daemons.
# /proc/net/tls_stat says how many KeyUpdates went out (TlsTxRekeyOk) and came in.
#
# Prints "@@BENCH pass=rekey ..." lines that bench/vm/run.sh turns into a table.
GROUP=bench-vm-rekey
PORT_BASE=29500
source "$(dirname "$0")/lib/ktls.sh"
need ktlstund echo_server stream_gap strace
[ -f "$(dirname "$0")/lib/bench.conf" ] && source "$(dirname "$0")/lib/bench.conf"
source "$(dirname "$0")/lib/proc.sh"

RUNS=${BENCH_REKEY_RUNS:-3}
STREAM_BYTES=${BENCH_REKEY_BYTES:-167772160}          # 160 MiB each way: 2 KeyUpdates per TLS sender
STRACE_BYTES=${BENCH_REKEY_STRACE_BYTES:-71303168}    # 68 MiB each way: 1 KeyUpdate per TLS sender
REKEY=64M
REKEY_BYTES=$((64 * 1024 * 1024))
HZ=100

load_tls
rekey_kernel || die "this kernel's kTLS takes no new keys (no TlsTxRekeyOk in /proc/net/tls_stat)"
ports 1
ECHO=${PORTS[0]}
start_echo "127.0.0.1:$ECHO"

declare -A PID_OF LOG_OF PORT_OF
for mode in plain rekey; do
    ports 2
    PORT_OF[$mode-server]=${PORTS[0]}
    PORT_OF[$mode-client]=${PORTS[1]}
    extra=()
    [ "$mode" = rekey ] && extra=("rekey_bytes = $REKEY")
    WORKERS=1 global_section >"$W/$mode-server.ini"
    server_tunnel "s-$mode" "${PORT_OF[$mode-server]}" "$ECHO" "${extra[@]}" >>"$W/$mode-server.ini"
    WORKERS=1 global_section >"$W/$mode-client.ini"
    client_tunnel "c-$mode" "${PORT_OF[$mode-client]}" "${PORT_OF[$mode-server]}" "${extra[@]}" \
        >>"$W/$mode-client.ini"
    for side in server client; do
        LOG_OF[$mode-$side]=$W/$mode-$side.log
        SHARED_LOGS+=("${LOG_OF[$mode-$side]}")
        start_daemon "$W/$mode-$side.ini" "${LOG_OF[$mode-$side]}"
        PID_OF[$mode-$side]=$DAEMON_PID
    done
done

audit_count() { grep -cE "info: audit tunnel=${2:0:1}-$1 " "${LOG_OF[$1-$2]}"; }

# stream MODE BYTES: one stream_gap connection through MODE's pair; waits until both
# daemons logged its end, offloaded both ways. Sets GAP_OUT to stream_gap's line.
stream() {
    local mode=$1 bytes=$2 side before_s before_c line
    before_s=$(audit_count "$mode" server)
    before_c=$(audit_count "$mode" client)
    GAP_OUT=$(stream_gap --connect "127.0.0.1:${PORT_OF[$mode-client]}" --bytes "$bytes" 2>&1) ||
        die "$mode: stream_gap: $GAP_OUT"
    wait_for "${LOG_OF[$mode-server]}" "info: audit tunnel=s-$mode " 300 $((before_s + 1)) ||
        die "s-$mode did not log the connection"
    wait_for "${LOG_OF[$mode-client]}" "info: audit tunnel=c-$mode " 300 $((before_c + 1)) ||
        die "c-$mode did not log the connection"
    for side in server client; do
        line=$(grep -E "info: audit tunnel=${side:0:1}-$mode " "${LOG_OF[$mode-$side]}" | tail -n 1)
        [ "$(field "$line" ktls)" = tx+rx ] && [ "$(field "$line" userspace_bytes)" = 0 ] ||
            die "$mode $side: not offloaded: $line"
    done
}

# gap_field NAME: NAME's value in GAP_OUT.
gap_field() { printf '%s\n' "$GAP_OUT" | sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }

# expect_keyupdates MODE BYTES: MODE rekey: each of the 2 TLS senders sent one KeyUpdate
# per REKEY_BYTES it sent, and none failed; MODE plain: none at all.
expect_keyupdates() {
    local want=0
    [ "$1" = rekey ] && want=$((2 * ($2 / REKEY_BYTES)))
    [ "$(stat_delta TlsTxRekeyOk)" = "$want" ] && [ "$(stat_delta TlsRxRekeyOk)" = "$want" ] ||
        die "$1: TlsTxRekeyOk rose by $(stat_delta TlsTxRekeyOk) and TlsRxRekeyOk by $(stat_delta TlsRxRekeyOk), expected $want each"
    [ "$(stat_delta TlsTxRekeyError)" = 0 ] && [ "$(stat_delta TlsRxRekeyError)" = 0 ] ||
        die "$1: a rekey failed (TlsTxRekeyError, TlsRxRekeyError)"
}

cpu_pass() {
    local run mode side t0s t0c t1s t1c
    # Warm-up: lazy set-up in the workers does not count.
    for mode in plain rekey; do stream "$mode" 65536; done
    for ((run = 1; run <= RUNS; run++)); do
        for mode in plain rekey; do
            stat_snapshot
            t0s=$(cpu_ticks "${PID_OF[$mode-server]}")
            t0c=$(cpu_ticks "${PID_OF[$mode-client]}")
            stream "$mode" "$STREAM_BYTES"
            t1s=$(cpu_ticks "${PID_OF[$mode-server]}")
            t1c=$(cpu_ticks "${PID_OF[$mode-client]}")
            expect_keyupdates "$mode" "$STREAM_BYTES"
            report "@@BENCH pass=rekey mode=$mode run=$run bytes_each_way=$STREAM_BYTES hz=$HZ" \
                "server_utime=$((${t1s% *} - ${t0s% *})) server_stime=$((${t1s#* } - ${t0s#* }))" \
                "client_utime=$((${t1c% *} - ${t0c% *})) client_stime=$((${t1c#* } - ${t0c#* }))" \
                "wall_ms=$(gap_field wall_ms) max_gap_ms=$(gap_field max_gap_ms)" \
                "tx_rekeys=$(stat_delta TlsTxRekeyOk) rx_rekeys=$(stat_delta TlsRxRekeyOk)"
            note "run $run $mode: $GAP_OUT"
        done
    done
}

# strace_pass MODE: syscalls of each daemon over one stream of STRACE_BYTES each way.
strace_pass() {
    local mode=$1 side
    declare -A tracer_of
    for side in server client; do
        strace_start "$W/strace.$mode-$side" "${PID_OF[$mode-$side]}" ||
            die "strace did not attach to $mode $side ($STRACE_PIDS)"
        tracer_of[$side]=$STRACE_PID
    done
    stat_snapshot
    stream "$mode" "$STRACE_BYTES"
    expect_keyupdates "$mode" "$STRACE_BYTES"
    sleep 0.5
    for side in server client; do
        strace_stop "$W/strace.$mode-$side" "${tracer_of[$side]}" || die "strace wrote no summary for $mode $side"
        report "@@BENCH pass=rekey-syscalls mode=$mode side=$side bytes_each_way=$STRACE_BYTES" \
            "syscalls=$(strace_syscalls "$W/strace.$mode-$side.txt")"
    done
}

check cpu-and-stall cpu_pass
check syscalls-plain strace_pass plain
check syscalls-rekey strace_pass rekey
stop_shared clean-shutdown "${PID_OF[@]}"
cat "$W/bench.lines" 2>/dev/null
finish
