# netns_lib.sh — one network namespace of the test's own for the tests that drive the
# TUN device code with tools (test_tun_service.sh, test_netdev_hub.sh), sourced after
# lib.sh. Deleting the namespace deletes the devices in it; the processes that still
# hold one end in cleanup.

# netns_own SUFFIX: makes the namespace, its name in $ns (ending in SUFFIX), with lo
# up, and removes it at exit before lib.sh's cleanup.
netns_own() {
    ns="kt$(printf '%04x%04x' $RANDOM $RANDOM)$1"
    trap 'rc=$?; ip netns del "$ns" 2>/dev/null || true; (exit $rc); cleanup' EXIT
    ip netns add "$ns"
    ip -n "$ns" link set lo up
}

# has_link NAME: whether device NAME exists in the namespace.
has_link() { ip -n "$ns" link show "$1" >/dev/null 2>&1; }
# addresses DEVICE: DEVICE's global addresses (ADDRESS/PREFIX), sorted, on one line.
addresses() { ip -n "$ns" -j addr show dev "$1" | jq -r '.[0].addr_info[] | select(.scope == "global") | "\(.local)/\(.prefixlen)"' | sort | tr '\n' ' '; }
# routes DEVICE -4|-6: the static routes' destinations by DEVICE, sorted, on one line.
routes() { ip -n "$ns" -j "$2" route show dev "$1" proto static | jq -r '.[].dst' | sort | tr '\n' ' '; }
# route_dev ADDRESS: the device a packet to ADDRESS leaves by, empty when unreachable.
route_dev() { local out; out=$(ip -n "$ns" -j route get "$1" 2>/dev/null) || return 0; jq -r '.[0].dev' <<<"$out"; }
