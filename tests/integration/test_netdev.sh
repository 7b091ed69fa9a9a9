#!/usr/bin/env bash
# The network tunnels' device side (daemon/netdev/), driven by tools/netdev_tool in
# network namespaces this test makes and removes: a TUN device gets its MTU,
# addresses and routes (read back with `ip -j`), loses them again and goes; errors name
# the device and the kernel's reason; the devices a crashed run left, marked with its
# owner, are removed, and nothing else (another owner's, the operator's); and two TUN
# devices in two namespaces, joined by the packet relay (daemon/iprelay/) over a TLS
# session as client and hub, carry TCP over IPv4 and IPv6, while the hub drops a
# forged source.
here=$(cd "$(dirname "$0")" && pwd)
source "$here/lib.sh"

[ "$(id -u)" = 0 ] || fail "needs root (network namespaces, TUN devices)"
tool="$TOOLS/netdev_tool"
[ -x "$tool" ] || fail "no $tool"

tag=$(printf '%04x%04x' $RANDOM $RANDOM)
ns_a="kt${tag}a" ns_b="kt${tag}b"
namespaces=()
# Deleting a namespace deletes the devices in it; the processes that still hold one
# end in cleanup.
remove_namespaces() {
    local ns
    for ns in "${namespaces[@]}"; do
        ip netns del "$ns" 2>/dev/null || true
    done
}
trap 'rc=$?; remove_namespaces; (exit $rc); cleanup' EXIT
ip netns add "$ns_a"
namespaces+=("$ns_a")
ip netns add "$ns_b"
namespaces+=("$ns_b")
ip -n "$ns_a" link set lo up
ip -n "$ns_b" link set lo up
in_a() { ip netns exec "$ns_a" "$@"; }
in_b() { ip netns exec "$ns_b" "$@"; }

has_link() { ip -n "$1" link show "$2" >/dev/null 2>&1; }
link_field() { ip -n "$1" -j link show "$2" | jq -r ".[0].$3"; }
addresses() { ip -n "$1" -j addr show dev "$2" | jq -r '.[0].addr_info[] | select(.scope == "global") | "\(.local)/\(.prefixlen)"' | sort | tr '\n' ' '; }
routes() { ip -n "$1" -j "$3" route show dev "$2" proto static | jq -r '.[].dst' | sort | tr '\n' ' '; }

note "a device with its MTU, addresses and routes"
spawn_fed up "exec ip netns exec $ns_a $tool up ktl0 1400 --addr 10.9.0.1/24 --addr fd09::1/64 --route 10.20.0.0/16 --route 192.168.77.0/24 --route fd20::/48"
up_pid=$SPAWN_PID
wait_for_log "$TEST_DIR/up.out" '^ready ktl0$' "$(scale 10)" 1 "$up_pid" ||
    fail "netdev_tool up: $(cat "$TEST_DIR/up.out")"
assert_eq "$(link_field "$ns_a" ktl0 mtu)" 1400 "MTU of ktl0"
assert_eq "$(link_field "$ns_a" ktl0 'flags | index("UP") != null')" true "ktl0 is up"
assert_eq "$(ip -n "$ns_a" -j -d link show ktl0 | jq -r '.[0].linkinfo.info_kind')" tun "ktl0 is a TUN device"
assert_eq "$(addresses "$ns_a" ktl0)" "10.9.0.1/24 fd09::1/64 " "addresses of ktl0"
assert_eq "$(routes "$ns_a" ktl0 -4)" "10.20.0.0/16 192.168.77.0/24 " "IPv4 routes via ktl0"
assert_eq "$(routes "$ns_a" ktl0 -6)" "fd20::/48 " "IPv6 routes via ktl0"
assert_eq "$(ip -n "$ns_a" -j route get 10.20.3.4 | jq -r '.[0].dev')" ktl0 "10.20.3.4 goes via ktl0"

note "errors name the device and the kernel's reason"
rc=0
in_a "$tool" up ktl1 1400 --route 10.20.0.0/16 >"$TEST_DIR/clash.out" 2>&1 || rc=$?
assert_eq "$rc" 1 "a route that exists already fails"
assert_contains "$(cat "$TEST_DIR/clash.out")" "adding route via device ktl1: 10.20.0.0/16: Object exists" "the clash"
has_link "$ns_a" ktl1 && fail "ktl1 outlived the descriptor of the failed run"
rc=0
in_a "$tool" delete ktl9 >"$TEST_DIR/missing.out" 2>&1 || rc=$?
assert_eq "$rc" 1 "deleting a device that is not there fails"
assert_contains "$(cat "$TEST_DIR/missing.out")" "deleting device ktl9: No such device" "the missing device"
rc=0
in_a "$tool" up 'ktl/0' 1400 >"$TEST_DIR/badname.out" 2>&1 || rc=$?
assert_eq "$rc" 1 "a name with a slash fails"
assert_contains "$(cat "$TEST_DIR/badname.out")" "not a valid interface name" "the bad name"

