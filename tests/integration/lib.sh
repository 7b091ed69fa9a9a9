# lib.sh — helpers for tests/integration/test_*.sh (sourced; run.sh sets the environment).
#
# Environment from run.sh: KTLSTUND KTLSTUN TOOLS PKI TEST_DIR SLOW.
# Every background process a test starts goes through spawn/start_ktlstund/start_echo,
# so the EXIT trap can end them (by pid) and nothing outlives the test.

set -Eeuo pipefail

: "${KTLSTUND:?run me through tests/integration/run.sh}"
: "${KTLSTUN:?}" "${TOOLS:?}" "${PKI:?}" "${TEST_DIR:?}"
SLOW=${SLOW:-1}

PIDS=()          # background processes to end at exit
DAEMON_LOGS=()   # logs to show when a test fails
cd "$TEST_DIR"

note() { echo "# $*"; }

dump_logs() {
    local log
    for log in "${DAEMON_LOGS[@]}"; do
        [ -f "$log" ] || continue
        echo "---- last lines of $log" >&2
        tail -n 25 "$log" >&2
    done
}

fail() {
    trap - ERR
    echo "FAIL: $*" >&2
    dump_logs
    exit 1
}

trap 'fail "line $LINENO: \"$BASH_COMMAND\" exited $?"' ERR

# alive PID: true while PID runs (a zombie that nobody has waited for is not alive).
alive() {
    local stat
    stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
    stat=${stat##*) }
    [ "${stat%% *}" != Z ]
}

# wait_exit PID SECONDS: waits for our child PID; returns its exit status, or 255 (after
# killing it) when it has not exited in time.
wait_exit() {
    local pid=$1 limit=$2 rc=0 i timed_out=0
    for ((i = 0; i < limit * 20; i++)); do
        alive "$pid" || break
        sleep 0.05
    done
    if alive "$pid"; then
        kill -KILL "$pid" 2>/dev/null || true
        timed_out=1
    fi
    wait "$pid" || rc=$?
    forget_pid "$pid"
    [ "$timed_out" = 0 ] || return 255
    return "$rc"
}

forget_pid() {
    local p keep=()
    for p in "${PIDS[@]}"; do
        [ "$p" = "$1" ] || keep+=("$p")
    done
    PIDS=("${keep[@]}")
}

# term_started: SIGTERM to what the test started, then waits up to 5 s (stretched for
# sanitizer builds) for it to end.
term_started() {
    local p i any
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for ((i = 0; i < 50 * SLOW; i++)); do
        any=0
        for p in "${PIDS[@]}"; do
            alive "$p" && any=1
        done
        [ "$any" = 0 ] && break
        sleep 0.1
    done
}

cleanup() {
    local rc=$? p
    trap - ERR
    # Let sanitizer builds write their leak reports before run.sh reads the logs.
    term_started
    for p in "${PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null || true
    done
    exit "$rc"
}
trap cleanup EXIT

# stop_started_as USER...: ends what this test started, as cleanup does (SIGTERM, then
# SIGKILL), and waits a little for the processes that ran as USER... (a daemon's
# helpers end with it), so that a test can remove those users before it exits.
stop_started_as() {
    local p i users
    users=$(IFS=,; echo "$*")
    for p in "${PIDS[@]}"; do
        kill -TERM "$p" 2>/dev/null || true
    done
    for ((i = 0; i < 50 * SLOW; i++)); do
        local any=0
        for p in "${PIDS[@]}"; do
            alive "$p" && any=1
        done
        pgrep -u "$users" >/dev/null && any=1
        [ "$any" = 0 ] && return 0
        sleep 0.1
    done
    for p in "${PIDS[@]}"; do
        kill -KILL "$p" 2>/dev/null || true
    done
}

# scale SECONDS: SECONDS stretched for sanitizer builds.
scale() { echo $(($1 * SLOW)); }

now_ms() { echo $(($(date +%s%N) / 1000000)); }

# free_port: a random TCP port in 20000-60000 that no socket uses (any state, not just
# listeners) and this test has not handed out before. Ports in the kernel's ephemeral
# range are skipped: on a busy machine an outgoing connection can take one between
# our check and the daemon's bind.
free_port() {
    local p i lo=0 hi=0
    read -r lo hi </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || true
    for ((i = 0; i < 500; i++)); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 40001))
        [ "$i" -lt 400 ] && [ "$p" -ge "$lo" ] && [ "$p" -le "$hi" ] && continue
        grep -qx "$p" "$TEST_DIR/.ports" 2>/dev/null && continue
        if [ -z "$(ss -Htan "sport = :$p" 2>/dev/null)" ]; then
            echo "$p" >>"$TEST_DIR/.ports"
            echo "$p"
            return 0
        fi
    done
    fail "no free port found"
}

