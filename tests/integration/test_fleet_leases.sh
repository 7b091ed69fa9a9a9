#!/usr/bin/env bash
# Two network hubs with one pool lease its addresses through the shared state store:
# no address is given twice across the fleet, and an identity gets its address back on
# whichever hub it reaches. Each hub and each client gateway in a namespace of its own:
#
#   ha (hub A, gateway_name hub-a)  -- 198.18.1.0/30 .. 198.18.1.16/30 --  n1 .. n5
#   hb (hub B, gateway_name hub-b)  -- 198.18.2.0/30 .. 198.18.2.16/30 --  n1 .. n5
#
# Both hubs have the section [hub] with the pool 10.8.0.1/24. Each client gateway n1..n5
# has ten client sections (its own TUN device each, ktlcNN), c01..c50 with certificates
# CN=c01..c50: an odd number connects to hub A, an even one to hub B.
#   1. Without a store, the hubs lease on their own: n1's ten clients, five on each hub,
#      get addresses that clash (each hub hands out its pool from the same start).
#   2. With state_store set on both hubs (PostgreSQL reached over its unix socket, since
#      a namespace cannot reach the root namespace's 127.0.0.1): all 50 clients get an
#      address from the pool, never the hub's, none twice.
#   3. n1 stops and comes back with its clients of hub A pointed at hub B: each of its
#      ten gets the address it had, and still none is given twice.
#   4. The store stops: n2's clients, restarted, are refused by both hubs with the
#      reason, while clients already connected still reach the hub through their
#      tunnels; the store back, n2's clients get their earlier addresses.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"
source "$here/network_lib.sh"
source "$here/pg_lib.sh"
# The daemons and namespaces go first, then the PostgreSQL they used.
net_trap pg_cleanup

clients=()
for ((k = 1; k <= 50; k++)); do
    clients+=("$(printf 'c%02d' "$k")")
done
# The certificates (one CA, one key, fifty openssl runs) are made while the namespaces
# and links are.
spawn "$TEST_DIR/certs.out" net_client_certs "$TEST_DIR/certs" "${clients[@]}"
certs_pid=$SPAWN_PID

