#!/usr/bin/env bash
# bench/vm/network.sh BUILD_DIR — counts, not speed: what a network (layer-3) tunnel
# costs ktlstund per GB carried inside the test VM (tests/vm, Debian 12's 6.1 kernel
# under QEMU/TCG), its kTLS path (ktls = require) against its userspace path
# (ktls = off), in the same run: user and system CPU seconds and syscalls per GB of
# TCP payload, per daemon (hub and client gateway), and the ratios. Run by
# bench/vm/run.sh (`make bench-vm`); not part of `make check`.
#
# Writes bench/vm/results-network.md and prints it. Environment: BENCH_NET_BYTES
# (64 MiB) per measured transfer, BENCH_NET_RUNS (2) transfers per mode, the modes
# taking turns; BENCH_NET_STRACE_BYTES (16 MiB) under strace; KTLSTUN_VM_* as for
# tests/vm/run.sh.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
source "$here/lib/host.sh"
bench_build "$@"
out=$build/bench-vm-network
results=$here/results-network.md

bench_guest "$out" "$here/guest-network"
bench_conf "$out/guest/lib/bench.conf" BENCH_NET_BYTES=67108864 BENCH_NET_RUNS=2 \
    BENCH_NET_STRACE_BYTES=16777216

bench_vm bench/vm/network "$out" "$build/vm" KTLSTUN_VM_KERNEL=debian12

awk -v kernel="$kernel" -v when="$(date -u '+%Y-%m-%d %H:%M UTC')" "$BENCH_AWK_GET"'
    get($0, "pass") == "cpu" {
        m = get($0, "mode"); s = get($0, "side"); hz = get($0, "hz")
        gb[m, s] += get($0, "bytes") / 1e9
        user[m, s] += get($0, "utime_ticks") / hz
        sys[m, s] += get($0, "stime_ticks") / hz
        wall[m] += (s == "hub") ? get($0, "tcg_wall_ms") / 1000 : 0
        if (s == "hub") { runs[m]++; bytes = get($0, "bytes") }
    }
    get($0, "pass") == "syscalls" {
        m = get($0, "mode"); s = get($0, "side")
        sc[m, s] = get($0, "syscalls") / (get($0, "bytes") / 1e9)
        calls[m, s] = get($0, "by_call"); sgb[m, s] = get($0, "bytes") / 1e9
        sbytes = get($0, "bytes")
    }
    get($0, "pass") == "audit" { ktls[get($0, "mode"), get($0, "side")] = get($0, "ktls") }
    get($0, "pass") == "env" { clocksource = get($0, "clocksource") }
    # top4 LIST GB: the four most frequent calls of "name:count,..." per GB
    function top4(list, g,    n, i, t, best, used, kv, names, counts, text) {
        n = split(list, pairs, ",")
        for (i = 1; i <= n; i++) { split(pairs[i], kv, ":"); names[i] = kv[1]; counts[i] = kv[2] }
        text = ""
        for (t = 1; t <= 4 && t <= n; t++) {
            best = 0
            for (i = 1; i <= n; i++)
                if (!(i in used) && (best == 0 || counts[i] + 0 > counts[best] + 0)) best = i
            used[best] = 1
            text = text (text ? ", " : "") sprintf("%s %.0f", names[best], counts[best] / g)
        }
        return text
    }
    END {
        printf "# ktlstun in the VM: a network tunnel per GB, kTLS vs userspace\n\n"
        printf "Measured %s by `bench/vm/network.sh` (`make bench-vm`) inside QEMU/TCG (kernel %s, " \
               "2 vCPUs). **Counts, not speed**: TCG emulates every instruction, so seconds are " \
               "inflated and noisy and throughput is meaningless; compare the two paths within this " \
               "run.\n\n", when, kernel
        printf "Set-up per path: two network namespaces joined by a veth pair, a hub daemon " \
               "(`type = network`, server) in one and a client gateway daemon in the other, 1 worker " \
               "each, MTU 1400. One TCP connection from the client gateway'"'"'s namespace to the " \
               "hub'"'"'s tunnel address carries %.0f MiB of zeros, %d times per path, the two paths " \
               "taking turns, after a 1 MiB warm-up. GB = 10^9 bytes of that TCP payload (the " \
               "packets carry their IP and TCP headers too, and the ACKs come back). CPU: " \
               "utime/stime of every process of the daemon (/proc/PID/stat, 10 ms ticks) around " \
               "each transfer. Syscalls: `strace -c -f` attached to every process of both " \
               "daemons for one more transfer of %.0f MiB (ptrace inflates CPU, so it is not in " \
               "the CPU runs).\n\n", bytes / 1048576, runs["ktls"], sbytes / 1048576
        printf "| daemon | path | user CPU s/GB | system CPU s/GB | syscalls/GB | most frequent syscalls per GB |\n"
        printf "| --- | --- | ---: | ---: | ---: | --- |\n"
        split("hub client", sides, " ")
        split("ktls off", modes, " ")
        for (si = 1; si <= 2; si++) for (mi = 1; mi <= 2; mi++) {
            s = sides[si]; m = modes[mi]
            u[m, s] = user[m, s] / gb[m, s]; y[m, s] = sys[m, s] / gb[m, s]
            printf "| %s | %s | %.2f | %.2f | %.0f | %s |\n",
                   s == "hub" ? "hub" : "client gateway",
                   m == "ktls" ? "kTLS (ktls = require)" : "userspace (ktls = off)",
                   u[m, s], y[m, s], sc[m, s], top4(calls[m, s], sgb[m, s])
        }
        printf "\nkTLS against userspace, per GB (kTLS figure / userspace figure):\n\n"
        printf "| daemon | user CPU | system CPU | user + system CPU | syscalls |\n"
        printf "| --- | ---: | ---: | ---: | ---: |\n"
        for (si = 1; si <= 2; si++) {
            s = sides[si]
            printf "| %s | %.2f | %.2f | %.2f | %.2f |\n", s == "hub" ? "hub" : "client gateway",
                   u["ktls", s] / u["off", s], y["ktls", s] / y["off", s],
                   (u["ktls", s] + y["ktls", s]) / (u["off", s] + y["off", s]), sc["ktls", s] / sc["off", s]
        }
        printf "\nTransfer wall time under TCG, summed over the runs: kTLS %.1f s, userspace %.1f s.",
               wall["ktls"], wall["off"]
        if (clocksource != "tsc")
            printf " The guest clocksource is %s, which the vDSO cannot read: every clock_gettime " \
                   "here is a real syscall.", clocksource
        printf "\n\nThe audit lines said ktls=%s (hub) and ktls=%s (client gateway) on the kTLS path, " \
               "ktls=%s and ktls=%s on the userspace path. Raw figures: " \
               "`BUILD/bench-vm-network/bench.lines`.\n",
               ktls["ktls", "hub"], ktls["ktls", "client"], ktls["off", "hub"], ktls["off", "client"]
    }' "$out/bench.lines" >"$results"
cat "$results"
