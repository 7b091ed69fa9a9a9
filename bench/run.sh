#!/usr/bin/env bash
# make bench: ktlstun against stunnel4, haproxy, socat and plain TCP on loopback.
#
#   bench/run.sh BUILD_DIR [--only FIGURES] [--quick]
#
# FIGURES is a comma list of throughput,handshakes,latency,memory (default all;
# CPU per GB comes with throughput). --quick shortens every run (for trying the
# harness, not for figures). Results: bench/results/latest.{md,json} and chart.png.
# See bench/bench.py for what each figure measures and how.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: bench/run.sh BUILD_DIR [--only FIGURES] [--quick]}
shift
build=$(cd "$build" && pwd)

for f in ktlstund tools/echo_server bench/handshake_load bench/pingpong bench/idle_conns; do
    [ -x "$build/$f" ] || { echo "bench: $build/$f is missing (run make first)" >&2; exit 1; }
done
for cmd in stunnel4 haproxy socat iperf3 gnuplot openssl; do
    command -v "$cmd" >/dev/null || { echo "bench: $cmd is not installed (make bench installs it)" >&2; exit 1; }
done

# 10,000 idle tunnels need 20,000+ descriptors in each tunnel process and the sink.
# Root may raise the hard limit; everyone else gets what the hard limit allows.
ulimit -Hn 1048576 2>/dev/null || true
ulimit -n "$(ulimit -Hn)"

# Debian's python3, not whatever a user's PATH prefers: the harness needs only its
# standard library.
python=/usr/bin/python3
[ -x "$python" ] || python=python3
exec "$python" "$here/bench.py" --build "$build" --results "$here/results" "$@"
