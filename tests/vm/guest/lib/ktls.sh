# lib/ktls.sh — helpers for the kTLS end-to-end guest tests (sourced, bash only).
#
# Model: a guest script sets GROUP (the result prefix) and calls
#   check NAME FUNCTION [ARGS...]
# once per result. FUNCTION runs in a subshell with its own EXIT trap that ends every
# process it spawned; it fails with `die REASON` (or any command under `must`), which
# prints "FAIL GROUP/NAME: REASON" and the tail of the logs it registered; otherwise
# the check prints "PASS GROUP/NAME". Nothing here ever skips: a missing tool, a daemon
# that does not start, a counter that did not move are all failures.
#
# The kTLS evidence helpers (expect_offloaded, tls_stat_delta, ...) are what makes a
# run in which offload silently did not happen fail.

set -uo pipefail

: "${GROUP:?set GROUP before sourcing lib/ktls.sh}"
PKI=${KTLSTUN_PKI:-/pki}
TOOLS=${KTLSTUN_BUILD:-/build}/tools
W=${TMPDIR:?}
# The workers run as ktlstun: they must reach their runtime directory under $W.
chmod 0755 "$W"
# TCG is slow and uneven: generous limits, since a hang still fails at the limit.
LIMIT=${KTLS_TEST_LIMIT:-60}
FAILED=0

PIDS=()          # processes of the current check (or of the script), ended at its end
LOGS=()          # logs shown when the current check fails
SHARED_LOGS=()   # logs of daemons the script shares between checks, shown on any failure
MAIN_PID=$$
CHECK_PID=
trap 'exit 1' TERM
trap 'end_pids' EXIT

note() { echo "  # $*"; }

# die REASON: fails the current check, also from a $(...) or ( ... ) inside it: the
# first reason is kept and the check's shell is told to stop. Outside a check (shared
# set-up in the script itself) it fails GROUP/setup and ends the script.
die() {
    if [ -z "${CHECK_PID:-}" ]; then
        echo "FAIL $GROUP/setup: $*" >&2
        show_logs "${SHARED_LOGS[@]}" >&2
        [ "$BASHPID" != "$MAIN_PID" ] && kill -TERM "$MAIN_PID" 2>/dev/null
        exit 1
    fi
    [ -s "$W/.why" ] || printf '%s\n' "$*" >"$W/.why"
    [ "$BASHPID" != "$CHECK_PID" ] && kill -TERM "$CHECK_PID" 2>/dev/null
    exit 1
}

# show_logs FILE...: the last lines of each, indented so no line reads as a result.
show_logs() {
    local log
    for log in "$@"; do
        [ -n "$log" ] && [ -f "$log" ] || continue
        echo "  | ---- last lines of $log"
        tail -n 25 "$log" | sed 's/^/  | /'
    done
}

# must COMMAND...: runs COMMAND; a non-zero status fails the check with its output.
must() {
    local out rc
    out=$("$@" 2>&1)
    rc=$?
    [ "$rc" -eq 0 ] || die "$* exited $rc: $(printf '%s' "$out" | tail -n 3 | tr '\n' ' ')"
    [ -z "$out" ] || printf '%s\n' "$out"
}

end_pids() {
    local p i any
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    # Sanitizer builds write their reports at exit: give them time.
    for ((i = 0; i < 100; i++)); do
        any=0
        for p in "${PIDS[@]}"; do
            alive "$p" && any=1
        done
        [ "$any" = 0 ] && break
        sleep 0.1
    done
    for p in "${PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null
    done
}

