# network_lib.sh — network namespaces for the tests of network (layer-3) tunnels
# (test_network_*.sh, second_factor/test_network_login.sh), sourced after lib.sh (or
# second_factor/lib.sh). Everything lives in namespaces the test makes, named with the
# test's pid, joined by veth pairs made inside them: the host's own interfaces,
# addresses and routes are never touched. At exit the processes the test started (and
# whatever of theirs still runs in its namespaces) end, then the namespaces go, which
# takes their devices with them.

[ "$(id -u)" = 0 ] || fail "needs root (network namespaces, TUN devices)"
ip netns list >/dev/null 2>&1 || fail "needs ip netns (iproute2)"
[ -c /dev/net/tun ] || fail "needs /dev/net/tun"

NET_NAMESPACES=()
NET_REAL_KTLSTUND=$KTLSTUND

# The counter of packets the hub dropped because their source was not the client's:
# the numbers in `ktlstun status --json` whose key matches this (case-insensitive),
# added up (each network connection has its own).
NET_DROPPED_SOURCE_KEYS='^dropped_source$'

# ns NAME: the namespace NAME of this test (unique to the run).
ns() { echo "ktn$$-$1"; }

# in_ns NAME COMMAND...: COMMAND in namespace NAME.
in_ns() {
    local name=$1
    shift
    ip netns exec "$(ns "$name")" "$@"
}

# net_stop: SIGTERM to what the test started, then SIGKILL to anything still running
# in its namespaces (the daemons' workers and helpers when a supervisor was killed),
# then the namespaces go. Run from the EXIT trap; idempotent.
net_stop() {
    local p name
    term_started
    for name in "${NET_NAMESPACES[@]}"; do
        for p in $(ip netns pids "$name" 2>/dev/null); do
            kill -KILL "$p" 2>/dev/null || true
        done
    done
    for name in "${NET_NAMESPACES[@]}"; do
        ip netns del "$name" 2>/dev/null || true
    done
    NET_NAMESPACES=()
}

# net_trap: installs the EXIT trap (namespaces removed, then lib.sh's cleanup with the
# test's status). EXTRA, when given, is a command run first (second_factor's users).
net_trap() {
    # shellcheck disable=SC2064  # EXTRA is expanded now, on purpose
    trap "net_rc=\$?; trap - ERR; net_stop; ${1:-:}; (exit \$net_rc); cleanup" EXIT
}

# net_ns NAME...: makes namespace NAME (lo up) for each NAME.
net_ns() {
    local name full
    for name in "$@"; do
        full=$(ns "$name")
        ip netns add "$full"
        NET_NAMESPACES+=("$full")
        ip -n "$full" link set lo up
        # No duplicate address detection: an IPv6 address is usable at once.
        in_ns "$name" sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
    done
}

# net_router NAME: namespace NAME forwards IPv4 and IPv6 and lets sources through
# that its routes would not send back the same way (the spoofing test needs them to
# reach the tunnel; the hub is what must drop them).
net_router() {
    in_ns "$1" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1 \
        net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0
}

