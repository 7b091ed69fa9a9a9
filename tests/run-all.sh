#!/usr/bin/env bash
# What `make check` runs after building: static analysis (make lint), unit and
# integration suites on the normal build and on the ASan+UBSan build, then the kTLS
# suite in two real kernels (QEMU): Debian 12's 6.1 and Debian's current one, which
# rekeys kTLS.
# Each suite ends with "NAME: N passed, N failed"; this script totals them and ends
# with one such line of its own.
set -u
cd "$(dirname "$0")/.."
normal=${1:?usage: tests/run-all.sh BUILD_DIR ASAN_BUILD_DIR}
asan=${2:?usage: tests/run-all.sh BUILD_DIR ASAN_BUILD_DIR}
results=$(mktemp)
trap 'rm -f "$results"' EXIT

run_suite() {   # label, command...
    local label=$1
    shift
    echo "=== $label"
    local started=$SECONDS log
    log=$(mktemp)
    "$@" 2>&1 | tee "$log"
    local status=${PIPESTATUS[0]}
    local counts
    counts=$(grep -E '^[a-z-]+: [0-9]+ passed, [0-9]+ failed' "$log" | tail -n 1 | sed 's/^[a-z-]*: //')
    rm -f "$log"
    echo "=== $label: exit status $status in $((SECONDS - started))s"
    echo "$label: ${counts:-0 passed, 0 failed}" >> "$results"
    # A suite that exits non-zero without counting a failure still failed.
    if [ "$status" -ne 0 ] && ! grep -q "^$label: .* [1-9][0-9]* failed" "$results"; then
        echo "$label-exit: 0 passed, 1 failed" >> "$results"
    fi
}

run_suite lint make --no-print-directory lint
run_suite unit tests/unit/run.sh "$normal"
run_suite unit-asan tests/unit/run.sh "$asan"
run_suite integration tests/integration/run.sh "$normal"
# layout and docs check the sources and what links where: the normal run covers them.
run_suite integration-asan env KTLSTUN_SKIP_TESTS="layout docs" tests/integration/run.sh "$asan"
run_suite vm tests/vm/run.sh "$normal"
run_suite vm-current env KTLSTUN_VM_KERNEL=current tests/vm/run.sh "$normal"

echo "=== summary"
cat "$results"
passed=$(awk '{s += $2} END {print s + 0}' "$results")
failed=$(awk '{s += $4} END {print s + 0}' "$results")
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