# log_count FILE ERE: how many lines of FILE match ERE.
log_count() { grep -cE -- "$2" "$1" 2>/dev/null || true; }

# wait_for_log FILE ERE [SECONDS] [COUNT] [PID]: waits until FILE has COUNT (default 1)
# lines matching ERE. Returns 1 on timeout, 2 if PID died first.
wait_for_log() {
    local file=$1 re=$2 limit=${3:-$(scale 10)} count=${4:-1} pid=${5:-} i
    for ((i = 0; i < limit * 20; i++)); do
        [ "$(log_count "$file" "$re")" -ge "$count" ] && return 0
        if [ -n "$pid" ] && ! alive "$pid"; then
            [ "$(log_count "$file" "$re")" -ge "$count" ] && return 0
            return 2
        fi
        sleep 0.05
    done
    return 1
}

assert_log() {  # FILE ERE MESSAGE [SECONDS]: FILE gets a matching line (waits a little)
    wait_for_log "$1" "$2" "${4:-$(scale 5)}" || fail "$3 (no line matching /$2/ in $1)"
}

assert_no_log() {  # FILE ERE MESSAGE
    if grep -qE -- "$2" "$1" 2>/dev/null; then
        fail "$3: $(grep -m 3 -E -- "$2" "$1")"
    fi
}

assert_eq() {  # ACTUAL EXPECTED MESSAGE
    [ "$1" = "$2" ] || fail "$3: got '$1', expected '$2'"
}

assert_contains() {  # HAYSTACK NEEDLE MESSAGE (fixed string)
    case $1 in
        *"$2"*) ;;
        *) fail "$3: '$2' not in: $1" ;;
    esac
}

assert_not_contains() {  # HAYSTACK NEEDLE MESSAGE (fixed string)
    case $1 in
        *"$2"*) fail "$3: '$2' found in: $1" ;;
        *) ;;
    esac
}

# spawn OUTFILE COMMAND...: runs COMMAND in the background (stdout+stderr to OUTFILE);
# sets SPAWN_PID.
spawn() {
    local out=$1
    shift
    "$@" >"$out" 2>&1 </dev/null &
    SPAWN_PID=$!
    PIDS+=("$SPAWN_PID")
}

# spawn_fed NAME COMMAND: runs the shell COMMAND in the background (as spawn, output in
# $TEST_DIR/NAME.out) with its stdin on the fifo $TEST_DIR/NAME.in, whose write end
# this shell holds as FED_FD: what the test writes there COMMAND reads, and closing it
# is COMMAND's end of input. Sets SPAWN_PID and FED_FD.
spawn_fed() {
    local fifo="$TEST_DIR/$1.in"
    mkfifo "$fifo"
    spawn "$TEST_DIR/$1.out" bash -c "exec <'$fifo'; $2"
    exec {FED_FD}>"$fifo"
}

