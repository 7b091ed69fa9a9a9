#!/usr/bin/env bash
# bench/vm/run.sh BUILD_DIR — counts, not speed: inside the test VM (tests/vm, Debian 12's
# 6.1 kernel under QEMU/TCG), what one ktlstund spends per GB relayed on the kTLS path
# (ktls = require) and on the userspace fallback (ktls = off), in the same run:
# user and system CPU seconds, syscalls (strace -c -f), payload bytes copied through
# userspace (audit lines); and the memory each idle tunnel holds, in both daemons and
# in the kernel. Not part of `make check`.
#
# Writes bench/vm/results.md and prints it. TCG emulates every instruction, so absolute
# seconds and any throughput are meaningless; compare the two paths within one run.
# Environment: BENCH_CONNS (4), BENCH_CPU_BYTES (16 MiB), BENCH_STRACE_BYTES (4 MiB)
# per connection and direction; BENCH_IDLE_BASE (100) and BENCH_IDLE_CONNS (1000) idle
# tunnels for the memory pass; KTLSTUN_VM_* as for tests/vm/run.sh. Then, unless
# BENCH_VM_PARTS leaves them out, bench/vm/rekey.sh: a KeyUpdate every 64 MiB against
# none, on the current kernel (bench/vm/results-rekey.md), and bench/vm/network.sh: a
# network tunnel's kTLS path against its userspace path (bench/vm/results-network.md).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
source "$here/lib/host.sh"
bench_build "$@"
out=$build/bench-vm
results=$here/results.md
# BENCH_VM_PARTS: counts (kTLS against the fallback, 6.1), rekey (bench/vm/rekey.sh,
# on the current kernel) and network (bench/vm/network.sh: a network tunnel, kTLS
# against userspace, 6.1); all three by default.
parts=${BENCH_VM_PARTS:-counts rekey network}
other_parts() {
    [[ " $parts " != *" rekey "* ]] || "$here/rekey.sh" "$build"
    [[ " $parts " != *" network "* ]] || "$here/network.sh" "$build"
}
if [[ " $parts " != *" counts "* ]]; then
    other_parts
    exit 0
fi

# The guest gets bench/vm/guest/*.sh with the kTLS test helpers beside them.
bench_guest "$out" "$here/guest"
# The environment reaches the guest through this file (the VM has no other channel).
bench_conf "$out/guest/lib/bench.conf" BENCH_CONNS=4 BENCH_CPU_BYTES=16777216 \
    BENCH_STRACE_BYTES=4194304 BENCH_IDLE_BASE=100 BENCH_IDLE_CONNS=1000

bench_vm bench/vm "$out" "$build/vm"

