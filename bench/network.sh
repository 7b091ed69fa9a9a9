#!/usr/bin/env bash
# make bench-network: ktlstun network tunnels against OpenVPN 2.6 in TCP and UDP mode,
# in two network namespaces this script makes and removes (root only).
#
#   bench/network.sh BUILD_DIR [--quick]
#
# --quick shortens every run (for trying the harness, not for figures). Results:
# bench/results/network.{md,json}. See bench/network.py for what each figure measures.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: bench/network.sh BUILD_DIR [--quick]}
shift
build=$(cd "$build" && pwd)

[ "$(id -u)" = 0 ] || { echo "bench: the network figures need root (network namespaces, TUN devices)" >&2; exit 1; }
[ -x "$build/ktlstund" ] || { echo "bench: $build/ktlstund is missing (run make first)" >&2; exit 1; }
for cmd in openvpn iperf3 ping ip openssl; do
    command -v "$cmd" >/dev/null || { echo "bench: $cmd is not installed (make bench-network installs it)" >&2; exit 1; }
done

# The namespaces carry this shell's pid, so runs never share or remove each other's.
# Whatever way the harness ends, what runs in them is ended and they are deleted.
prefix="ktlbench$$"
cleanup() {
    local ns pid
    for ns in "$prefix-client" "$prefix-hub"; do
        ip netns list | grep -qw "^$ns" || continue
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null || true
        done
        ip netns del "$ns" 2>/dev/null || true
    done
}
trap cleanup EXIT

python=/usr/bin/python3
[ -x "$python" ] || python=python3
# In the background, so that this shell runs its traps at once; a background job of a
# script ignores SIGINT, so an interrupt reaches the harness as SIGTERM, which makes it
# end what it started and write nothing.
"$python" "$here/network.py" --build "$build" --results "$here/results" --netns-prefix "$prefix" "$@" &
harness=$!
trap 'kill -TERM "$harness" 2>/dev/null; wait "$harness" || true; exit 130' INT TERM
wait "$harness"
