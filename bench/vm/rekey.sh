#!/usr/bin/env bash
# bench/vm/rekey.sh BUILD_DIR — what a KeyUpdate every 64 MiB costs an offloaded stream,
# inside the test VM on the current kernel (tests/vm, KTLSTUN_VM_KERNEL=current: kTLS
# that takes new keys). Run by bench/vm/run.sh (`make bench-vm`); not part of `make check`.
#
# Medians over BENCH_REKEY_RUNS runs (3) of one stream of BENCH_REKEY_BYTES (160 MiB)
# each way, with and without `rekey_bytes = 64M`: CPU per GB of each daemon, syscalls
# per GB (one run under strace, BENCH_REKEY_STRACE_BYTES, 68 MiB), the longest pause
# between two reads of the stream, and the ratios. Writes bench/vm/results-rekey.md and
# prints it. TCG emulates every instruction: compare the two modes within one run.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
source "$here/lib/host.sh"
bench_build "$@"
out=$build/bench-vm-rekey
results=$here/results-rekey.md

bench_guest "$out" "$here/guest-current"
bench_conf "$out/guest/lib/bench.conf" BENCH_REKEY_RUNS=3 BENCH_REKEY_BYTES=167772160 \
    BENCH_REKEY_STRACE_BYTES=71303168

bench_vm bench/vm/rekey "$out" "$build/vm-current" KTLSTUN_VM_KERNEL=current

awk -v kernel="$kernel" -v when="$(date -u '+%Y-%m-%d %H:%M UTC')" "$BENCH_AWK_GET"'
    # median of the N values in array A (sorted here, insertion sort: N is small)
    function median(a, n,    i, j, t) {
        for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
        return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
    }
    get($0, "pass") == "rekey" {
        m = get($0, "mode"); k = ++runs[m]
        gb = 2 * get($0, "bytes_each_way") / 1e9; hz = get($0, "hz")
        s_cpu[m, k] = (get($0, "server_utime") + get($0, "server_stime")) / hz / gb
        s_sys[m, k] = get($0, "server_stime") / hz / gb
        c_cpu[m, k] = (get($0, "client_utime") + get($0, "client_stime")) / hz / gb
        c_sys[m, k] = get($0, "client_stime") / hz / gb
        gap[m, k] = get($0, "max_gap_ms"); wall[m, k] = get($0, "wall_ms")
        rekeys[m] = get($0, "tx_rekeys"); bytes = get($0, "bytes_each_way")
    }
    get($0, "pass") == "rekey-syscalls" {
        sc[get($0, "mode"), get($0, "side")] = get($0, "syscalls") / (2 * get($0, "bytes_each_way") / 1e9)
        sbytes = get($0, "bytes_each_way")
    }
    function med(arr, m,    i, a) { for (i = 1; i <= runs[m]; i++) a[i] = arr[m, i]; return median(a, runs[m]) }
    END {
        printf "# ktlstun in the VM: a KeyUpdate every 64 MiB on an offloaded stream\n\n"
        printf "Measured %s by `bench/vm/rekey.sh` (`make bench-vm`) inside QEMU/TCG (kernel %s, " \
               "2 vCPUs). TCG emulates every instruction and the host is shared, so seconds are " \
               "inflated and noisy; compare the two modes within this run.\n\n", when, kernel
        printf "Set-up per mode: a client-tunnel daemon and a server-tunnel daemon (1 worker each) " \
               "in front of an echo server; one connection streams %.0f MiB each way through both, " \
               "as fast as the path takes it. `rekey_bytes = 64M` on both tunnels: each TLS sender " \
               "sends a KeyUpdate and installs its next key every 64 MiB (%s KeyUpdates sent per " \
               "run, counted by /proc/net/tls_stat TlsTxRekeyOk). Medians over %d runs, the two modes " \
               "taking turns. CPU: utime+stime of every process of the daemon (10 ms ticks) per GB it " \
               "relayed (both directions, one handshake included). Syscalls: `strace -c -f` over one " \
               "more stream of %.0f MiB each way. Longest pause: the longest time between two reads " \
               "of the echo at the sender.\n\n", bytes / 1048576, rekeys["rekey"], runs["rekey"], sbytes / 1048576
        printf "| mode | server tunnel CPU s/GB | client tunnel CPU s/GB | server syscalls/GB | client syscalls/GB | longest pause ms | stream wall s |\n"
        printf "| --- | ---: | ---: | ---: | ---: | ---: | ---: |\n"
        split("plain rekey", modes, " ")
        for (i = 1; i <= 2; i++) {
            m = modes[i]
            v[m, 1] = med(s_cpu, m); v[m, 2] = med(c_cpu, m); v[m, 3] = sc[m, "server"]
            v[m, 4] = sc[m, "client"]; v[m, 5] = med(gap, m); v[m, 6] = med(wall, m) / 1000
            printf "| %s | %.2f | %.2f | %.0f | %.0f | %.0f | %.1f |\n",
                   m == "rekey" ? "`rekey_bytes = 64M`" : "no rekey_bytes",
                   v[m, 1], v[m, 2], v[m, 3], v[m, 4], v[m, 5], v[m, 6]
        }
        printf "| ratio | %.2f | %.2f | %.3f | %.3f | %.2f | %.2f |\n",
               v["rekey", 1] / v["plain", 1], v["rekey", 2] / v["plain", 2], v["rekey", 3] / v["plain", 3],
               v["rekey", 4] / v["plain", 4], v["rekey", 5] / v["plain", 5], v["rekey", 6] / v["plain", 6]
        printf "\nPer run (server CPU s/GB, client CPU s/GB, longest pause ms):\n\n"
        for (i = 1; i <= 2; i++) {
            m = modes[i]; line = ""
            for (k = 1; k <= runs[m]; k++)
                line = line (k > 1 ? "; " : "") sprintf("%.2f, %.2f, %.0f", s_cpu[m, k], c_cpu[m, k], gap[m, k])
            printf "- %s: %s\n", m == "rekey" ? "`rekey_bytes = 64M`" : "no rekey_bytes", line
        }
        printf "\nRaw figures: `BUILD/bench-vm-rekey/bench.lines`.\n"
    }' "$out/bench.lines" >"$results"
cat "$results"
