#!/bin/bash
# bench/vm guest script: what one ktlstund costs per GB relayed, kTLS (ktls = require)
# against the userspace fallback (ktls = off), in the same VM run. Counts, not speed:
# under TCG every instruction is emulated, so wall-clock throughput means nothing here,
# but CPU split user/sys, syscalls per byte and bytes copied through userspace keep
# their shape.
#
# Set-up per mode: a client-tunnel daemon and a server-tunnel daemon (so each end is
# measured on its own) in front of an echo server; socat clients push zeros through
# client tunnel -> server tunnel -> echo and back.
#
# Connections are opened first (socat clients fed from fifos) and measured only once
# both daemons show them all relaying (ktlstun status), so handshakes and the kTLS
# handoff stay out of the per-GB figures (the handshake CPU is reported on its own).
# Then zeros are pushed through every connection at once, the echo discarded, and the
# connections closed. Two passes per mode, each on fresh connections:
#   cpu        CONNS connections x CPU_BYTES each way; utime/stime of every process of
#              each daemon (parent and workers, /proc/PID/stat) around the data phase.
#   syscalls   CONNS connections x STRACE_BYTES each way with `strace -c -f` attached to
#              every process of both daemons for the data phase. Separate from the CPU
#              pass because ptrace inflates CPU time.
#   memory     idle tunnels, opened with bench's idle_conns through the same pair:
#              growth of each daemon's PSS (every process, smaps_rollup) and of the
#              kernel's slab memory from IDLE_BASE to IDLE_BASE + IDLE_CONNS tunnels.
#              Memory is not speed: TCG does not distort it.
# Bytes relayed and bytes copied through userspace come from the audit lines
# (bytes_in + bytes_out, userspace_bytes).
#
# Prints "@@BENCH key=value ..." lines that bench/vm/run.sh turns into a table, and
# PASS/FAIL lines (FAIL when a measurement is missing or a mode did not relay the way
# it claims: kTLS audit lines must say ktls=tx+rx, fallback ones ktls=off).
GROUP=bench-vm
PORT_BASE=29000
source "$(dirname "$0")/lib/ktls.sh"
need ktlstund ktlstun echo_server strace socat jq idle_conns
# bench/vm/run.sh passes its settings in this file.
[ -f "$(dirname "$0")/lib/bench.conf" ] && source "$(dirname "$0")/lib/bench.conf"
source "$(dirname "$0")/lib/proc.sh"

CONNS=${BENCH_CONNS:-4}
CPU_BYTES=${BENCH_CPU_BYTES:-16777216}       # per connection, each way: 4 x 16 MiB = 64 MiB
STRACE_BYTES=${BENCH_STRACE_BYTES:-4194304}  # per connection, each way, under strace
HZ=100                                       # USER_HZ on x86-64: /proc/PID/stat ticks
IDLE_BASE=${BENCH_IDLE_BASE:-100}            # idle tunnels before the memory baseline
IDLE_CONNS=${BENCH_IDLE_CONNS:-1000}         # idle tunnels the growth is measured over
# Each idle tunnel holds 6 descriptors in a tunnel's worker (2 sockets, 2 pipes when
# offloaded) and one in the echo server, which inherits this soft limit.
ulimit -n 65536

load_tls
ports 1
ECHO=${PORTS[0]}
start_echo "127.0.0.1:$ECHO"

declare -A PID_OF LOG_OF PORT_OF
for mode in ktls off; do
    ports 2
    PORT_OF[$mode-server]=${PORTS[0]}
    PORT_OF[$mode-client]=${PORTS[1]}
    policy=require
    [ "$mode" = off ] && policy=off
    WORKERS=1 global_section >"$W/$mode-server.ini"
    server_tunnel "s-$mode" "${PORT_OF[$mode-server]}" "$ECHO" "ktls = $policy" >>"$W/$mode-server.ini"
    WORKERS=1 global_section >"$W/$mode-client.ini"
    client_tunnel "c-$mode" "${PORT_OF[$mode-client]}" "${PORT_OF[$mode-server]}" "ktls = $policy" \
        >>"$W/$mode-client.ini"
    for side in server client; do
        LOG_OF[$mode-$side]=$W/$mode-$side.log
        SHARED_LOGS+=("${LOG_OF[$mode-$side]}")
        start_daemon "$W/$mode-$side.ini" "${LOG_OF[$mode-$side]}"
        PID_OF[$mode-$side]=$DAEMON_PID
    done