# check NAME FUNCTION [ARGS...]: one result line for GROUP/NAME.
check() {
    local name=$1 rc start
    shift
    rm -f "$W/.why" "$W/.logs"
    start=$(date +%s)
    (
        PIDS=()
        LOGS=()
        CHECK_PID=$BASHPID
        trap 'exit 1' TERM
        trap 'printf "%s\n" "${LOGS[@]}" >"$W/.logs"; end_pids' EXIT
        "$@"
    ) >"$W/check.$name.out" 2>&1
    rc=$?
    local logs=() why="exited $rc without a reason"
    mapfile -t logs <"$W/.logs" 2>/dev/null
    [ -s "$W/.why" ] && why=$(head -n 1 "$W/.why")
    if [ "$rc" -eq 0 ] && sanitizer_report "${logs[@]}"; then
        rc=1
        why="sanitizer report in $SANITIZER_LOG: $SANITIZER_LINE"
    fi
    if [ "$rc" -eq 0 ]; then
        echo "PASS $GROUP/$name ($(($(date +%s) - start)) s)"
        return 0
    fi
    FAILED=1
    echo "FAIL $GROUP/$name: $why ($(($(date +%s) - start)) s)"
    sed 's/^/  | /' "$W/check.$name.out" | tail -n 30
    show_logs "${logs[@]}" "${SHARED_LOGS[@]}"
    return 1
}