note "everything is removed again"
exec {FED_FD}>&-
wait_exit "$up_pid" "$(scale 10)" || fail "netdev_tool up did not end: $(cat "$TEST_DIR/up.out")"
assert_contains "$(cat "$TEST_DIR/up.out")" "removed ktl0" "netdev_tool up removed its device"
has_link "$ns_a" ktl0 && fail "ktl0 is still there"
assert_eq "$(ip -n "$ns_a" -j route show 10.20.0.0/16)" "[]" "the route to 10.20.0.0/16 went"
assert_eq "$(ip -n "$ns_a" -j -6 route show fd20::/48)" "[]" "the route to fd20::/48 went"

note "leftovers of a crashed run go (marked with its owner), other devices stay"
owner_x="ktlstund /run/x" owner_y="ktlstund /run/y"
in_a "$tool" up ktl5 1300 --persist --owner "$owner_x" --addr 10.9.5.1/24 --route 10.55.0.0/16 >/dev/null
in_a "$tool" up ktl6 1300 --persist --owner "$owner_x" >/dev/null
has_link "$ns_a" ktl5 && has_link "$ns_a" ktl6 || fail "the persistent devices are not there"
assert_eq "$(link_field "$ns_a" ktl5 ifalias)" "$owner_x" "the alias netdev_set_owner gave ktl5"
assert_eq "$(in_a "$tool" owner ktl5)" "owner $owner_x" "netdev_owner reads ktl5's owner"
# Another daemon's device (marked by ip, as netdev_owner must read any alias), and
# the operator's without an alias.
in_a "$tool" up ktl7 1300 --persist >/dev/null
ip -n "$ns_a" link set dev ktl7 alias "$owner_y"
in_a "$tool" up ktl8 1300 --persist >/dev/null
ip -n "$ns_a" tuntap add mode tun name ktlmine
# A prefix of the owner, or the owner with more after it, is another owner.
in_a "$tool" up ktl9 1300 --persist --owner "ktlstund /run/x/" >/dev/null
in_a "$tool" up ktl10 1300 --persist --owner "ktlstund /run" >/dev/null
assert_eq "$(in_a "$tool" owner ktl7)" "owner $owner_y" "netdev_owner reads the alias ip set"
assert_eq "$(in_a "$tool" owner ktl8)" "none" "netdev_owner of a device without an alias"
assert_eq "$(in_a "$tool" owner ktl99)" "absent" "netdev_owner of a device that is not there"
ip -n "$ns_a" link add ktlv0 type veth peer name ktlv1
ip -n "$ns_a" link set dev ktlv0 alias "$owner_x"
ip -n "$ns_a" tuntap add mode tun name other0
ip -n "$ns_a" link set dev other0 alias "$owner_x"
out=$(in_a "$tool" leftovers ktl "$owner_x")
assert_eq "$out" "removed 2" "leftovers removed"
has_link "$ns_a" ktl5 && fail "ktl5 is still there"
has_link "$ns_a" ktl6 && fail "ktl6 is still there"
assert_eq "$(ip -n "$ns_a" -j route show 10.55.0.0/16)" "[]" "the leftover's route went with it"
has_link "$ns_a" ktl7 || fail "another owner's device was removed"
has_link "$ns_a" ktl8 || fail "a device without an alias was removed"
has_link "$ns_a" ktlmine || fail "the operator's ktlmine was removed"
has_link "$ns_a" ktl9 || fail "a device of owner 'ktlstund /run/x/' was removed"
has_link "$ns_a" ktl10 || fail "a device of owner 'ktlstund /run' was removed"
has_link "$ns_a" ktlv0 || fail "a veth with our prefix was removed"
has_link "$ns_a" other0 || fail "a TUN device without our prefix was removed"
assert_eq "$(in_a "$tool" leftovers ktl "$owner_x")" "removed 0" "nothing left the second time"
assert_eq "$(in_a "$tool" leftovers ktl "$owner_y")" "removed 1" "the other owner's leftovers"
has_link "$ns_a" ktl7 && fail "ktl7 is still there after its owner's removal"
has_link "$ns_a" ktl8 || fail "a device without an alias was removed by the other owner"
for dev in ktlv0 other0 ktl8 ktlmine ktl9 ktl10; do
    ip -n "$ns_a" link del "$dev"
