#!/bin/bash
# bench/vm guest script: what a network (layer-3) tunnel costs ktlstund per GB carried,
# its kTLS path (ktls = require) against its userspace path (ktls = off), in the same
# VM run. Counts, not speed: under TCG every instruction is emulated.
#
# Set-up per mode: two network namespaces joined by a veth pair, the hub's daemon in
# one and the client's in the other (1 worker each, tunnel addresses 10.8.0.1 and
# 10.8.0.2). One TCP connection from the client's namespace to the hub's tunnel
# address carries zeros (socat), the receiver discarding them; GB = 10^9 bytes of that
# TCP payload. The tunnel is up (and warmed with 1 MiB) before anything is measured.
#   cpu        utime/stime of every process of each daemon around a transfer of
#              CPU_BYTES, the two modes taking turns RUNS times.
#   syscalls   one more transfer of STRACE_BYTES per mode with `strace -c -f` attached
#              to every process of both daemons (ptrace inflates CPU: not in the cpu pass).
#
# Prints "@@BENCH pass=... mode=ktls|off side=hub|client ..." lines that
# bench/vm/network.sh turns into a table; FAIL when a mode did not run the way it
# claims (kTLS: both namespaces' tls_stat show the offloaded session and the audit
# lines say ktls=tx+rx; off: no kTLS session and ktls=off).
GROUP=bench-vm-network
PORT_BASE=29700
source "$(dirname "$0")/lib/ktls.sh"
need ktlstund ktlstun strace socat ip jq
[ -f "$(dirname "$0")/lib/bench.conf" ] && source "$(dirname "$0")/lib/bench.conf"
source "$(dirname "$0")/lib/proc.sh"

RUNS=${BENCH_NET_RUNS:-2}
CPU_BYTES=${BENCH_NET_BYTES:-67108864}               # 64 MiB per transfer
STRACE_BYTES=${BENCH_NET_STRACE_BYTES:-16777216}     # 16 MiB under strace
HZ=100

load_tls
modprobe tun 2>/dev/null
trap 'end_pids; net_pairs_remove' EXIT

declare -A PID_OF LOG_OF CONF_OF NS_OF
for mode in ktls off; do
    net_pair "$mode"
    NS_OF[$mode-hub]=$NS_A
    NS_OF[$mode-client]=$NS_B
    policy=require
    [ "$mode" = off ] && policy=off
    ports 1
    CONF_OF[$mode-hub]=$W/$mode-hub.ini
    CONF_OF[$mode-client]=$W/$mode-client.ini
    {
        WORKERS=1 global_section
        cat <<EOF
[hub]
mode = server
type = network
listen = 198.18.0.1:${PORTS[0]}
cert = $PKI/server.pem
key = $PKI/server.key
ca = $PKI/ca.pem
address = 10.8.0.1/24
client_address = alice=10.8.0.2
ktls = $policy

EOF
    } >"${CONF_OF[$mode-hub]}"
    {
        WORKERS=1 global_section
        cat <<EOF
[to-hub]
mode = client
type = network
target = 198.18.0.1:${PORTS[0]}
server_name = localhost
cert = $PKI/alice.pem
key = $PKI/alice.key
ca = $PKI/ca.pem
device = ktlnet
ktls = $policy

EOF
    } >"${CONF_OF[$mode-client]}"
    for side in hub client; do
        LOG_OF[$mode-$side]=$W/$mode-$side.log
        SHARED_LOGS+=("${LOG_OF[$mode-$side]}")
        DAEMON_NS=${NS_OF[$mode-$side]} start_daemon "${CONF_OF[$mode-$side]}" "${LOG_OF[$mode-$side]}"
        PID_OF[$mode-$side]=$DAEMON_PID
    done
    for ((i = 0; i < LIMIT * 10; i++)); do
        ip -n "${NS_OF[$mode-client]}" -o addr show dev ktlnet 2>/dev/null | grep -q ' 10\.8\.0\.2/' && break
        sleep 0.1
    done
    [ "$i" -lt $((LIMIT * 10)) ] || die "$mode: the client's device did not get 10.8.0.2"
done

# transfer MODE BYTES: BYTES of zeros over one TCP connection from the client's
# namespace to 10.8.0.1 in the hub's, through MODE's tunnel; all of them must arrive.
transfer() {
    local mode=$1 bytes=$2 port receiver got
    ports 1
    port=${PORTS[0]}
    ip netns exec "${NS_OF[$mode-hub]}" socat -u "TCP4-LISTEN:$port,bind=10.8.0.1,reuseaddr" - 2>"$W/recv.err" |
        wc -c >"$W/recv.count" &
    receiver=$!
    PIDS+=("$receiver")
    for ((i = 0; i < LIMIT * 10; i++)); do
        ip netns exec "${NS_OF[$mode-hub]}" ss -Hltn | grep -q ":$port " && break
        sleep 0.1
    done
    head -c "$bytes" /dev/zero |
        ip netns exec "${NS_OF[$mode-client]}" timeout 900 socat -u - "TCP4:10.8.0.1:$port" 2>"$W/send.err" ||
        die "$mode: the transfer of $bytes bytes broke off: $(cat "$W/send.err")"
    wait_exit "$receiver" 120 || die "$mode: the receiver did not end"
    got=$(cat "$W/recv.count")
    [ "$got" = "$bytes" ] || die "$mode: $got of $bytes bytes arrived"
}