groups=(n1 n2 n3 n4 n5)
net_ns ha hb "${groups[@]}"
for ((g = 1; g <= ${#groups[@]}; g++)); do
    base=$((4 * (g - 1)))
    net_link ha "n$g" "198.18.1.$((base + 1))/30" "n$g" ua "198.18.1.$((base + 2))/30"
    net_link hb "n$g" "198.18.2.$((base + 1))/30" "n$g" ub "198.18.2.$((base + 2))/30"
done
wait_exit "$certs_pid" "$(scale 60)" || fail "the client certificates were not made: $(cat "$TEST_DIR/certs.out")"

# client_group[C]: the namespace of client C (c01..c10 in n1, c11..c20 in n2, ...).
# client_hub[C]: the hub client C connects to at first: a for an odd number, b for an
# even. (Arrays, not functions: a subshell per client and use took seconds.)
declare -A client_group client_hub
for c in "${clients[@]}"; do
    k=$((10#${c#c}))
    client_group[$c]=n$(((k - 1) / 10 + 1))
    if ((k % 2)); then client_hub[$c]=a; else client_hub[$c]=b; fi
done
# The address each hub's namespace has towards group G's namespace.
hub_target() { echo "198.18.$([ "$1" = a ] && echo 1 || echo 2).$((4 * (${2#n} - 1) + 1)):8443"; }

# hub_conf NAME GATEWAY_NAME ["KEY = VALUE"]...: $TEST_DIR/NAME.ini, a hub: [hub] on
# port 8443 with the pool 10.8.0.1/24, for certificates of the test's client CA.
hub_conf() {
    local name=$1 gw=$2
    shift 2
    {
        net_global "$name" "workers = 1" "gateway_name = $gw" "$@"
        server_tunnel hub '0.0.0.0:8443' "" "type = network" "ca = $TEST_DIR/certs/clients-ca.pem" \
            "address = 10.8.0.1/24"
    } >"$TEST_DIR/$name.ini"
}

# start_group G [HUB]: client gateway G (ten sections, one per client of G) started in
# its namespace; each section to its own client_hub, or all to HUB when given. Sets pid[G].
declare -A pid
start_group() {
    local g=$1 to=${2:-} c k first
    first=$((10 * (${g#n} - 1) + 1))
    {
        net_global "$g" "workers = 1"
        for ((k = first; k < first + 10; k++)); do
            printf -v c 'c%02d' "$k"
            client_tunnel "$c" "" "$(hub_target "${to:-${client_hub[$c]}}" "$g")" "type = network" \
                "reconnect_max = 2s" "cert = $TEST_DIR/certs/$c.pem" "key = $TEST_DIR/certs/client.key"
        done
    } >"$TEST_DIR/$g.ini"
    net_start_ktlstund "$g" "$TEST_DIR/$g.ini" "$TEST_DIR/$g.log"
    pid[$g]=$KTLSTUND_PID
}

# group_addresses G: "DEVICE ADDRESS" for each IPv4 address in 10.8.0.0/24 on a client
# device (ktlc*) in namespace G, one a line (one `ip` for the whole namespace: fifty
# clients polled one by one would take longer than the rest of the test).
group_addresses() {
    ip -n "$(ns "$1")" -j -4 addr show | jq -r '.[] | select(.ifname | startswith("ktlc")) |
        .ifname as $dev | .addr_info[] | select(.local | startswith("10.8.0.")) | "\($dev) \(.local)"'
}

# collect C...: waits until each client C's device (ktlC) has an address in the pool's
# network (one, IPv4), and sets addr[C] to it (without its length). The addresses are
# parsed here in the shell: a grep per client and poll took seconds for fifty.
declare -A addr
collect() {
    local c g i dev ip missing
    declare -A want=() got=() count=()
    for c in "$@"; do
        g=${client_group[$c]}
        want[$g]+=" $c"
    done
    for g in "${!want[@]}"; do
        for ((i = 0; i < $(scale 15) * 10; i++)); do
            got=() count=()
            while read -r dev ip; do
                [ -n "$dev" ] || continue
                got[$dev]=$ip
                count[$dev]=$((${count[$dev]:-0} + 1))
            done <<<"$(group_addresses "$g")"
            missing=
            for c in ${want[$g]}; do
                [ -n "${got[ktl$c]:-}" ] || missing+=" $c"
            done
            [ -z "$missing" ] && break
            sleep 0.1
        done
        [ -z "$missing" ] ||
            fail "in $g,$missing got no address in 10.8.0.0/24 within $(scale 15) s (devices in $g: $(net_tun_devices "$g" | tr '\n' ' '))"
        for c in ${want[$g]}; do
            [ "${count[ktl$c]}" = 1 ] || fail "$c has more than one address in 10.8.0.0/24: $(net_addresses "$g" "ktl$c")"
            addr[$c]=${got[ktl$c]}
        done
    done
}

# duplicates C...: the addresses that two or more of the clients C have, with who has
# them ("10.8.0.2: c01 c02"), one a line.
duplicates() {
    local c
    for c in "$@"; do
        echo "${addr[$c]} $c"
    done | sort -t' ' -k1,1V -k2,2 | awk '
        $1 == last { who = who " " $2; n++; next }
        { if (n > 1) print last ": " who; last = $1; who = $2; n = 1 }
        END { if (n > 1) print last ": " who }'
}

# in_pool_not_hub C...: each client's address is a client address of 10.8.0.1/24.
in_pool_not_hub() {
    local c last
    for c in "$@"; do
        last=${addr[$c]##*.}
        if [[ ${addr[$c]} != 10.8.0.* ]] || [ "$last" -lt 2 ] || [ "$last" -gt 254 ]; then
            fail "$c got ${addr[$c]}: the hub's address, or not a client address of 10.8.0.1/24"
        fi
    done
}

# hub_leases CONFIG: the hub's connections of [hub], "SUBJECT ADDRESS" sorted, one a line.
hub_leases() {
    "$KTLSTUN" status --json -c "$1" |
        jq -r '.connections[] | select(.tunnel == "hub") | "\(.subject) \(.address | split("/")[0])"' | sort
}

note "1. no store: two hubs, n1's ten clients (five on each): the hubs lease the same addresses"
hub_conf ha-alone hub-a
hub_conf hb-alone hub-b
net_start_ktlstund ha "$TEST_DIR/ha-alone.ini" "$TEST_DIR/ha-alone.log"
pid_a=$KTLSTUND_PID
net_start_ktlstund hb "$TEST_DIR/hb-alone.ini" "$TEST_DIR/hb-alone.log"
pid_b=$KTLSTUND_PID
start_group n1
# The PostgreSQL of the second part is made while n1's clients reach the hubs.
pg_start_primary main
# The store process runs as pam_user: ktlstun-pam where it exists, else the daemon's
# own user (root here) without capabilities.
store_user=root
if id ktlstun-pam >/dev/null 2>&1; then
    store_user=ktlstun-pam
fi
pg_allow_local main "$store_user"
collect "${clients[@]:0:10}"
clash=$(duplicates "${clients[@]:0:10}")
[ -n "$clash" ] || fail "without a store, the two hubs gave n1's ten clients ten different addresses: the test cannot tell a shared pool from two ($(for c in "${clients[@]:0:10}"; do printf '%s=%s ' "$c" "${addr[$c]}"; done))"
note "without a store, addresses given twice: $(tr '\n' ';' <<<"$clash")"
net_stop_ktlstunds "${pid[n1]}" "$pid_a" "$pid_b"
addr=()

note "2. state_store on both hubs: PostgreSQL over its unix socket"
store="host=$(pg_var SOCKET_DIR main) port=$(pg_var PORT main) dbname=ktlstun user=ktlstun connect_timeout=2"
hub_conf ha hub-a "state_store = $store"
hub_conf hb hub-b "state_store = $store"
net_start_ktlstund ha "$TEST_DIR/ha.ini" "$TEST_DIR/ha.log"
pid_a=$KTLSTUND_PID
net_start_ktlstund hb "$TEST_DIR/hb.ini" "$TEST_DIR/hb.log"
pid_b=$KTLSTUND_PID
sock_re=$(esc "$(pg_var SOCKET_DIR main):$(pg_var PORT main)")
assert_log "$TEST_DIR/ha.log" "state store: connected to $sock_re as gateway hub-a" "hub A reaches the store" "$(scale 10)"
assert_log "$TEST_DIR/hb.log" "state store: connected to $sock_re as gateway hub-b" "hub B reaches the store" "$(scale 10)"

note "fifty clients, 25 on each hub"
for g in "${groups[@]}"; do
    start_group "$g"
done
collect "${clients[@]}"
in_pool_not_hub "${clients[@]}"
clash=$(duplicates "${clients[@]}")
[ -z "$clash" ] || fail "with the store, addresses given twice across the two hubs: $(tr '\n' ';' <<<"$clash")"
# What each hub says it leased is what its clients have.
expect_a=$(for c in "${clients[@]}"; do [ "${client_hub[$c]}" = b ] || echo "CN=$c ${addr[$c]}"; done | sort)
expect_b=$(for c in "${clients[@]}"; do [ "${client_hub[$c]}" = a ] || echo "CN=$c ${addr[$c]}"; done | sort)
assert_eq "$(hub_leases "$TEST_DIR/ha.ini")" "$expect_a" "hub A's connections and their addresses"
assert_eq "$(hub_leases "$TEST_DIR/hb.ini")" "$expect_b" "hub B's connections and their addresses"
out=$("$KTLSTUN" db status -c "$TEST_DIR/ha.ini" 2>&1) || fail "ktlstun db status: $out"
assert_contains "$out" "network tunnel hub: 50 addresses held, 0 kept for clients gone, 1 never leased (hubs' and fixed)" \
    "what ktlstun db status says of the hubs' leases"
declare -A before
for c in "${clients[@]}"; do
    before[$c]=${addr[$c]}
done
note "50 addresses, none twice: $(printf '%s\n' "${addr[@]}" | sort -V | head -n 1) .. $(printf '%s\n' "${addr[@]}" | sort -V | tail -n 1)"

note "3. n1's clients of hub A come back through hub B: each gets its address again"
moved=()
for c in "${clients[@]:0:10}"; do
    [ "${client_hub[$c]}" = b ] || moved+=("$c")
done
net_stop_ktlstunds "${pid[n1]}"
# Hub A has seen them go (their leases released) before they reach hub B.
for ((i = 0; i < $(scale 10) * 5; i++)); do
    left=$(hub_leases "$TEST_DIR/ha.ini" | grep -cE "^CN=($(IFS='|'; echo "${moved[*]}")) " || true)
    [ "$left" = 0 ] && break
    sleep 0.2
done
[ "$left" = 0 ] || fail "hub A still lists $left of n1's clients after n1 stopped: $(hub_leases "$TEST_DIR/ha.ini")"
start_group n1 b
addr=()
collect "${clients[@]:0:10}"
for c in "${clients[@]:0:10}"; do
    assert_eq "${addr[$c]}" "${before[$c]}" "$c's address after moving from hub ${client_hub[$c]} to hub B"
done
collect "${clients[@]:10}"
clash=$(duplicates "${clients[@]}")
[ -z "$clash" ] || fail "after the move, addresses given twice: $(tr '\n' ';' <<<"$clash")"
expect_a=$(for c in "${clients[@]:10}"; do [ "${client_hub[$c]}" = b ] || echo "CN=$c ${addr[$c]}"; done | sort)
expect_b=$(for c in "${clients[@]}"; do
    [ "${client_hub[$c]}" = a ] && [ "${client_group[$c]}" != n1 ] || echo "CN=$c ${addr[$c]}"
done | sort)
assert_eq "$(hub_leases "$TEST_DIR/ha.ini")" "$expect_a" "hub A's connections and their addresses after the move"
assert_eq "$(hub_leases "$TEST_DIR/hb.ini")" "$expect_b" "hub B's connections and their addresses after the move"

note "4. the store stopped: new clients are refused with the reason, connected ones keep working"
# tunnel_ping C: client C reaches the hub's tunnel address through its own device.
tunnel_ping() { in_ns "${client_group[$1]}" ping -n -q -c 1 -W 2 -I "ktl$1" 10.8.0.1 >/dev/null 2>&1; }
net_stop_ktlstunds "${pid[n2]}"
pg_stop main
assert_log "$TEST_DIR/ha.log" "state store: $sock_re unreachable" "hub A notices the store is gone" "$(scale 10)"
assert_log "$TEST_DIR/hb.log" "state store: $sock_re unreachable" "hub B notices the store is gone" "$(scale 10)"
start_group n2
refused="no device for client c1[0-9]: the shared state store cannot lease an address now: not connected"
assert_log "$TEST_DIR/ha.log" "$refused" "hub A refuses n2's clients while the store is away" "$(scale 10)"
assert_log "$TEST_DIR/hb.log" "$refused" "hub B refuses n2's clients while the store is away" "$(scale 10)"
assert_eq "$(group_addresses n2)" "" "addresses n2's clients got while the store was away"
for c in c21 c22 c41 c50; do
    tunnel_ping "$c" || fail "$c (connected through hub ${client_hub[$c]}) cannot reach the hub through its tunnel while the store is away"
done
note "the store is back: n2's clients get their addresses, the same as before"
pg_start main
addr=()
collect "${clients[@]:10:10}"
for c in "${clients[@]:10:10}"; do
    assert_eq "${addr[$c]}" "${before[$c]}" "$c's address once the store is back"
done
tunnel_ping c11 || fail "c11 cannot reach hub A through its tunnel once the store is back"

net_stop_ktlstunds "${pid[@]}" "$pid_a" "$pid_b"
for g in ha hb "${groups[@]}"; do
    assert_eq "$(net_tun_devices "$g" | tr '\n' ' ')" "" "TUN devices left in $g after the daemons stopped"
done