# sanitizer_report LOG...: true when a log holds an ASan/UBSan/LSan report (the guest
# tests also run against build/asan); sets SANITIZER_LOG and SANITIZER_LINE.
sanitizer_report() {
    local log
    for log in "$@"; do
        [ -n "$log" ] && [ -f "$log" ] || continue
        SANITIZER_LINE=$(grep -m 1 -E 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log") || continue
        SANITIZER_LOG=$log
        return 0
    done
    return 1
}

# alive PID: true while PID runs and is not a zombie.
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

# ports N: N TCP ports no earlier call in this script handed out, in the array PORTS
# (the counter lives in a file, so calls inside checks count too), from PORT_BASE up.
# The VM runs nothing else, and they are below the ephemeral range: no outgoing
# connection takes one.
ports() {
    local next i
    # PORT_BASE (set by the script) keeps scripts in blocks of their own, clear of
    # sockets an earlier script left in TIME_WAIT.
    next=$(cat "$W/.next_port" 2>/dev/null || echo "${PORT_BASE:-20000}")
    PORTS=()
    for ((i = 0; i < $1; i++)); do
        PORTS+=("$next")
        next=$((next + 1))
    done
    echo "$next" >"$W/.next_port"
}

# spawn OUTFILE COMMAND...: COMMAND in the background; sets SPAWN_PID.
spawn() {
    local out=$1
    shift
    "$@" >"$out" 2>&1 </dev/null &
    SPAWN_PID=$!
    PIDS+=("$SPAWN_PID")
}

# wait_for FILE ERE [SECONDS] [COUNT] [PID]: until FILE has COUNT lines matching ERE.
# With PID, fails at once when PID has exited (what it writes to FILE is all there is).
wait_for() {
    local file=$1 re=$2 limit=${3:-$LIMIT} count=${4:-1} pid=${5:-} i gone
    for ((i = 0; i < limit * 10; i++)); do
        # Whether PID had exited is read before FILE, so its last line is not missed.
        gone=0
        if [ -n "$pid" ] && ! alive "$pid"; then gone=1; fi
        [ "$(grep -cE -- "$re" "$file" 2>/dev/null)" -ge "$count" ] && return 0
        [ "$gone" = 1 ] && return 1
        sleep 0.1
    done
    return 1
}

# wait_exit PID SECONDS: waits for child PID; its status, or 255 after killing it.
wait_exit() {
    local pid=$1 limit=$2 i rc=0
    for ((i = 0; i < limit * 10; i++)); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
        return 255
    fi
    wait "$pid" || rc=$?
    return "$rc"
}

# start_echo ADDR: echo_server -v on ADDR (log $W/echo.ADDR.log); sets ECHO_LOG.
start_echo() {
    ECHO_LOG=$W/echo.${1//[:\/]/_}.log
    spawn "$ECHO_LOG" "$TOOLS/echo_server" -v "$1"
    wait_for "$ECHO_LOG" '^listening$' 20 || die "echo_server on $1 did not start: $(cat "$ECHO_LOG")"
}

# global_section [EXTRA LINES]: the [global] section of a guest daemon config. Workers
# drop to the ktlstun user, as in production: offload must work unprivileged.
global_section() {
    local dir=$W/daemon.$RANDOM$RANDOM
    # runtime_dir is left to the daemon, which makes it and gives it to the workers.
    mkdir -p "$dir/state"
    cat <<EOF
[global]
log_level = ${LOG_LEVEL:-info}
state_dir = $dir/state
runtime_dir = $dir/run
user = ktlstun
workers = ${WORKERS:-2}
shutdown_timeout = 5
EOF
    [ $# -gt 0 ] && printf '%s\n' "$@"
    echo
}

# extra_lines LINES...: a tunnel's extra lines, and ktls = require unless one sets ktls.
extra_lines() {
    [ $# -gt 0 ] && printf '%s\n' "$@"
    printf '%s\n' "$@" | grep -q '^ktls *=' || echo "ktls = require"
    echo
}

# server_tunnel NAME LISTEN_PORT TARGET_PORT [EXTRA LINES...]: a server tunnel
# section (ktls = require unless EXTRA LINES set it), presenting server.pem and requiring a client cert from ca.pem.
server_tunnel() {
    local name=$1 listen=$2 target=$3
    shift 3
    cat <<EOF
[$name]
mode = server
listen = 127.0.0.1:$listen
target = 127.0.0.1:$target
cert = $PKI/server.pem
key = $PKI/server.key
ca = $PKI/ca.pem
EOF
    extra_lines "$@"
}

# client_tunnel NAME LISTEN_PORT TARGET_PORT [EXTRA LINES...]: a client tunnel as alice,
# verifying the server as localhost (ktls = require unless EXTRA LINES set it).
client_tunnel() {
    local name=$1 listen=$2 target=$3
    shift 3
    cat <<EOF
[$name]
mode = client
listen = 127.0.0.1:$listen
target = 127.0.0.1:$target
server_name = localhost
cert = $PKI/alice.pem
key = $PKI/alice.key
ca = $PKI/ca.pem
EOF
    extra_lines "$@"
}

# start_daemon CONF LOG [ENV=VALUE...]: ktlstund -c CONF -f, waiting for "ready";
# sets DAEMON_PID. With DAEMON_NS set, the daemon runs in that network namespace
# (ip netns exec execs it: DAEMON_PID is still the supervisor's).
start_daemon() {
    local conf=$1 log=$2
    shift 2
    LOGS+=("$log")
    # iproute2's ip by its path: busybox env would run its own ip applet.
    local netns=()
    [ -n "${DAEMON_NS:-}" ] && netns=("$(type -P ip)" netns exec "$DAEMON_NS")
    env "$@" "${netns[@]}" ktlstund -c "$conf" -f >>"$log" 2>&1 </dev/null &
    DAEMON_PID=$!
    PIDS+=("$DAEMON_PID")
    local i
    for ((i = 0; i < 300; i++)); do
        grep -qE 'notice: ready \([0-9]+ tunnels?, [0-9]+ workers?\)' "$log" 2>/dev/null && return 0
        alive "$DAEMON_PID" || die "ktlstund -c $conf exited before it was ready: $(tail -n 3 "$log" | tr '\n' ' ')"
        sleep 0.1
    done
    die "ktlstund -c $conf not ready after 30 s"
}

# stop_daemon PID: SIGTERM; it must exit 0 within LIMIT seconds.
stop_daemon() {
    local rc=0
    kill -TERM "$1" 2>/dev/null || die "ktlstund $1 is not running"
    wait_exit "$1" "$LIMIT" || rc=$?
    [ "$rc" = 0 ] || die "ktlstund $1 exited $rc after SIGTERM (255: did not exit in $LIMIT s)"
}

# stop_shared NAME PID...: result GROUP/NAME for daemons the script itself started: each
# exits 0 within LIMIT seconds of SIGTERM.
stop_shared() {
    local name=$1 pid rc why=""
    shift
    for pid in "$@"; do
        kill -TERM "$pid" 2>/dev/null || why="$why ktlstund $pid was not running;"
    done
    for pid in "$@"; do
        rc=0
        wait_exit "$pid" "$LIMIT" || rc=$?
        [ "$rc" = 0 ] || why="$why ktlstund $pid exited $rc after SIGTERM (255: still running after $LIMIT s);"
    done
    sanitizer_report "${SHARED_LOGS[@]}" && why=" sanitizer report in $SANITIZER_LOG: $SANITIZER_LINE"
    if [ -z "$why" ]; then
        echo "PASS $GROUP/$name"
    else
        FAILED=1
        echo "FAIL $GROUP/$name:$why"
        show_logs "${SHARED_LOGS[@]}"
    fi
}

# tls_stat NAME: a /proc/net/tls_stat counter (dies when missing: no kTLS, no test).
tls_stat() {
    local v
    v=$(awk -v n="$1" '$1 == n { print $2 }' /proc/net/tls_stat 2>/dev/null)
    [ -n "$v" ] || die "/proc/net/tls_stat has no $1 (kernel without kTLS?)"
    echo "$v"
}

# rekey_kernel: true when this kernel's kTLS takes new keys (Linux 6.14 and later,
# which count them in /proc/net/tls_stat as TlsTxRekeyOk, TlsRxRekeyOk, ...).
rekey_kernel() { grep -q '^TlsRxRekeyOk[[:space:]]' /proc/net/tls_stat 2>/dev/null; }

# stat_snapshot: remembers the TLS counters; stat_delta NAME: growth since then (the
# rekey counters only on a rekey_kernel).
stat_snapshot() {
    SNAP_TX=$(tls_stat TlsTxSw)
    SNAP_RX=$(tls_stat TlsRxSw)
    SNAP_DECRYPT=$(tls_stat TlsDecryptError)
    if rekey_kernel; then
        SNAP_TX_REKEY=$(tls_stat TlsTxRekeyOk)
        SNAP_RX_REKEY=$(tls_stat TlsRxRekeyOk)
        SNAP_RX_REKEY_ERROR=$(tls_stat TlsRxRekeyError)
        SNAP_TX_REKEY_ERROR=$(tls_stat TlsTxRekeyError)
    fi
}
stat_delta() {
    local now
    now=$(tls_stat "$1")
    case $1 in
        TlsTxSw) echo $((now - SNAP_TX)) ;;
        TlsRxSw) echo $((now - SNAP_RX)) ;;
        TlsDecryptError) echo $((now - SNAP_DECRYPT)) ;;
        TlsTxRekeyOk) echo $((now - SNAP_TX_REKEY)) ;;
        TlsRxRekeyOk) echo $((now - SNAP_RX_REKEY)) ;;
        TlsRxRekeyError) echo $((now - SNAP_RX_REKEY_ERROR)) ;;
        TlsTxRekeyError) echo $((now - SNAP_TX_REKEY_ERROR)) ;;
    esac
}