# expect_mode MODE: the sessions run the way MODE says (tls_stat in both namespaces,
# and status --json of the hub).
expect_mode() {
    local mode=$1 side want=1 flag=true
    [ "$mode" = off ] && want=0 flag=false
    for side in hub client; do
        [ "$(ns_tls_stat "${NS_OF[$mode-$side]}" TlsCurrTxSw)" = "$want" ] &&
            [ "$(ns_tls_stat "${NS_OF[$mode-$side]}" TlsCurrRxSw)" = "$want" ] ||
            die "$mode $side: TlsCurrTxSw/TlsCurrRxSw are not $want"
    done
    ip netns exec "${NS_OF[$mode-hub]}" ktlstun status --json -c "${CONF_OF[$mode-hub]}" |
        jq -e --argjson f "$flag" '[.connections[] | select(.tunnel == "hub" and .ktls_tx == $f)] | length == 1' \
            >/dev/null || die "$mode: the hub's status does not show one connection with ktls_tx $flag"
}

cpu_pass() {
    local run mode side
    declare -A t0 t1
    for mode in ktls off; do
        transfer "$mode" 1048576   # warm-up: lazy set-up does not count
    done
    for ((run = 1; run <= RUNS; run++)); do
        for mode in ktls off; do
            for side in hub client; do t0[$side]=$(cpu_ticks "${PID_OF[$mode-$side]}"); done
            local wall0 wall1
            wall0=$(now_ms)
            transfer "$mode" "$CPU_BYTES"
            wall1=$(now_ms)
            for side in hub client; do t1[$side]=$(cpu_ticks "${PID_OF[$mode-$side]}"); done
            for side in hub client; do
                report "@@BENCH pass=cpu run=$run mode=$mode side=$side bytes=$CPU_BYTES hz=$HZ" \
                    "utime_ticks=$((${t1[$side]% *} - ${t0[$side]% *}))" \
                    "stime_ticks=$((${t1[$side]#* } - ${t0[$side]#* }))" \
                    "tcg_wall_ms=$((wall1 - wall0))"
            done
            expect_mode "$mode"
        done
    done
}

# strace_pass MODE: syscall counts of each daemon while STRACE_BYTES cross the tunnel.
strace_pass() {
    local mode=$1 side
    declare -A tracer_of
    for side in hub client; do
        strace_start "$W/strace.$mode-$side" "${PID_OF[$mode-$side]}" ||
            die "strace did not attach to $mode $side ($STRACE_PIDS): $(cat "$W/strace.$mode-$side.err")"
        tracer_of[$side]=$STRACE_PID
    done
    transfer "$mode" "$STRACE_BYTES"
    sleep 0.5
    for side in hub client; do
        strace_stop "$W/strace.$mode-$side" "${tracer_of[$side]}" || die "strace wrote no summary for $mode $side"
        report "@@BENCH pass=syscalls mode=$mode side=$side bytes=$STRACE_BYTES" \
            "syscalls=$(strace_syscalls "$W/strace.$mode-$side.txt")" \
            "by_call=$(strace_by_call "$W/strace.$mode-$side.txt")"
        sed "s/^/  | strace $mode $side: /" "$W/strace.$mode-$side.txt" >>"$W/bench.lines"
    done
}

# audits: after the daemons stop, every audit line says what its mode claims.
audits() {
    local mode side want line i
    for mode in ktls off; do
        want=tx+rx
        [ "$mode" = off ] && want=off
        # The daemons are the script's, not this check's children: SIGTERM, then wait
        # until they are gone (the client first, so its session ends with close_notify).
        for side in client hub; do
            kill -TERM "${PID_OF[$mode-$side]}" 2>/dev/null || die "$mode $side: the daemon is not running"
            for ((i = 0; i < LIMIT * 10; i++)); do
                alive "${PID_OF[$mode-$side]}" || break
                sleep 0.1
            done
            alive "${PID_OF[$mode-$side]}" && die "$mode $side: the daemon still runs $LIMIT s after SIGTERM"
        done
        for side in hub client; do
            line=$(grep -E 'info: audit tunnel=' "${LOG_OF[$mode-$side]}") || die "$mode $side: no audit line"
            [ "$(printf '%s\n' "$line" | grep -c .)" = 1 ] || die "$mode $side: more than one connection: $line"
            [ "$(field "$line" ktls)" = "$want" ] || die "$mode $side: audit says ktls=$(field "$line" ktls): $line"
            report "@@BENCH pass=audit mode=$mode side=$side ktls=$(field "$line" ktls)" \
                "bytes_in=$(field "$line" bytes_in) bytes_out=$(field "$line" bytes_out)" \
                "packets_in=$(field "$line" packets_in) packets_out=$(field "$line" packets_out)"
        done
    done
}

report "@@BENCH pass=env mode=- side=- clocksource=$(cat /sys/devices/system/clocksource/clocksource0/current_clocksource 2>/dev/null)"
check cpu-per-GB cpu_pass
check syscalls-ktls strace_pass ktls
check syscalls-off strace_pass off
check audit audits
cat "$W/bench.lines" 2>/dev/null
finish