done

# audit_totals MODE SIDE FROM: "LINES BYTES USERSPACE KTLS_VALUES" over audit lines
# number FROM+1 onwards.
audit_totals() {
    local lines
    lines=$(grep -E "info: audit tunnel=${2:0:1}-$1 " "${LOG_OF[$1-$2]}" | tail -n +$(($3 + 1)))
    printf '%s\n' "$lines" | awk '
        /audit/ {
            n++
            for (i = 1; i <= NF; i++) {
                split($i, kv, "=")
                if (kv[1] == "bytes_in" || kv[1] == "bytes_out") bytes += kv[2]
                if (kv[1] == "userspace_bytes") copied += kv[2]
                if (kv[1] == "ktls") modes[kv[2]] = 1
            }
        }
        END { m = ""; for (k in modes) m = m (m ? "," : "") k; print n + 0, bytes + 0, copied + 0, (m ? m : "-") }'
}

audit_count() { grep -cE "info: audit tunnel=${2:0:1}-$1 " "${LOG_OF[$1-$2]}"; }

# relaying PID: connections the daemon of PID shows relaying (ktlstun status --json).
relaying() {
    local conf=$1 json
    json=$(ktlstun status --json -c "$conf" 2>/dev/null) || { echo 0; return; }
    printf '%s' "$json" | jq '[.connections[] | select(.state == "relaying")] | length'
}

# open_conns MODE: CONNS connections through MODE's pair, each fed from a fifo (fd in
# CONN_FDS), echo discarded; returns once both daemons show all of them relaying, i.e.
# every handshake and kTLS handoff is done and no payload has moved yet.
open_conns() {
    local mode=$1 i fifo fifos=() fd
    CONN_FDS=()
    # Every reader first: a client forked after a write end is open would inherit it
    # and keep that connection from ever seeing EOF.
    for ((i = 0; i < CONNS; i++)); do
        fifo=$W/conn.$mode.$RANDOM$i
        mkfifo "$fifo"
        fifos+=("$fifo")
        spawn "$fifo.err" bash -c "exec socat -t 300 -T 600 - TCP:127.0.0.1:${PORT_OF[$mode-client]} <'$fifo' >/dev/null"
    done
    for fifo in "${fifos[@]}"; do
        exec {fd}>"$fifo"
        CONN_FDS+=("$fd")
    done
    for ((i = 0; i < 600; i++)); do
        [ "$(relaying "$W/$mode-server.ini")" = "$CONNS" ] && [ "$(relaying "$W/$mode-client.ini")" = "$CONNS" ] &&
            return 0
        sleep 0.1
    done
    die "$mode: $CONNS connections did not reach relaying in both daemons"
}

# push_and_close MODE BYTES: BYTES of zeros into every open connection at once, then EOF;
# waits until both daemons logged the ends.
push_and_close() {
    local mode=$1 bytes=$2 fd writers=() before_s before_c
    before_s=$(audit_count "$mode" server)
    before_c=$(audit_count "$mode" client)
    for fd in "${CONN_FDS[@]}"; do
        head -c "$bytes" /dev/zero >&"$fd" &
        writers+=("$!")
    done
    wait "${writers[@]}"
    for fd in "${CONN_FDS[@]}"; do
        exec {fd}>&-
    done
    wait_for "${LOG_OF[$mode-server]}" "info: audit tunnel=s-$mode " 600 $((before_s + CONNS)) ||
        die "s-$mode did not log $CONNS connections"
    wait_for "${LOG_OF[$mode-client]}" "info: audit tunnel=c-$mode " 600 $((before_c + CONNS)) ||
        die "c-$mode did not log $CONNS connections"
}

# expect_mode MODE: the audit lines so far say what MODE claims.
expect_mode() {
    local want=tx+rx side got
    [ "$1" = off ] && want=off
    for side in server client; do
        got=$(audit_totals "$1" "$side" 0 | cut -d' ' -f4)
        [ "$got" = "$want" ] || die "$1 $side: audit lines say ktls=$got, expected only $want"
    done
}