awk -v kernel="$kernel" -v when="$(date -u '+%Y-%m-%d %H:%M UTC')" "$BENCH_AWK_GET"'
    { line[get($0, "mode") "/" get($0, "side") "/" get($0, "pass")] = $0 }
    function gb(bytes) { return bytes / 1e9 }
    END {
        c = line["ktls/server/cpu"]; s = line["ktls/server/syscalls"]
        printf "# ktlstun in the VM: cost per GB relayed, kTLS vs userspace fallback\n\n"
        printf "Measured %s by `bench/vm/run.sh` inside QEMU/TCG (kernel %s, 2 vCPUs). " \
               "**Counts, not speed**: TCG emulates every instruction (AES-NI, CLMUL and all), " \
               "so absolute seconds are inflated and throughput is meaningless; compare the " \
               "two paths within this run. On a busy host the seconds vary between runs (up to 2x " \
               "seen); the split between user and system time, the syscall counts and the " \
               "copied bytes are the stable findings.\n\n", when, kernel
        printf "Set-up per path: a client-tunnel daemon and a server-tunnel daemon (1 worker " \
               "each) in front of an echo server. %s connections are opened and measured only " \
               "once both daemons show them relaying, so handshakes stay out of the per-GB " \
               "figures; then %.0f MiB of payload each way per connection, and close. GB = 10^9 " \
               "payload bytes relayed by that daemon (bytes_in + bytes_out of its audit lines). " \
               "CPU: utime/stime of every process of the daemon (/proc/PID/stat, 10 ms ticks) " \
               "around the data phase. Syscalls: `strace -c -f` attached to every process of the " \
               "daemon for the data phase of a separate run (%.0f MiB each way per connection; " \
               "ptrace inflates CPU, so it is not in the CPU run).\n\n",
               get(c, "conns"), get(c, "bytes_each_way") / 1048576, get(s, "bytes_each_way") / 1048576
        printf "| daemon | path | user CPU s/GB | system CPU s/GB | syscalls/GB | most frequent syscalls per GB | payload bytes through userspace per GB |\n"
        printf "| --- | --- | ---: | ---: | ---: | --- | ---: |\n"
        split("server client", sides, " ")
        split("ktls off", modes, " ")
        for (si = 1; si <= 2; si++) for (mi = 1; mi <= 2; mi++) {
            side = sides[si]; mode = modes[mi]
            c = line[mode "/" side "/cpu"]; s = line[mode "/" side "/syscalls"]
            hz = get(c, "hz"); bytes = get(c, "relayed_bytes"); sbytes = get(s, "relayed_bytes")
            n = split(get(s, "by_call"), pairs, ",")
            for (i = 1; i <= n; i++) { split(pairs[i], kv, ":"); names[i] = kv[1]; counts[i] = kv[2] }
            # strace -c sorts by time spent; order by count here.
            top = ""
            for (t = 1; t <= 4 && t <= n; t++) {
                best = 0
                for (i = 1; i <= n; i++)
                    if (!(i in used) && (best == 0 || counts[i] + 0 > counts[best] + 0)) best = i
                used[best] = 1
                top = top (top ? ", " : "") sprintf("%s %.0f", names[best], counts[best] / gb(sbytes))
            }
            for (i in used) delete used[i]
            label = (mode == "ktls") ? "kTLS (ktls = require)" : "userspace (ktls = off)"
            printf "| %s tunnel | %s | %.2f | %.2f | %.0f | %s | %.0f |\n", side, label,
                   get(c, "utime_ticks") / hz / gb(bytes), get(c, "stime_ticks") / hz / gb(bytes),
                   get(s, "syscalls") / gb(sbytes), top, get(c, "userspace_bytes") / gb(bytes)
        }
        printf "\nHandshake and hand-off CPU per connection (not in the table): "
        sep = ""
        for (si = 1; si <= 2; si++) for (mi = 1; mi <= 2; mi++) {
            c = line[modes[mi] "/" sides[si] "/cpu"]
            printf "%s%s tunnel, %s: %.0f ms user + %.0f ms system", sep, sides[si],
                   modes[mi] == "ktls" ? "kTLS" : "userspace",
                   get(c, "handshake_utime_ticks") * 1000 / get(c, "hz") / get(c, "conns"),
                   get(c, "handshake_stime_ticks") * 1000 / get(c, "hz") / get(c, "conns")
            sep = "; "
        }
        cs = get(line["-/-/env"], "clocksource")
        if (cs != "tsc")
            printf ".\n\nThe guest clocksource is %s, which the vDSO cannot read: every clock_gettime " \
                   "here is a real syscall (the event loop reads the clock once per wake-up); on " \
                   "hardware with a TSC clocksource those cost no syscall", cs
        printf ".\n\nThe audit lines said ktls=%s on the kTLS path and ktls=%s on the fallback. " \
               "Raw figures: `BUILD/bench-vm/bench.lines`.\n",
               get(line["ktls/server/cpu"], "ktls"), get(line["off/server/cpu"], "ktls")
        m = line["ktls/server/memory"]
        if (m != "") {
            printf "\n## Idle tunnels\n\n"
            printf "Growth from %s to %s idle tunnels (bench'"'"'s idle_conns through the same pair, " \
                   "one probe byte echoed per tunnel, then idle), per tunnel. Daemon memory is PSS " \
                   "summed over every process of that daemon (smaps_rollup). Kernel slab is " \
                   "system-wide, so it also holds the sink'"'"'s and the load tool'"'"'s sockets; the " \
                   "difference between the two paths is what kTLS itself costs the kernel. On the " \
                   "kTLS path /proc/net/tls_stat counted %s offloaded TX sockets for %s tunnels.\n\n",
                   get(m, "base"), get(m, "base") + get(m, "conns"), get(m, "ktls_tx_sockets"),
                   get(m, "base") + get(m, "conns")
            printf "| path | server tunnel KiB | client tunnel KiB | both ends KiB | kernel slab KiB (system) |\n"
            printf "| --- | ---: | ---: | ---: | ---: |\n"
            for (mi = 1; mi <= 2; mi++) {
                mode = modes[mi]
                ms = line[mode "/server/memory"]; mc = line[mode "/client/memory"]
                n = get(ms, "conns")
                ps = (get(ms, "pss_kb_after") - get(ms, "pss_kb_before")) / n
                pc = (get(mc, "pss_kb_after") - get(mc, "pss_kb_before")) / n
                sl = (get(ms, "slab_kb_after") - get(ms, "slab_kb_before")) / n
                label = (mode == "ktls") ? "kTLS (ktls = require)" : "userspace (ktls = off)"
                printf "| %s | %.2f | %.2f | %.2f | %.2f |\n", label, ps, pc, ps + pc, sl
                server_kib[mode] = ps; client_kib[mode] = pc
            }
            ps = server_kib["ktls"]; pc = client_kib["ktls"]
            printf "\nGoal, 10 KB or less per idle offloaded tunnel: %s, %.2f KiB in " \
                   "the server tunnel and %.2f KiB in the client tunnel (%.0f and %.0f bytes). " \
                   "The kernel holds more per tunnel than that (above), most of it the TCP " \
                   "sockets every path has.\n", (ps * 1024 <= 10000 && pc * 1024 <= 10000) ? "met" : "**missed**",
                   ps, pc, ps * 1024, pc * 1024
            printf "\nSlab caches that grew most, KiB per tunnel:\n\n"
            for (mi = 1; mi <= 2; mi++) {
                mode = modes[mi]
                top = get(line[mode "/server/memory"], "slab_top")
                gsub(/,/, ", ", top)
                label = (mode == "ktls") ? "kTLS" : "userspace"
                printf "- %s: %s\n", label, top
            }
        }
    }' "$out/bench.lines" >"$results"
cat "$results"
other_parts
