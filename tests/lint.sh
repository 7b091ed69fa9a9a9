#!/usr/bin/env bash
# lint.sh FILE... — static analysis of the daemon's sources, clean or failing:
# cppcheck (warnings, performance, portability; one process, beside clang-tidy) and
# clang-tidy with the checks in .clang-tidy, two files at a time, the largest first.
# Prints each finding, then "PASS tool" or "FAIL tool" per tool and
# "lint: N passed, N failed".
set -u
cd "$(dirname "$0")/.."
[ $# -gt 0 ] || { echo "usage: tests/lint.sh FILE..." >&2; exit 2; }
# The include path of libnl-route-3 (daemon/netdev/), as the Makefile finds it.
flags=(-D_GNU_SOURCE -Idaemon -Ikmod-helpers $(pkg-config --cflags-only-I libnl-route-3.0 2>/dev/null || echo -I/usr/include/libnl3))
flags+=($(pkg-config --cflags-only-I libpq 2>/dev/null || echo -I/usr/include/postgresql))
passed=0 failed=0
cppcheck_out=$(mktemp)
out=$(mktemp)
trap 'rm -f "$cppcheck_out" "$out"' EXIT

verdict() {   # tool, status, output file
    if [ "$2" -eq 0 ] && ! grep -qE '(warning|error):' "$3"; then
        echo "PASS $1"
        passed=$((passed + 1))
    else
        cat "$3"
        echo "FAIL $1"
        failed=$((failed + 1))
    fi
}

# cppcheck runs in the background while clang-tidy runs, as one process: with its
# own -j 2 (a process per file) cppcheck took four times as long on two cores.
cppcheck_pid=
if command -v cppcheck >/dev/null; then
    cppcheck --quiet --enable=warning,performance,portability --std=c11 --inline-suppr \
        --error-exitcode=1 "${flags[@]}" "$@" >"$cppcheck_out" 2>&1 &
    cppcheck_pid=$!
else
    echo "cppcheck is not installed (make deps)" >"$cppcheck_out"
fi

if command -v clang-tidy >/dev/null; then
    # The largest files first, so that none is left running alone at the end.
    ls -S -- "$@" | xargs -P 2 -I{} clang-tidy --quiet {} -- "${flags[@]}" -std=gnu11 \
        >"$out" 2>/dev/null
    tidy_status=$?
else
    echo "clang-tidy is not installed (make deps)" >"$out"
    tidy_status=1
fi

cppcheck_status=1
[ -z "$cppcheck_pid" ] || { wait "$cppcheck_pid"; cppcheck_status=$?; }
verdict cppcheck "$cppcheck_status" "$cppcheck_out"
verdict clang-tidy "$tidy_status" "$out"

echo "lint: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