# wait_stat NAME MIN: until stat_delta NAME reaches MIN (LIMIT seconds); a peer's
# KeyUpdate has been taken once TlsRxRekeyOk moved, whatever the peer prints.
wait_stat() {
    local i
    for ((i = 0; i < LIMIT * 10; i++)); do
        [ "$(stat_delta "$1")" -ge "$2" ] && return 0
        sleep 0.1
    done
    die "/proc/net/tls_stat: $1 rose by $(stat_delta "$1") in $LIMIT s, expected $2"
}

# expect_rekeys TX RX: on a rekey_kernel, TlsTxRekeyOk and TlsRxRekeyOk grew by at least
# TX and RX since stat_snapshot, and neither rekey error counter moved.
expect_rekeys() {
    local tx rx
    tx=$(stat_delta TlsTxRekeyOk)
    rx=$(stat_delta TlsRxRekeyOk)
    [ "$tx" -ge "$1" ] && [ "$rx" -ge "$2" ] ||
        die "/proc/net/tls_stat: TlsTxRekeyOk rose by $tx and TlsRxRekeyOk by $rx, expected at least $1 and $2"
    [ "$(stat_delta TlsRxRekeyError)" = 0 ] || die "TlsRxRekeyError rose by $(stat_delta TlsRxRekeyError)"
    [ "$(stat_delta TlsTxRekeyError)" = 0 ] || die "TlsTxRekeyError rose by $(stat_delta TlsTxRekeyError)"
}
# expect_sw_sessions N: exactly N software kTLS TX and N RX sessions were installed
# since stat_snapshot (each tunnel end of each connection installs one of each).
expect_sw_sessions() {
    local tx rx
    tx=$(stat_delta TlsTxSw)
    rx=$(stat_delta TlsRxSw)
    [ "$tx" = "$1" ] && [ "$rx" = "$1" ] ||
        die "/proc/net/tls_stat: TlsTxSw rose by $tx and TlsRxSw by $rx, expected $1 each (offload did not happen as it should)"
}