# measure_cpu MODE: CPU of each daemon for the handshakes (opening CONNS connections)
# and, separately, for relaying CPU_BYTES each way through each and closing them.
measure_cpu() {
    local mode=$1 side totals wall0 wall1
    declare -A t0 t1 t2 audit0
    for side in server client; do
        t0[$side]=$(cpu_ticks "${PID_OF[$mode-$side]}")
        audit0[$side]=$(audit_count "$mode" "$side")
    done
    open_conns "$mode"
    for side in server client; do
        t1[$side]=$(cpu_ticks "${PID_OF[$mode-$side]}")
    done
    wall0=$(now_ms)
    push_and_close "$mode" "$CPU_BYTES"
    wall1=$(now_ms)
    sleep 0.5
    for side in server client; do
        t2[$side]=$(cpu_ticks "${PID_OF[$mode-$side]}")
        totals=$(audit_totals "$mode" "$side" "${audit0[$side]}")
        report "@@BENCH pass=cpu mode=$mode side=$side conns=$CONNS bytes_each_way=$CPU_BYTES hz=$HZ" \
            "handshake_utime_ticks=$((${t1[$side]% *} - ${t0[$side]% *}))" \
            "handshake_stime_ticks=$((${t1[$side]#* } - ${t0[$side]#* }))" \
            "utime_ticks=$((${t2[$side]% *} - ${t1[$side]% *})) stime_ticks=$((${t2[$side]#* } - ${t1[$side]#* }))" \
            "audit_lines=$(echo "$totals" | cut -d' ' -f1) relayed_bytes=$(echo "$totals" | cut -d' ' -f2)" \
            "userspace_bytes=$(echo "$totals" | cut -d' ' -f3) ktls=$(echo "$totals" | cut -d' ' -f4)" \
            "tcg_wall_ms=$((wall1 - wall0))"
    done
}

cpu_pass() {
    local mode
    for mode in ktls off; do
        # Warm-up: lazy set-up in the workers does not count.
        open_conns "$mode"
        push_and_close "$mode" 65536
        measure_cpu "$mode"
        expect_mode "$mode"
    done
}

# strace_pass MODE: syscall counts per daemon while STRACE_BYTES each way go through
# connections that are already relaying (handshakes not counted).
strace_pass() {
    local mode=$1 side pids p args n i totals fd
    declare -A tracer_of before_of
    open_conns "$mode"
    for side in server client; do
        args=()
        pids=$(family "${PID_OF[$mode-$side]}")
        for p in $pids; do args+=(-p "$p"); done
        # Without our fifo write ends: strace holding one would keep its connection open.
        (
            for fd in "${CONN_FDS[@]}"; do exec {fd}>&-; done
            exec strace -c -f -o "$W/strace.$mode-$side.txt" "${args[@]}" 2>"$W/strace.$mode-$side.err"
        ) &
        tracer_of[$side]=$!
        PIDS+=("$!")
        strace_attached "$W/strace.$mode-$side.err" "$(echo "$pids" | wc -w)" ||
            die "strace did not attach to $mode $side ($pids): $(cat "$W/strace.$mode-$side.err")"
        before_of[$side]=$(audit_count "$mode" "$side")
    done
    push_and_close "$mode" "$STRACE_BYTES"
    sleep 0.5
    for side in server client; do
        strace_stop "$W/strace.$mode-$side" "${tracer_of[$side]}" || die "strace wrote no summary for $mode $side"
        totals=$(audit_totals "$mode" "$side" "${before_of[$side]}")
        report "@@BENCH pass=syscalls mode=$mode side=$side conns=$CONNS bytes_each_way=$STRACE_BYTES" \
            "relayed_bytes=$(echo "$totals" | cut -d' ' -f2)" \
            "syscalls=$(strace_syscalls "$W/strace.$mode-$side.txt")" \
            "by_call=$(strace_by_call "$W/strace.$mode-$side.txt")"
        sed "s/^/  | strace $mode $side: /" "$W/strace.$mode-$side.txt" >>"$W/bench.lines"
    done
}

# pss_kb PID: proportional set size of PID's family, in kB.
pss_kb() {
    local total=0 p kb
    for p in $(family "$1"); do
        kb=$(awk '/^Pss:/ { print $2 }' "/proc/$p/smaps_rollup" 2>/dev/null)
        total=$((total + ${kb:-0}))
    done
    echo "$total"
}

meminfo_kb() { awk -v key="$1:" '$1 == key { print $2 }' /proc/meminfo; }

# slab_bytes: "CACHE BYTES" per slab cache (objects x object size), from /proc/slabinfo.
slab_bytes() { awk 'NR > 2 { print $1, $3 * $4 }' /proc/slabinfo; }