# net_link NS1 IF1 ADDRS1 NS2 IF2 ADDRS2: a veth pair from IF1 in NS1 to IF2 in NS2,
# both up, with the comma-separated addresses ADDRS (with their lengths; may be empty).
net_link() {
    local a
    ip -n "$(ns "$1")" link add "$2" type veth peer name "$5" netns "$(ns "$4")"
    for a in ${3//,/ }; do
        ip -n "$(ns "$1")" addr add "$a" dev "$2"
    done
    for a in ${6//,/ }; do
        ip -n "$(ns "$4")" addr add "$a" dev "$5"
    done
    ip -n "$(ns "$1")" link set "$2" up
    ip -n "$(ns "$4")" link set "$5" up
}

# net_default_route NAME GW4 [GW6]: the default routes of namespace NAME.
net_default_route() {
    ip -n "$(ns "$1")" route add default via "$2"
    [ -z "${3:-}" ] || ip -n "$(ns "$1")" -6 route add default via "$3"
}

# net_global NAME ["KEY = VALUE"]...: global_section for a daemon NAME of several in
# this test, with state and runtime dirs of its own.
net_global() {
    mkdir -p "$TEST_DIR/$1/state" "$TEST_DIR/$1/run"
    global_section "state_dir = $TEST_DIR/$1/state" "runtime_dir = $TEST_DIR/$1/run" "${@:2}"
}

# net_wrapper NAME PROGRAM: prints the path of a script that execs PROGRAM in
# namespace NAME with its arguments (made once), so that the pid of what runs it is
# PROGRAM's.
net_wrapper() {
    local wrapper
    wrapper="$TEST_DIR/$(basename "$2")-in-$1"
    if [ ! -x "$wrapper" ]; then
        printf '#!/bin/sh\nexec ip netns exec %s %s "$@"\n' "$(ns "$1")" "$2" >"$wrapper"
        chmod +x "$wrapper"
    fi
    echo "$wrapper"
}

# net_start_ktlstund NAME CONFIG LOGFILE: start_ktlstund with the daemon in namespace
# NAME; sets KTLSTUND_PID (the daemon's).
net_start_ktlstund() {
    KTLSTUND=$(net_wrapper "$1" "$NET_REAL_KTLSTUND") start_ktlstund "$2" "$3"
}

# net_stop_ktlstunds PID...: stop_ktlstund for several daemons at once (SIGTERM to
# all, then each must exit 0 within 10 s, stretched for sanitizer builds).
net_stop_ktlstunds() {
    local p rc limit
    limit=$(scale 10)
    for p in "$@"; do
        kill -TERM "$p" 2>/dev/null || fail "ktlstund $p is not running"
    done
    for p in "$@"; do
        rc=0
        wait_exit "$p" "$limit" || rc=$?
        [ "$rc" != 255 ] || fail "ktlstund $p did not exit within $limit s of SIGTERM"
        [ "$rc" = 0 ] || fail "ktlstund $p exited $rc after SIGTERM (expected 0)"
    done
}

# net_wait_gone NAME SECONDS: waits until nothing runs in namespace NAME; 1 on timeout.
net_wait_gone() {
    local i
    for ((i = 0; i < $2 * 10; i++)); do
        [ -z "$(ip netns pids "$(ns "$1")" 2>/dev/null)" ] && return 0
        sleep 0.1
    done
    return 1
}

# net_ping NAME ADDR SECONDS: 0 once namespace NAME gets an answer from ADDR (IPv4 or
# IPv6), trying each second; 1 when SECONDS pass without one.
net_ping() {
    local name=$1 addr=$2 limit=$3 start
    start=$(date +%s)
    while :; do
        in_ns "$name" ping -n -q -c 1 -W 1 "$addr" >/dev/null 2>&1 && return 0
        [ $(($(date +%s) - start)) -lt "$limit" ] || return 1
        sleep 0.2
    done
}

# assert_ping NAME ADDR MESSAGE [SECONDS]: namespace NAME reaches ADDR (waits a little).
assert_ping() {
    net_ping "$1" "$2" "${4:-$(scale 5)}" ||
        fail "$3: no answer from $2 in namespace $1 ($(in_ns "$1" ip route get "$2" 2>&1 | head -n 1))"
}

# net_link_of NAME DEV: DEV's JSON (ip -j -d link) in namespace NAME, empty when absent.
net_link_of() { ip -n "$(ns "$1")" -j -d link show "$2" 2>/dev/null | jq -c '.[0] // empty' || true; }

# net_wait_link NAME DEV SECONDS: waits until DEV is in namespace NAME; 1 on timeout.
net_wait_link() {
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        [ -n "$(net_link_of "$1" "$2")" ] && return 0
        sleep 0.1
    done
    return 1
}

# net_wait_address NAME DEV TEXT SECONDS: waits until DEV in namespace NAME has an
# address containing TEXT (as net_addresses shows them); 1 on timeout.
net_wait_address() {
    local i
    for ((i = 0; i < $4 * 10; i++)); do
        [ -n "$(net_link_of "$1" "$2")" ] && [[ $(net_addresses "$1" "$2") == *"$3"* ]] && return 0
        sleep 0.1
    done
    return 1
}

# net_tun_devices NAME: the TUN devices in namespace NAME, sorted, one a line.
net_tun_devices() {
    ip -n "$(ns "$1")" -j -d link show | jq -r '.[] | select(.linkinfo.info_kind == "tun") | .ifname' | sort
}

# net_addresses NAME DEV: DEV's global addresses in namespace NAME, "ADDR/LEN" sorted,
# space-separated.
net_addresses() {
    ip -n "$(ns "$1")" -j addr show dev "$2" |
        jq -r '.[0].addr_info[] | select(.scope == "global") | "\(.local)/\(.prefixlen)"' | sort | tr '\n' ' '
}

# net_routes NAME DEV -4|-6: destinations of the routes via DEV in namespace NAME,
# sorted, space-separated (the kernel's own prefix routes of its addresses left out).
net_routes() {
    ip -n "$(ns "$1")" -j "$3" route show dev "$2" | jq -r '.[] | select(.protocol != "kernel") | .dst' |
        sort | tr '\n' ' '
}

# net_route_dev NAME ADDR: the device namespace NAME sends ADDR to.
net_route_dev() { ip -n "$(ns "$1")" -j route get "$2" | jq -r '.[0].dev'; }

# net_dropped_source CONFIG: the sum of the counters matching NET_DROPPED_SOURCE_KEYS
# in the status of the daemon of CONFIG (0 when there is none).
net_dropped_source() {
    "$KTLSTUN" status --json -c "$1" | jq --arg re "$NET_DROPPED_SOURCE_KEYS" \
        '[.. | objects | to_entries[] | select(.key | test($re; "i")) | .value | numbers] | add // 0'
}

# net_wait_listening NAME u|t PORT OUT: waits until something in namespace NAME listens
# on UDP (u) or TCP (t) PORT; fails with OUT (the receiver's output) after 5 s.
net_wait_listening() {
    local i what=UDP
    [ "$2" = t ] && what=TCP
    for ((i = 0; i < 100; i++)); do
        in_ns "$1" ss "-Hln$2" "sport = :$3" | grep -q . && return 0
        sleep 0.05
    done
    fail "no $what receiver on port $3 in namespace $1: $(cat "$4")"
}

# net_udp_listen NAME PORT FILE: a UDP receiver in namespace NAME appending what
# arrives on PORT (IPv4 and IPv6) to FILE; waits until it listens.
net_udp_listen() {
    spawn "$3.out" ip netns exec "$(ns "$1")" socat -u "UDP6-RECV:$2,ipv6only=0" "OPEN:$3,creat,append"
    net_wait_listening "$1" u "$2" "$3.out"
}

# net_tcp_listen NAME PORT FILE: a TCP receiver in namespace NAME writing one
# connection's bytes (IPv4 or IPv6) on PORT to FILE; sets NET_LISTEN_PID once it listens.
net_tcp_listen() {
    spawn "$3.out" ip netns exec "$(ns "$1")" socat -u "TCP6-LISTEN:$2,ipv6only=0,reuseaddr" "CREATE:$3"
    NET_LISTEN_PID=$SPAWN_PID
    net_wait_listening "$1" t "$2" "$3.out"
}

# net_wait_file FILE TEXT SECONDS: waits until FILE contains TEXT; 1 on timeout.
net_wait_file() {
    local i
    for ((i = 0; i < $3 * 20; i++)); do
        grep -qF -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# net_client_certs DIR NAME...: a CA of this test's own (DIR/clients-ca.pem) and for
# each NAME a client certificate DIR/NAME.pem with CN=NAME (one key, DIR/client.key).
net_client_certs() {
    local dir=$1 name
    shift
    mkdir -p "$dir"
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/clients-ca.key" 2>/dev/null
    openssl req -x509 -new -key "$dir/clients-ca.key" -out "$dir/clients-ca.pem" -days 2 \
        -subj "/CN=ktlstun network test clients" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$dir/client.key" 2>/dev/null
    for name in "$@"; do
        openssl req -new -key "$dir/client.key" -subj "/CN=$name" -x509 -days 2 \
            -CA "$dir/clients-ca.pem" -CAkey "$dir/clients-ca.key" \
            -addext basicConstraints=critical,CA:FALSE -addext keyUsage=critical,digitalSignature \
            -addext extendedKeyUsage=clientAuth -out "$dir/$name.pem" 2>/dev/null ||
            fail "cannot make a certificate for $name"
    done
}

# net_tinyproxy NAME PROXY ADDR PORT [DIRECTIVE...]: start_tinyproxy PROXY in namespace
# NAME, listening on ADDR:PORT (serving what its "Allow" DIRECTIVEs name).
net_tinyproxy() {
    local where=$1 name=$2 addr=$3 port=$4
    shift 4
    TINYPROXY_NETNS=$(ns "$where") TINYPROXY_LISTEN=$addr start_tinyproxy "$name" "$port" "$@"
}
