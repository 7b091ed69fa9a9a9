#!/usr/bin/env bash
# Runs every cmocka unit test built under BUILD_DIR/tests and totals cmocka's counts.
# Last line: "unit: N passed, N failed".
set -u
build_dir=${1:?usage: tests/unit/run.sh BUILD_DIR}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
passed=0 failed=0 ran=0
for test in "$build_dir"/tests/test_*; do
    [ -x "$test" ] || continue
    ran=$((ran + 1))
    output=$("$test" 2>&1)
    status=$?
    printf '%s\n' "$output"
    p=$(printf '%s\n' "$output" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
    f=$(printf '%s\n' "$output" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -n 1)
    passed=$((passed + ${p:-0}))
    failed=$((failed + ${f:-0}))
    # A crash (ASan, abort) prints no summary: count the binary as one failure.
    if [ "$status" -ne 0 ] && [ "${f:-0}" -eq 0 ]; then
        echo "FAIL $(basename "$test"): exit status $status"
        failed=$((failed + 1))
    fi
done
echo "unit: $passed passed, $failed failed"
[ "$ran" -gt 0 ] && [ "$passed" -gt 0 ] && [ "$failed" -eq 0 ]
