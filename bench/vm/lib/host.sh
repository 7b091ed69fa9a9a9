# bench/vm/lib/host.sh — the host side shared by bench/vm/run.sh, rekey.sh and
# network.sh: the guest directory, the VM run and the reading of its result lines.
# Sourced once here and repo are set; bench_build sets build.

# bench_build ARGS...: the command line, BUILD_DIR alone (else the usage, exit 2); sets
# build to its absolute path.
bench_build() {
    [ $# -eq 1 ] || { echo "usage: $0 BUILD_DIR" >&2; exit 2; }
    build=$(cd "$1" && pwd)
}

# bench_conf FILE NAME=DEFAULT...: writes NAME=VALUE lines to FILE, VALUE the
# environment's NAME or else DEFAULT (the environment reaches the guest through FILE).
bench_conf() {
    local file=$1 kv name
    shift
    for kv in "$@"; do
        name=${kv%%=*}
        echo "$name=${!name:-${kv#*=}}"
    done >"$file"
}

# bench_guest OUT GUEST_SRC: a fresh OUT with OUT/guest holding GUEST_SRC/*.sh, and
# the kTLS test helpers and lib/proc.sh beside them in OUT/guest/lib.
bench_guest() {
    rm -rf "$1"
    mkdir -p "$1/guest/lib"
    cp "$2"/*.sh "$1/guest/"
    cp "$repo/tests/vm/guest/lib/ktls.sh" "$here/lib/proc.sh" "$1/guest/lib/"
}

# bench_vm NAME OUT VM_DIR [VAR=VALUE...]: tests/vm/run.sh with OUT/guest as its guest
# scripts (and the VARs in its environment), its output in OUT/vm.out, the @@BENCH lines
# of VM_DIR/console.log in OUT/bench.lines. Exits (as NAME) when the run failed or gave
# no line; sets kernel to the guest's kernel.
bench_vm() {
    local name=$1 out=$2 vm=$3 status=0
    shift 3
    env "$@" KTLSTUN_VM_GUEST_DIR="$out/guest" KTLSTUN_VM_TEST_TIMEOUT="${KTLSTUN_VM_TEST_TIMEOUT:-1200}" \
        KTLSTUN_VM_TIMEOUT="${KTLSTUN_VM_TIMEOUT:-1500}" "$repo/tests/vm/run.sh" "$build" | tee "$out/vm.out" ||
        status=$?
    grep -a '^@@BENCH ' "$vm/console.log" >"$out/bench.lines" || true
    if [ "$status" -ne 0 ] || [ ! -s "$out/bench.lines" ]; then
        echo "$name: the VM run failed (status $status); no results written. Console: $vm/console.log" >&2
        exit 1
    fi
    kernel=$(sed -n 's/^@@VM-BEGIN kernel=\([^ ]*\).*/\1/p' "$vm/console.log" | head -n 1)
}

# BENCH_AWK_GET: the awk function get(LINE, KEY), the value of KEY=VALUE in LINE ("" when
# there is none), put before the awk programs that read bench.lines.
BENCH_AWK_GET='
    function get(line, key,    n, i, kv, parts) {
        n = split(line, parts, " ")
        for (i = 1; i <= n; i++) {
            split(parts[i], kv, "=")
            if (kv[1] == key) return substr(parts[i], length(key) + 2)
        }
        return ""
    }'