# audit_lines LOG TUNNEL: that tunnel's audit lines.
audit_lines() { grep -E "info: audit tunnel=$2 " "$1" 2>/dev/null; }

# field LINE KEY: KEY's value (quoted or bare) in an audit or refusal line.
field() {
    local line=$1 key=$2
    if [[ $line =~ (^|[[:space:]])$key=\"([^\"]*)\" ]]; then
        echo "${BASH_REMATCH[2]}"
    elif [[ $line =~ (^|[[:space:]])$key=([^[:space:]]*) ]]; then
        echo "${BASH_REMATCH[2]}"
    fi
}

# wait_audit LOG TUNNEL COUNT: until TUNNEL has COUNT audit lines.
wait_audit() {
    wait_for "$1" "info: audit tunnel=$2 " "$LIMIT" "$3" ||
        die "[$2] wrote $(audit_lines "$1" "$2" | wc -l) audit lines, expected $3"
}

# expect_offloaded LOG TUNNEL COUNT [TLS_VERSION CIPHER]: TUNNEL has exactly COUNT
# audit lines, each saying ktls=tx+rx and userspace_bytes=0 (and the version and
# cipher when given). Sets AUDIT to the lines.
expect_offloaded() {
    local log=$1 tunnel=$2 count=$3 version=${4:-} cipher=${5:-} line n
    wait_audit "$log" "$tunnel" "$count"
    sleep 0.2
    AUDIT=$(audit_lines "$log" "$tunnel")
    n=$(printf '%s\n' "$AUDIT" | grep -c .)
    [ "$n" = "$count" ] || die "[$tunnel] wrote $n audit lines, expected $count"
    while read -r line; do
        [ "$(field "$line" ktls)" = tx+rx ] || die "[$tunnel] not offloaded: $line"
        [ "$(field "$line" userspace_bytes)" = 0 ] || die "[$tunnel] payload went through userspace: $line"
        [ -z "$version" ] || [ "$(field "$line" tls)" = "$version" ] || die "[$tunnel] expected tls=$version: $line"
        [ -z "$cipher" ] || [ "$(field "$line" cipher)" = "$cipher" ] || die "[$tunnel] expected cipher=$cipher: $line"
    done <<<"$AUDIT"
}

# audit_sum FIELD: sum of FIELD over the lines in AUDIT.
audit_sum() {
    local line total=0
    while read -r line; do
        total=$((total + $(field "$line" "$1")))
    done <<<"$AUDIT"
    echo "$total"
}

# metric TEXT NAME: the value of metric line NAME (with labels) in TEXT.
metric() { printf '%s\n' "$1" | awk -v m="$2" '$1 == m { print $2 }'; }

# fetch_metrics PORT: the Prometheus text from 127.0.0.1:PORT.
fetch_metrics() {
    curl -sS --max-time 20 "http://127.0.0.1:$1/metrics" || die "cannot fetch metrics from 127.0.0.1:$1"
}

# now_ms: milliseconds since the epoch (busybox date has no %N).
now_ms() {
    local t=${EPOCHREALTIME/./}
    echo $((t / 1000))
}

# sha FILE: its SHA-256 (hex).
sha() { sha256sum "$1" | cut -d' ' -f1; }

# payload FILE BYTES: BYTES pseudo-random bytes in FILE.
payload() { head -c "$2" /dev/urandom >"$1"; }

# need COMMAND...: every COMMAND is on PATH (fails the check otherwise).
need() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null || die "$c is not in the guest (tests/vm/host-files.txt, tests/tools)"
    done
}

# The tls module, loaded before anything opens kTLS sockets in parallel (README).
load_tls() {
    grep -q '^tls ' /proc/modules || modprobe tls || die "modprobe tls failed"
}

finish() {
    exit "$FAILED"
}

# net_pair TAG: two fresh network namespaces (names in NS_A and NS_B), lo up, joined by
# a veth pair 198.18.0.1/30 (kn0 in A) -- 198.18.0.2/30 (kn1 in B). Their names go to a
# file, also from inside a check, so net_pairs_remove (the script's EXIT trap) finds them.
net_pair() {
    NS_A="kna$1$$" NS_B="knb$1$$"
    ip netns add "$NS_A" || die "ip netns add $NS_A failed"
    echo "$NS_A" >>"$W/.namespaces"
    ip netns add "$NS_B" || die "ip netns add $NS_B failed"
    echo "$NS_B" >>"$W/.namespaces"
    must ip -n "$NS_A" link set lo up
    must ip -n "$NS_B" link set lo up
    must ip -n "$NS_A" link add kn0 type veth peer name kn1 netns "$NS_B"
    must ip -n "$NS_A" addr add 198.18.0.1/30 dev kn0
    must ip -n "$NS_B" addr add 198.18.0.2/30 dev kn1
    must ip -n "$NS_A" link set kn0 up
    must ip -n "$NS_B" link set kn1 up
}

# net_pairs_remove: deletes every namespace net_pair made.
net_pairs_remove() {
    local name
    [ -f "$W/.namespaces" ] || return 0
    while read -r name; do
        ip netns del "$name" 2>/dev/null
    done <"$W/.namespaces"
    rm -f "$W/.namespaces"
}

# net_send FROM_NS TO_NS TO_ADDR PORT BYTES: BYTES of random data over TCP from namespace
# FROM_NS to a receiver on TO_ADDR:PORT in TO_NS, through the tunnel; the received
# copy's SHA-256 must be the sent one's.
net_send() {
    local from=$1 to=$2 addr=$3 port=$4 bytes=$5 i receiver
    payload "$W/payload.$port" "$bytes"
    ip netns exec "$to" socat -u "TCP4-LISTEN:$port,bind=$addr,reuseaddr" \
        "OPEN:$W/got.$port,creat,trunc" >"$W/recv.$port.log" 2>&1 &
    receiver=$!
    PIDS+=("$receiver")
    LOGS+=("$W/recv.$port.log")
    for ((i = 0; i < LIMIT * 10; i++)); do
        ip netns exec "$to" ss -Hltn | grep -q ":$port " && break
        sleep 0.1
    done
    ip netns exec "$from" timeout "$((LIMIT * 3))" socat -u "OPEN:$W/payload.$port" \
        "TCP4:$addr:$port" >"$W/send.$port.log" 2>&1 ||
        die "sending $bytes bytes through the tunnel failed: $(tr '\n' ' ' <"$W/send.$port.log")"
    wait_exit "$receiver" "$LIMIT" || die "the receiver did not end"
    [ "$(sha "$W/payload.$port")" = "$(sha "$W/got.$port")" ] ||
        die "$bytes bytes came through as $(stat -c %s "$W/got.$port") different ones"
    note "$bytes bytes through the tunnel, SHA-256 equal"
}

# check_transfer_and_rekey: the checks "transfer" and, on a kernel that can rekey kTLS,
# "rekey" (the script's functions of those names), then the script ends with their result.
check_transfer_and_rekey() {
    check transfer transfer
    if rekey_kernel; then
        check rekey rekey
    else
        note "this kernel cannot rekey kTLS ($(uname -r)): no rekey check"
    fi
    finish
}

# ns_tls_stat NS NAME: a /proc/net/tls_stat counter of network namespace NS (the
# counters are per namespace; a fresh one starts at 0).
ns_tls_stat() {
    local v
    v=$(ip netns exec "$1" awk -v n="$2" '$1 == n { print $2 }' /proc/net/tls_stat 2>/dev/null)
    [ -n "$v" ] || die "/proc/net/tls_stat in $1 has no $2 (kernel without kTLS?)"
    echo "$v"
}