# start_echo ADDR OUTFILE: echo_server -v on ADDR; sets ECHO_PID once it listens.
start_echo() {
    spawn "$2" "$TOOLS/echo_server" -v "$1"
    ECHO_PID=$SPAWN_PID
    wait_for_log "$2" '^listening$' "$(scale 5)" 1 "$ECHO_PID" || fail "echo_server on $1 did not start: $(cat "$2")"
}

# start_tinyproxy NAME PORT [DIRECTIVE...]: tinyproxy in the foreground on 127.0.0.1:PORT
# with its own config (the DIRECTIVEs added, e.g. "ConnectPort 8443"), serving
# 127.0.0.1 only, its log (stdout in the foreground) in $TEST_DIR/tinyproxy-NAME.log.
# Never the system's instance or config. TINYPROXY_NETNS, when set, is the network
# namespace it runs in and TINYPROXY_LISTEN the address it listens on there
# (network_lib.sh's net_tinyproxy).
start_tinyproxy() {
    local name=$1 port=$2 d
    local -a in=()
    [ -z "${TINYPROXY_NETNS:-}" ] || in=(ip netns exec "$TINYPROXY_NETNS")
    shift 2
    {
        echo "Port $port"
        echo "Listen ${TINYPROXY_LISTEN:-127.0.0.1}"
        echo "Timeout 10"
        echo "MaxClients 16"
        echo "LogLevel Info"
        echo "Allow 127.0.0.1"
        echo "DisableViaHeader Yes"
        for d in "$@"; do echo "$d"; done
    } >"$TEST_DIR/tinyproxy-$name.conf"
    spawn "$TEST_DIR/tinyproxy-$name.log" "${in[@]}" tinyproxy -d -c "$TEST_DIR/tinyproxy-$name.conf"
    SS_NETNS=${TINYPROXY_NETNS:-} wait_listening "$port" || fail "tinyproxy $name did not listen: $(cat "$TEST_DIR/tinyproxy-$name.log")"
}

# start_notify_capture SOCKET OUTFILE: notify_capture on the datagram socket SOCKET
# (a NOTIFY_SOCKET as systemd's), one line per datagram in OUTFILE, once it listens.
start_notify_capture() {
    spawn "$2" "$TOOLS/notify_capture" "$1"
    wait_for_log "$2" '^listening$' 5 1 "$SPAWN_PID" || fail "notify_capture did not start: $(cat "$2")"
}