done

note "two TUN devices in two namespaces, joined by the packet relay over TLS"
# listening OPTION PORT: waits until namespace B listens on PORT (ss OPTION: -t, -u).
listening() {
    local i
    for ((i = 0; i < 100; i++)); do
        in_b ss -Hln "$1" | grep -qE ":$2 " && return 0
        sleep 0.05
    done
    fail "nothing listens on port $2 in $ns_b"
}
# The peers in B listen before the relay starts: they must not inherit its stdin.
spawn "$TEST_DIR/echo4.out" ip netns exec "$ns_b" socat TCP4-LISTEN:7000,reuseaddr EXEC:cat
spawn "$TEST_DIR/echo6.out" ip netns exec "$ns_b" socat TCP6-LISTEN:7006,reuseaddr EXEC:cat
spawn "$TEST_DIR/udp.out" ip netns exec "$ns_b" socat -u UDP4-RECV:7001 "OPEN:$TEST_DIR/udp.got,creat,append"
listening -t 7000
listening -t 7006
listening -u 7001
spawn_fed relay "exec $tool relay 1400 $PKI $ns_a ktla 10.9.0.1/24,fd09::1/64 $ns_b ktlb 10.9.0.2/24,fd09::2/64"
relay_pid=$SPAWN_PID
wait_for_log "$TEST_DIR/relay.out" '^ready$' "$(scale 10)" 1 "$relay_pid" ||
    fail "netdev_tool relay: $(cat "$TEST_DIR/relay.out")"
# A SYN announcing more than fits (advmss) is clamped; the connection works, so its
# checksum was right after the change.
ip -n "$ns_a" route replace 10.9.0.0/24 dev ktla src 10.9.0.1 advmss 1460
reply=$(echo "over the tunnel" | in_a timeout "$(scale 5)" socat -t 2 - TCP4:10.9.0.2:7000) || true
assert_eq "$reply" "over the tunnel" "TCP echo over IPv4 across the relay"
# Full-sized segments over IPv6, the other way round.
head -c 20000 /dev/urandom >"$TEST_DIR/payload"
in_a timeout "$(scale 5)" socat -t 2 - 'TCP6:[fd09::2]:7006' <"$TEST_DIR/payload" >"$TEST_DIR/payload.back" || true
cmp -s "$TEST_DIR/payload" "$TEST_DIR/payload.back" ||
    fail "20000 bytes over IPv6 came back as $(stat -c %s "$TEST_DIR/payload.back") different ones"
# A source the sender may not use is dropped; its own goes through.
ip -n "$ns_a" addr add 10.77.0.1/32 dev lo
echo forged | in_a socat -u - UDP4-SENDTO:10.9.0.2:7001,bind=10.77.0.1
echo own | in_a socat -u - UDP4-SENDTO:10.9.0.2:7001,bind=10.9.0.1
for ((i = 0; i < 40; i++)); do
    grep -q own "$TEST_DIR/udp.got" 2>/dev/null && break
    sleep 0.05
done
assert_contains "$(cat "$TEST_DIR/udp.got" 2>/dev/null)" own "a datagram from the sender's own address"
assert_not_contains "$(cat "$TEST_DIR/udp.got")" forged "a datagram from a forged source"
exec {FED_FD}>&-
wait_exit "$relay_pid" "$(scale 10)" || fail "netdev_tool relay did not end: $(cat "$TEST_DIR/relay.out")"
counts=$(grep '^relayed' "$TEST_DIR/relay.out") || fail "no counts: $(cat "$TEST_DIR/relay.out")"
note "$counts"
read -r _ relayed _ dropped _ clamped _ batches <<<"$counts"
[ "$relayed" -ge 12 ] || fail "only $relayed packets relayed"
[ "$dropped" -ge 1 ] || fail "the forged datagram was not counted as dropped: $counts"
[ "$clamped" -ge 1 ] || fail "no SYN was clamped: $counts"
[ "$batches" -gt 0 ] && [ "$batches" -lt "$relayed" ] || fail "packets were not batched: $counts"
