#!/usr/bin/env bash
# lint.sh FILE... — static analysis of the daemon's sources, clean or failing:
# cppcheck (warnings, performance, portability) and clang-tidy with the checks in
# .clang-tidy, two files at a time. Prints each finding, then "PASS tool" or
# "FAIL tool" per tool and "lint: N passed, N failed".
set -u
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: tests/lint.sh FILE..." >&2; exit 2; }
# The include path of libnl-route-3 (daemon/netdev/), as the Makefile finds it.
flags=(-D_GNU_SOURCE -Idaemon -Ikmod-helpers $(pkg-config --cflags-only-I libnl-route-3.0 2>/dev/null || echo -I/usr/include/libnl3))
flags+=($(pkg-config --cflags-only-I libpq 2>/dev/null || echo -I/usr/include/postgresql))
passed=0 failed=0
out=$(mktemp)
trap 'rm -f "$out"' EXIT

verdict() {   # tool, status
    if [ "$2" -eq 0 ] && ! grep -qE '(warning|error):' "$out"; then
        echo "PASS $1"
        passed=$((passed + 1))
    else
        cat "$out"
        echo "FAIL $1"
        failed=$((failed + 1))
    fi
}

if command -v cppcheck >/dev/null; then
    cppcheck --quiet -j "$(nproc)" --enable=warning,performance,portability --std=c11 --inline-suppr \
        --error-exitcode=1 "${flags[@]}" "$@" >"$out" 2>&1
    verdict cppcheck $?
else
    echo "cppcheck is not installed (make deps)" >"$out"
    verdict cppcheck 1
fi

if command -v clang-tidy >/dev/null; then
    printf '%s\n' "$@" | xargs -P 2 -I{} clang-tidy --quiet {} -- "${flags[@]}" -std=gnu11 \
        >"$out" 2>/dev/null
    verdict clang-tidy $?
else
    echo "clang-tidy is not installed (make deps)" >"$out"
    verdict clang-tidy 1
fi

echo "lint: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
