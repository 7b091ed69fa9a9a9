#!/usr/bin/env bash
# Second factor in the journal: under systemd (stderr is the journal's stream) a lock
# is one entry with the lock MESSAGE_ID and IDENTITY, USER, SOURCE_ADDRESS, FAILURES,
# LOCKED_UNTIL; every failure and success has its own MESSAGE_ID at lower priority.
# journald is played by a datagram socket at /run/systemd/journal/socket inside a
# private mount namespace (as in ../test_journal.sh).
source "$(dirname "$0")/lib.sh"

command -v unshare >/dev/null || fail "unshare (util-linux) is needed"
id_lock=f21362cc05df43b08e83c1919a35bdb0
id_failed=fb499096394045d19af0a79d8e42d6fe
id_success=acaa087e013b45d4a9627ee425bfb762

sf_alice_vpn "max_failures = 3"
conf=$SF_CONF u_alice=$SF_USER

start_ktlstund_with_journal "$conf"
journal="$TEST_DIR/journal.out"
DAEMON_LOGS+=("$journal")

sf_expect_login "$conf" c-alice "$(sf_hotp 0)" 0 "Access granted" "login"
for code in 111111 222222 333333; do
    sf_login "$conf" c-alice "$code" "$TEST_DIR/wrong.out"
done
assert_contains "$(cat "$TEST_DIR/wrong.out")" "Locked" "third wrong code"
assert_log "$journal" "MESSAGE_ID=$id_lock" "no lock entry in the journal"
stop_ktlstund_with_journal

# Each datagram is one line: "MS FIELD=...|FIELD=...|"; make every field start with '|'.
entry() { echo "|$(grep "MESSAGE_ID=$1" "$journal" | sed -n "${2:-1}p" | cut -d' ' -f2-)"; }
assert_eq "$(grep -c "MESSAGE_ID=$id_lock" "$journal")" 1 "lock entries"
lock=$(entry "$id_lock")
for field in "PRIORITY=4" "SYSLOG_IDENTIFIER=ktlstund" "TUNNEL=vpn" "IDENTITY=alice" \
    "USER=$u_alice" "SOURCE_ADDRESS=127.0.0.1" "FAILURES=3" "LOCK_KIND=identity" "LOCK_LEVEL=1" \
    "MESSAGE=second-factor lock: tunnel=vpn identity=\"alice\" user=$u_alice source=127.0.0.1 failures=3 "; do
    assert_contains "$lock" "|$field" "lock journal field"
done
[[ $lock =~ \|LOCKED_UNTIL=20[0-9-]+T[0-9:]+Z\| ]] || fail "no LOCKED_UNTIL in the lock entry: $lock"
assert_eq "$(grep -c "MESSAGE_ID=$id_failed" "$journal")" 3 "failure entries"
failure=$(entry "$id_failed" 2)
for field in "PRIORITY=5" "IDENTITY=alice" "USER=$u_alice" "SOURCE_ADDRESS=127.0.0.1" "FAILURES=2/3"; do
    assert_contains "$failure" "|$field" "failure journal field"
done
success=$(entry "$id_success")
for field in "PRIORITY=6" "IDENTITY=alice" "USER=$u_alice" "SOURCE_ADDRESS=127.0.0.1" "GRANT_UNTIL=20"; do
    assert_contains "$success" "|$field" "success journal field"
done
assert_no_log "$journal" "MESSAGE=.*$(sf_hotp 0)" "a one-time password reached the journal"
