#!/usr/bin/env bash
# run.sh BUILD_DIR [TEST_NAME...] — the end-to-end suite against real peers, on loopback.
#
# Generates one PKI for the run, then runs each tests/integration/test_*.sh and
# tests/integration/*/test_*.sh (or the ones named) one after the other, each in its own
# process group and temp dir, with:
#   KTLSTUND KTLSTUN   the binaries under test      TOOLS   BUILD_DIR/tools
#   PKI                the PKI (see pki.sh)         TEST_DIR  the test's own temp dir
#   SLOW               1, or 3 for sanitizer builds (tests scale their waits by it)
# A test's name is its path below tests/integration without "test_" and ".sh"
# (second_factor/test_lockout.sh is second_factor/lockout); a TEST_NAME given without
# its folder names the one test of that name in a subfolder when none is at the top.
# Prints "PASS name" or "FAIL name" (with the tail of the test's output) per test and
# ends with exactly one line "integration: N passed, N failed". Exit 1 if any failed or
# none ran. A test also fails when any log in its dir shows an ASan/UBSan/LSan report.
# KEEP=1 keeps every temp dir (failed tests' dirs are always kept).
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run.sh BUILD_DIR [TEST_NAME...]}
shift
build=$(cd "$build" 2>/dev/null && pwd) || { echo "run.sh: no build dir $1" >&2; echo "integration: 0 passed, 1 failed"; exit 1; }

export KTLSTUND="$build/ktlstund" KTLSTUN="$build/ktlstun" TOOLS="$build/tools"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export SLOW=1
if [ -x "$KTLSTUND" ] && grep -qa __asan_init "$KTLSTUND"; then
    SLOW=3
fi
export TEST_TIMEOUT=${TEST_TIMEOUT:-$((120 * SLOW))}

run_dir=$(mktemp -d /tmp/ktlstun-integration.XXXXXX)
export PKI="$run_dir/pki"
suite_start=$(date +%s)

passed=0
failed=0
if ! "$here/pki.sh" "$PKI" >"$run_dir/pki.out" 2>&1; then
    echo "FAIL pki"
    tail -n 30 "$run_dir/pki.out" | sed 's/^/    /'
    echo "integration: 0 passed, 1 failed"
    exit 1
fi
sed 's/^/# /' "$run_dir/pki.out"

# test_path NAME: the script NAME stands for (it need not exist).
test_path() {
    local name=${1%.sh} dir= base found
    if [[ $name == */* ]]; then
        dir=${name%/*}/
        name=${name##*/}
    fi
    base=test_${name#test_}.sh
    if [ -z "$dir" ] && [ ! -f "$here/$base" ]; then
        found=("$here"/*/"$base")
        if [ "${#found[@]}" = 1 ] && [ -f "${found[0]}" ]; then
            echo "${found[0]}"
            return
        fi
    fi
    echo "$here/$dir$base"
}

# test_name PATH: the name run.sh shows for the script at PATH.
test_name() {
    local rel=${1#"$here"/} dir=
    [[ $rel == */* ]] && dir=${rel%/*}/
    rel=$(basename "$rel" .sh)
    echo "$dir${rel#test_}"
}

tests=()
if [ $# -gt 0 ]; then
    for name in "$@"; do
        tests+=("$(test_path "$name")")
    done
else
    # KTLSTUN_SKIP_TESTS: names left out of a whole run (make check's second run leaves
    # out those that read the sources rather than exercise the build).
    for test in "$here"/test_*.sh "$here"/*/test_*.sh; do
        [[ " ${KTLSTUN_SKIP_TESTS:-} " == *" $(test_name "$test") "* ]] || tests+=("$test")
    done
fi

for test in "${tests[@]}"; do
    name=$(test_name "$test")
    if [ ! -f "$test" ]; then
        echo "FAIL $name"
        echo "    no such test: $test"
        failed=$((failed + 1))
        continue
    fi
    export TEST_DIR="$run_dir/$name"
    mkdir -p "$TEST_DIR"
    start=$(date +%s%N)
    # timeout makes itself a process-group leader: whatever the test leaves behind is
    # in that group and is killed below, by the group's id.
    timeout -k 10 "$TEST_TIMEOUT" bash "$test" >"$TEST_DIR/output" 2>&1 </dev/null &
    group=$!
    wait "$group"
    rc=$?
    kill -KILL -- "-$group" 2>/dev/null
    elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
    sanitizer=$(grep -l -r -D skip -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$TEST_DIR" 2>/dev/null | head -5)
    if [ "$rc" = 124 ]; then
        echo "test timed out after ${TEST_TIMEOUT}s" >>"$TEST_DIR/output"
    fi
    if [ "$rc" = 0 ] && [ -z "$sanitizer" ]; then
        printf 'PASS %s (%d.%03d s)\n' "$name" $((elapsed / 1000)) $((elapsed % 1000))
        passed=$((passed + 1))
        [ "${KEEP:-0}" = 1 ] || rm -rf "$TEST_DIR"
    else
        printf 'FAIL %s (%d.%03d s, exit %s)\n' "$name" $((elapsed / 1000)) $((elapsed % 1000)) "$rc"
        tail -n 40 "$TEST_DIR/output" | sed 's/^/    /'
        for f in $sanitizer; do
            echo "    sanitizer report in $f:"
            grep -m 1 -A 25 -E 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$f" | sed 's/^/      /'
        done
        echo "    (files kept in $TEST_DIR)"
        failed=$((failed + 1))
    fi
done

if [ "$failed" = 0 ] && [ "${KEEP:-0}" != 1 ]; then
    rm -rf "$run_dir"
fi
echo "# suite took $(( $(date +%s) - suite_start )) s (build $build)"
echo "integration: $passed passed, $failed failed"
[ "$failed" = 0 ] && [ "$passed" -gt 0 ]