# ini_section NAME ["KEY = VALUE"]...: the section [NAME] with one line per argument,
# in order, then a blank line. A KEY given again replaces its earlier line in place
# (callers override the defaults of the helpers below that way), and "KEY =" with no
# value drops it.
ini_section() {
    local name=$1 line key value i
    local -a keys=() values=()
    shift
    for line in "$@"; do
        [[ $line == *=* ]] || fail "ini_section [$name]: '$line' is not KEY = VALUE"
        key=${line%%=*}
        key=${key%"${key##*[![:space:]]}"}
        key=${key#"${key%%[![:space:]]*}"}
        value=${line#*=}
        value=${value#"${value%%[![:space:]]*}"}
        for ((i = 0; i < ${#keys[@]}; i++)); do
            if [ "${keys[i]}" = "$key" ]; then
                break
            fi
        done
        keys[i]=$key
        values[i]=$value
    done
    echo "[$name]"
    for ((i = 0; i < ${#keys[@]}; i++)); do
        if [ -n "${values[i]}" ]; then
            echo "${keys[i]} = ${values[i]}"
        fi
    done
    echo
}

# global_section ["KEY = VALUE"]...: the [global] section every test config starts
# with (state and runtime dirs in TEST_DIR, 2 workers, shutdown_timeout 5), the
# arguments added or overriding as in ini_section.
global_section() {
    mkdir -p "$TEST_DIR/state" "$TEST_DIR/run"
    ini_section global "log_level = info" "state_dir = $TEST_DIR/state" "runtime_dir = $TEST_DIR/run" \
        "workers = 2" "shutdown_timeout = 5" "$@"
}

# loopback PORT|ADDR: a bare port is 127.0.0.1:PORT; any other address stays as it is.
loopback() {
    case $1 in
        '' | *[!0-9]*) echo "$1" ;;
        *) echo "127.0.0.1:$1" ;;
    esac
}

# server_tunnel NAME LISTEN TARGET ["KEY = VALUE"]...: a server tunnel section
# presenting server.pem and asking for a client certificate from the suite's CA;
# LISTEN and TARGET are ports on 127.0.0.1 or addresses; the rest as in ini_section.
server_tunnel() {
    local name=$1 listen target
    listen=$(loopback "$2")
    target=$(loopback "$3")
    shift 3
    ini_section "$name" "mode = server" "listen = $listen" "target = $target" \
        "cert = $PKI/server.pem" "key = $PKI/server.key" "ca = $PKI/ca.pem" "$@"
}

# client_tunnel NAME LISTEN TARGET ["KEY = VALUE"]...: a client tunnel section with
# alice's certificate, verifying the server against the suite's CA as localhost;
# LISTEN and TARGET as in server_tunnel, the rest as in ini_section.
client_tunnel() {
    local name=$1 listen target
    listen=$(loopback "$2")
    target=$(loopback "$3")
    shift 3
    ini_section "$name" "mode = client" "listen = $listen" "target = $target" "server_name = localhost" \
        "cert = $PKI/alice.pem" "key = $PKI/alice.key" "ca = $PKI/ca.pem" "$@"
}

# wait_listening PORT...: waits up to 5 s until each PORT has a TCP listener (in the
# network namespace SS_NETNS when set); returns 1 if one still has none then.
wait_listening() {
    local port i missing
    for ((i = 0; i < 100; i++)); do
        missing=
        for port in "$@"; do
            [ -n "$(ss ${SS_NETNS:+-N "$SS_NETNS"} -Hltn "sport = :$port")" ] || missing=$port
        done
        [ -z "$missing" ] && return 0
        sleep 0.05
    done
    return 1
}

# start_ktlstund [--ready FILE ERE] CONFIG LOGFILE [ARGS...]: runs ktlstund -c CONFIG -f
# in the background (output appended to LOGFILE) and waits until it is ready: its
# "ready" line in LOGFILE or, with --ready, a line matching ERE in FILE. Sets
# KTLSTUND_PID. $KTLSTUND may name a wrapper that execs the daemon.
start_ktlstund() {
    local ready_file= ready_re='ktlstund\[[0-9]+\]: notice: ready \([0-9]+ tunnels?, [0-9]+ workers?\)'
    if [ "$1" = --ready ]; then
        ready_file=$2 ready_re=$3
        shift 3
    fi
    local conf=$1 log=$2
    shift 2
    "$KTLSTUND" -c "$conf" -f "$@" >>"$log" 2>&1 </dev/null &
    KTLSTUND_PID=$!
    PIDS+=("$KTLSTUND_PID")
    DAEMON_LOGS+=("$log")
    local rc=0
    wait_for_log "${ready_file:-$log}" "$ready_re" "$(scale 10)" 1 "$KTLSTUND_PID" || rc=$?
    case $rc in
        0) ;;
        2) fail "ktlstund -c $conf exited before it was ready" ;;
        *) fail "ktlstund -c $conf not ready after $(scale 10) s" ;;
    esac
}

# clock_shift_daemon: prints the path of a wrapper of $KTLSTUND (for start_ktlstund, as
# KTLSTUND=$(clock_shift_daemon) start_ktlstund ...) that preloads clock_shift.so
# (tests/tools/preload/clock_shift.c): the daemon's time() then runs ahead by what
# clock_shift last set, so a test need not wait for its wall clock to move.
clock_shift_daemon() {
    local preload="$TOOLS/clock_shift.so" asan wrapper="$TEST_DIR/ktlstund-clock-shift"
    # An ASan daemon needs its runtime first in the preload list.
    asan=$(ldd "$KTLSTUND" | awk '$1 ~ /^libasan\.so/ { print $3 }')
    [ -z "$asan" ] || preload="$asan $preload"
    cat >"$wrapper" <<EOF
#!/bin/sh
LD_PRELOAD="$preload" KTLSTUN_TEST_CLOCK_SHIFT="$TEST_DIR/clock_shift" exec "$KTLSTUND" "\$@"
EOF
    chmod +x "$wrapper"
    echo "$wrapper"
}

# clock_shift SECONDS: from now on, a daemon started through clock_shift_daemon reads
# a wall clock SECONDS ahead (renamed into place: it never reads half a number).
clock_shift() {
    echo "$1" >"$TEST_DIR/clock_shift.new"
    mv -f "$TEST_DIR/clock_shift.new" "$TEST_DIR/clock_shift"
}

# workers_of CONFIG: the pids of the workers `ktlstun status` lists, sorted.
workers_of() { "$KTLSTUN" status --json -c "$1" | jq -r '.workers[].pid' | sort; }

# wait_worker_replaced CONFIG PID COUNT: waits up to 5 s until the daemon lists COUNT
# workers again, PID not among them (the caller asserts what it then has).
wait_worker_replaced() {
    local i
    for ((i = 0; i < 50; i++)); do
        [ "$(workers_of "$1" | wc -l)" = "$3" ] && ! workers_of "$1" | grep -qx "$2" && return 0
        sleep 0.1
    done
    return 1
}

# stop_ktlstund PID [SECONDS]: SIGTERM, then asserts it exits 0 within SECONDS.
stop_ktlstund() {
    local pid=$1 limit=${2:-$(scale 10)} rc=0
    kill -TERM "$pid" 2>/dev/null || fail "ktlstund $pid is not running"
    wait_exit "$pid" "$limit" || rc=$?
    [ "$rc" != 255 ] || fail "ktlstund $pid did not exit within $limit s of SIGTERM"
    [ "$rc" = 0 ] || fail "ktlstund $pid exited $rc after SIGTERM (expected 0)"
}

# reload PID LOGFILE: SIGHUP and wait for the daemon to log the outcome; prints
# "reloaded" or "refused".
reload() {
    local pid=$1 log=$2 re='notice: reloaded configuration|error: reload refused' before
    before=$(log_count "$log" "$re")
    kill -HUP "$pid"
    wait_for_log "$log" "$re" "$(scale 10)" $((before + 1)) "$pid" || fail "no reload outcome logged after SIGHUP"
    if [ "$(grep -E -- "$re" "$log" | tail -n 1 | grep -c 'reload refused')" = 1 ]; then
        echo refused
    else
        echo reloaded
    fi
}

# s_client arguments presenting identity NAME (leaf + chain) and verifying the server
# as a strict client would: trusted root only, hostname localhost.
client_args() {
    CLIENT_ARGS=(-CAfile "$PKI/ca.pem" -verify_return_error -verify_hostname localhost)
    if [ -n "${1:-}" ]; then
        CLIENT_ARGS+=(-cert "$PKI/$1.pem" -cert_chain "$PKI/$1.pem" -key "$PKI/$1.key")
    fi
}

# tls_echo ADDR TOKEN OUTFILE [s_client args...]: connects with openssl s_client,
# sends TOKEN and a newline, and returns 0 when TOKEN comes back (then closes, which
# sends close_notify), 1 when the connection ends or 5 s pass without it.
tls_echo() {
    local addr=$1 token=$2 out=$3 fifo fd pid i found=1
    shift 3
    local conn=(-connect "$addr")
    [[ $addr == unix:* ]] && conn=(-unix "${addr#unix:}")
    fifo="$TEST_DIR/.fifo.$RANDOM$RANDOM"
    mkfifo "$fifo"
    openssl s_client "${conn[@]}" -quiet -no_ign_eof "$@" <"$fifo" >"$out" 2>"$out.err" &
    pid=$!
    PIDS+=("$pid")
    exec {fd}>"$fifo"
    printf '%s\n' "$token" >&"$fd" 2>/dev/null || true
    for ((i = 0; i < 100 * SLOW; i++)); do
        if grep -qF -- "$token" "$out"; then
            found=0
            break
        fi
        alive "$pid" || break
        sleep 0.05
    done
    grep -qF -- "$token" "$out" && found=0
    exec {fd}>&-
    wait_exit "$pid" "$(scale 5)" || true
    rm -f "$fifo"
    return "$found"
}

# plain_echo ADDR TOKEN: through a plain (client-tunnel) listener; returns 0 when the
# echo of TOKEN comes back and the connection then ends with EOF (half-close both ways).
plain_echo() {
    local out
    out=$(printf '%s\n' "$2" | timeout "$(scale 10)" socat -t "$(scale 10)" - "$(socat_addr "$1")" 2>&1) || return 1
    [ "$out" = "$2" ]
}

# socat_addr ADDR: 127.0.0.1:P → TCP:127.0.0.1:P, unix:/p → UNIX-CONNECT:/p
socat_addr() {
    case $1 in
        unix:*) echo "UNIX-CONNECT:${1#unix:}" ;;
        *) echo "TCP:$1" ;;
    esac
}

# fingerprint of the first certificate in FILE (lowercase hex, no colons)
cert_sha256() {
    openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//; s/://g' | tr 'A-F' 'a-f'
}

# served_cert ADDR OUTFILE: the leaf certificate ADDR presents (PEM) to alice.
served_cert() {
    local out=$2
    client_args alice
    timeout "$(scale 10)" openssl s_client -connect "$1" "${CLIENT_ARGS[@]}" -showcerts </dev/null >"$out.raw" 2>"$out.err" || true
    sed -n '/-----BEGIN CERTIFICATE-----/,/-----END CERTIFICATE-----/p;/-----END CERTIFICATE-----/q' "$out.raw" >"$out"
    [ -s "$out" ]
}

# audit_lines LOGFILE TUNNEL: the audit lines of TUNNEL
audit_lines() { grep -E "info: audit tunnel=$2 " "$1" || true; }

# audit_field LINE KEY: value of KEY=... (quoted or not) in an audit/refusal line
audit_field() {
    local line=$1 key=$2
    if [[ $line =~ (^|[[:space:]])$key=\"([^\"]*)\" ]]; then
        echo "${BASH_REMATCH[2]}"
    elif [[ $line =~ (^|[[:space:]])$key=([^[:space:]]*) ]]; then
        echo "${BASH_REMATCH[2]}"
    else
        return 1
    fi
}

# kernel_has_ktls: the tls ULP is available (or its module can be loaded).
kernel_has_ktls() {
    grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null && return 0
    modinfo tls >/dev/null 2>&1
}

# start_ktlstund_with_journal CONFIG: runs ktlstund -c CONFIG as systemd would with
# stderr on the journal, journald being played by notify_capture on
# /run/systemd/journal/socket inside a private mount namespace. Each datagram lands as
# one line of $TEST_DIR/journal.out (newlines as '|'); what reached plain stderr is in
# $TEST_DIR/stderr.log. Returns once the daemon's "ready" is in the journal; end it
# with stop_ktlstund_with_journal.
start_ktlstund_with_journal() {
    local conf=$1
    cat >"$TEST_DIR/in-namespace.sh" <<EOF
set -eu
mkdir -p /run/systemd/journal
mount -t tmpfs tmpfs /run/systemd/journal
"$TOOLS/notify_capture" /run/systemd/journal/socket >"$TEST_DIR/journal.out" &
capture=\$!
for i in \$(seq 50); do grep -q listening "$TEST_DIR/journal.out" && break; sleep 0.1; done
: >"$TEST_DIR/stderr.log"
exec 2>>"$TEST_DIR/stderr.log"
export JOURNAL_STREAM=\$(stat -c '%d:%i' "$TEST_DIR/stderr.log")
"$KTLSTUND" -c "$conf" -f &
daemon=\$!
for i in \$(seq 100); do grep -q 'MESSAGE=ready' "$TEST_DIR/journal.out" && break; sleep 0.1; done
echo started >"$TEST_DIR/started"
while [ ! -e "$TEST_DIR/done" ]; do sleep 0.1; done
kill -TERM \$daemon
wait \$daemon || true
kill \$capture
EOF
    spawn "$TEST_DIR/namespace.out" unshare -m bash "$TEST_DIR/in-namespace.sh"
    JOURNAL_NS_PID=$SPAWN_PID
    wait_for_log "$TEST_DIR/started" started "$(scale 10)" 1 "$JOURNAL_NS_PID" ||
        fail "daemon did not start: $(cat "$TEST_DIR/namespace.out")"
}

stop_ktlstund_with_journal() {
    touch "$TEST_DIR/done"
    wait_exit "$JOURNAL_NS_PID" "$(scale 15)" || true
}

# hold NAME ADDR CERT KEY: an idle TLS 1.3 connection to ADDR (IPv4:PORT, a server
# tunnel in front of an echo server) presenting CERT and KEY, kept open by tls_misbehave
# once its probe came back; what it saw in $TEST_DIR/NAME.hold. Sets HOLD_PID.
hold() {
    local out="$TEST_DIR/$1.hold"
    spawn "$out" "$TOOLS/tls_misbehave" "$2" hold --cert "$3" --key "$4" --ca "$PKI/ca.pem" \
        --timeout "$(scale 120)"
    HOLD_PID=$SPAWN_PID
    wait_for_log "$out" '^action: holding' "$(scale 10)" 1 "$HOLD_PID" ||
        fail "held connection $1 did not start relaying: $(cat "$out")"
}

# hold_outcome NAME: how the server ended held connection NAME (tls_misbehave's
# "close_notify", "eof", "reset", "alert DESCRIPTION"), empty while it is open.
hold_outcome() { sed -n 's/^outcome: //p' "$TEST_DIR/$1.hold"; }

# wait_hold_ended NAME SECONDS MESSAGE: held connection NAME ends within SECONDS, and not
# with close_notify (an end the server imposes is not a clean end of the stream).
wait_hold_ended() {
    wait_for_log "$TEST_DIR/$1.hold" '^outcome: ' "$2" ||
        fail "$3: connection $1 still open after $2 s"
    [ "$(hold_outcome "$1")" != close_notify ] || fail "$3: connection $1 ended with close_notify, as if cleanly"
}

# assert_hold_open NAME MESSAGE: held connection NAME is still open.
assert_hold_open() {
    [ -z "$(hold_outcome "$1")" ] || fail "$2: connection $1 ended ($(hold_outcome "$1"))"
}

# short_lived_cert DIR NAME CN PURPOSE SECONDS: a certificate NAME (DIR/NAME.pem,
# DIR/NAME.key; PURPOSE serverAuth or clientAuth) that ends SECONDS from now, signed
# by a root of its own (DIR/root.pem). `openssl ca` because OpenSSL 3.0's `x509 -req`
# cannot set an end date. Sets SHORT_LIVED_ENDS_AT (epoch seconds).
short_lived_cert() {
    local ca=$1 name=$2 cn=$3 purpose=$4 seconds=$5
    mkdir -p "$ca/new"
    : >"$ca/index.txt"
    echo 1000 >"$ca/serial"
    cat >"$ca/ca.cnf" <<CNF
[ca]
default_ca = this_ca
[this_ca]
database = $ca/index.txt
new_certs_dir = $ca/new
serial = $ca/serial
certificate = $ca/root.pem
private_key = $ca/root.key
default_md = sha256
policy = policy_any
[policy_any]
commonName = supplied
[req]
distinguished_name = dn
prompt = no
[dn]
CN = unused
[root]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = $purpose
subjectAltName = DNS:localhost, IP:127.0.0.1
CNF
    local key
    for key in root "$name"; do
        openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$ca/$key.key" 2>/dev/null
    done
    openssl req -config "$ca/ca.cnf" -x509 -new -key "$ca/root.key" -subj "/CN=$name test root" \
        -days 2 -extensions root -out "$ca/root.pem"
    openssl req -config "$ca/ca.cnf" -new -key "$ca/$name.key" -subj "/CN=$cn" -out "$ca/$name.csr"
    SHORT_LIVED_ENDS_AT=$(($(date +%s) + seconds))
    openssl ca -batch -notext -config "$ca/ca.cnf" -extfile "$ca/ca.cnf" -extensions leaf \
        -in "$ca/$name.csr" -out "$ca/$name.pem" \
        -startdate "$(date -u -d '-1 hour' +%y%m%d%H%M%SZ)" \
        -enddate "$(date -u -d "@$SHORT_LIVED_ENDS_AT" +%y%m%d%H%M%SZ)" 2>"$ca/ca.err" \
        || fail "could not issue the short-lived certificate: $(cat "$ca/ca.err")"
}

# The configuration checks as both front ends run them (test_config_check.sh,
# test_network_config.sh).
# line_of FILE TEXT: the number of the first line of FILE that reads TEXT.
line_of() { grep -n -F -x -- "$2" "$1" | head -n 1 | cut -d: -f1; }
# esc TEXT: TEXT with the ERE special characters escaped.
esc() { sed 's/[][\.*^$/+?(){}|]/\\&/g' <<<"$1"; }
# at FILE LINE_TEXT SECTION KEY: the ERE for "FILE:LINE: [SECTION] KEY: " at the line
# that reads LINE_TEXT.
at() { echo "^$(esc "$1"):$(line_of "$1" "$2"): \\[$3\\] $4: "; }

# run_check TOOL FILE: runs `ktlstund -t -c FILE` (TOOL d) or `ktlstun check-config
# -c FILE` (TOOL c), as $AS (a user) when set; sets RC, OUT (stdout), ERR (stderr).
run_check() {
    local -a cmd=("$KTLSTUND" -t -c "$2")
    [ "$1" = c ] && cmd=("$KTLSTUN" check-config -c "$2")
    [ -n "${AS:-}" ] && cmd=(setpriv --reuid="$AS" --regid="$(id -g "$AS")" --clear-groups -- "${cmd[@]}")
    RC=0
    OUT=$("${cmd[@]}" 2>"$TEST_DIR/check.err") || RC=$?
    ERR=$(cat "$TEST_DIR/check.err")
}

# check_exit RC FILE "ERE"...: both front ends exit RC and print every ERE on stderr;
# with RC 0 they also say "is ok".
check_exit() {
    local want=$1 file=$2 tool re
    shift 2
    for tool in d c; do
        run_check "$tool" "$file"
        [ "$RC" = "$want" ] || fail "check ($tool) of $(basename "$file") exited $RC, expected $want (stderr: $ERR)"
        if [ "$want" = 0 ]; then
            assert_contains "$OUT" "configuration $file is ok" "check ($tool) of $(basename "$file")"
        fi
        for re in "$@"; do
            grep -qE -- "$re" <<<"$ERR" || fail "check ($tool) of $(basename "$file"): no line matching /$re/ in: $ERR"
        done
    done
}

# check_error FILE "ERE"...: both front ends exit 1 and print every ERE on stderr.
check_error() { check_exit 1 "$@"; }

# check_ok FILE ["ERE"]...: both front ends exit 0, say "is ok" and print every ERE
# (warnings) on stderr.
check_ok() { check_exit 0 "$@"; }