# slab_growth BEFORE AFTER N: the 6 caches that grew most, "CACHE:KIB_PER_TUNNEL,...".
slab_growth() {
    awk -v n="$3" 'NR == FNR { before[$1] = $2; next }
        { print $2 - before[$1], $1 }' "$1" "$2" | sort -rn | head -6 |
        awk -v n="$3" '{ printf "%s%s:%.2f", (NR > 1 ? "," : ""), $2, $1 / 1024 / n }'
}

# memory_pass MODE: IDLE_BASE idle tunnels through MODE's pair, then IDLE_CONNS more;
# reports each daemon's PSS growth and the kernel's slab growth over those IDLE_CONNS.
memory_pass() {
    local mode=$1 in pid side top=$((IDLE_BASE + IDLE_CONNS)) slab0 slab1 tx
    declare -A pss0 pss1
    mkfifo "$W/idle.$mode.in"
    idle_conns --connect "127.0.0.1:${PORT_OF[$mode-client]}" --steps "$IDLE_BASE,$top" \
        --inflight 4 --timeout 600 <"$W/idle.$mode.in" >"$W/idle.$mode.out" 2>"$W/idle.$mode.err" &
    pid=$!
    PIDS+=("$pid")
    exec {in}>"$W/idle.$mode.in"
    # idle_conns exits when a tunnel is refused or times out: stop waiting then.
    wait_for "$W/idle.$mode.out" "^established $IDLE_BASE " 600 1 "$pid" ||
        die "$mode: $IDLE_BASE idle tunnels did not open: $(cat "$W/idle.$mode.err")"
    sleep 2   # settled: buffers the probe byte took are given back by then
    for side in server client; do pss0[$side]=$(pss_kb "${PID_OF[$mode-$side]}"); done
    slab0=$(meminfo_kb Slab)
    slab_bytes >"$W/slab.$mode.before"
    echo >&"$in"
    note "$mode: $IDLE_BASE idle tunnels after $(sed -n 's/^established .* seconds=//p' "$W/idle.$mode.out")s"
    wait_for "$W/idle.$mode.out" "^established $top " 600 1 "$pid" ||
        die "$mode: $top idle tunnels did not open: $(cat "$W/idle.$mode.err")"
    note "$mode: $top idle tunnels after $(sed -n '$s/^established .* seconds=//p' "$W/idle.$mode.out")s"
    sleep 2
    for side in server client; do pss1[$side]=$(pss_kb "${PID_OF[$mode-$side]}"); done
    slab1=$(meminfo_kb Slab)
    slab_bytes >"$W/slab.$mode.after"
    for side in server client; do
        [ "$(relaying "$W/$mode-$side.ini")" = "$top" ] || die "$mode $side: not all $top idle tunnels are relaying"
    done
    # kTLS: every TLS socket of both ends offloaded (TX, and RX likewise), none fell back.
    tx=$(tls_stat TlsCurrTxSw)
    if [ "$mode" = ktls ] && [ "${tx:-0}" -lt $((2 * top)) ]; then
        die "ktls: only ${tx:-0} kTLS TX sockets for $top tunnels (two TLS ends each)"
    fi
    exec {in}>&-
    wait_exit "$pid" 300 >/dev/null || true
    for side in server client; do
        report "@@BENCH pass=memory mode=$mode side=$side conns=$IDLE_CONNS base=$IDLE_BASE" \
            "pss_kb_before=${pss0[$side]} pss_kb_after=${pss1[$side]}" \
            "slab_kb_before=$slab0 slab_kb_after=$slab1 ktls_tx_sockets=${tx:-0}" \
            "slab_top=$(slab_growth "$W/slab.$mode.before" "$W/slab.$mode.after" "$IDLE_CONNS")"
    done
}

# vDSO clock_gettime needs a TSC-like clocksource; without one (common under TCG)
# every clock read is a real syscall and shows up in the strace counts.
report "@@BENCH pass=env mode=- side=- clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null)"
check cpu-per-GB cpu_pass
check syscalls-ktls strace_pass ktls
check syscalls-off strace_pass off
check memory-ktls memory_pass ktls
check memory-off memory_pass off
stop_shared clean-shutdown "${PID_OF[@]}"
cat "$W/bench.lines" 2>/dev/null
finish
