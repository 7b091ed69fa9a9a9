#!/usr/bin/env bash
# `ktlstun disconnect IDENTITY|ADDRESS` ends the matching live tunnels in every worker,
# old generations included, prints how many it ended, and each ends without
# close_notify with "access withdrawn: disconnected by an administrator" in its audit
# line; other connections stay. Only root or the daemon's user may ask.
source "$(dirname "$0")/lib.sh"

echo_port=$(free_port)
p_srv=$(free_port) p_other=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"

conf="$TEST_DIR/ktlstund.ini"
{
    global_section
    server_tunnel srv "$p_srv" "$echo_port"
    server_tunnel other "$p_other" "$echo_port"
} >"$conf"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID

# disconnect KEY EXPECTED_COUNT MESSAGE: the command succeeds and reports the count.
disconnect() {
    local out rc=0
    out=$("$KTLSTUN" disconnect "$1" -c "$conf" 2>&1) || rc=$?
    [ "$rc" = 0 ] || fail "$3: ktlstun disconnect $1 exited $rc: $out"
    assert_contains "$out" "ended $2 tunnel" "$3"
}

hold alice-1 "127.0.0.1:$p_srv" "$PKI/alice.pem" "$PKI/alice.key"
# A reload between the two: alice-1 is served by a worker of the old generation.
assert_eq "$(reload "$pid" "$log")" reloaded "reload"
hold alice-2 "127.0.0.1:$p_other" "$PKI/alice.pem" "$PKI/alice.key"
hold mallory-1 "127.0.0.1:$p_srv" "$PKI/mallory.pem" "$PKI/mallory.key"
hold mallory-2 "127.0.0.1:$p_other" "$PKI/mallory.pem" "$PKI/mallory.key"

note "by CN: both of alice's tunnels, in the old and the new generation"
disconnect alice 2 "disconnect alice"
wait_hold_ended alice-1 "$(scale 5)" "disconnect alice (old generation)"
wait_hold_ended alice-2 "$(scale 5)" "disconnect alice (new generation)"
assert_log "$log" "info: audit tunnel=srv .*subject=\"CN=alice,OU=eng,O=ktlstun test\" .*close=\"access withdrawn: disconnected by an administrator\"" \
    "alice's audit line on [srv]"
assert_log "$log" "info: audit tunnel=other .*subject=\"CN=alice,OU=eng,O=ktlstun test\" .*close=\"access withdrawn: disconnected by an administrator\"" \
    "alice's audit line on [other]"
sleep 1
assert_hold_open mallory-1 "disconnect alice"
assert_hold_open mallory-2 "disconnect alice"

note "nothing matches: nothing ends"
disconnect nobody 0 "disconnect nobody"
sleep 1
assert_hold_open mallory-1 "disconnect nobody"

note "only root or the daemon's user may disconnect"
if command -v setpriv >/dev/null; then
    rc=0
    out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$KTLSTUN" disconnect mallory -c "$conf" 2>&1) || rc=$?
    [ "$rc" != 0 ] || fail "nobody could run ktlstun disconnect: $out"
    sleep 1
    assert_hold_open mallory-1 "disconnect as nobody"
fi

note "by certificate fingerprint, then by address"
disconnect "$(cat "$PKI/mallory.sha256")" 2 "disconnect by fingerprint"
wait_hold_ended mallory-1 "$(scale 5)" "disconnect by fingerprint"
wait_hold_ended mallory-2 "$(scale 5)" "disconnect by fingerprint"
hold alice-3 "127.0.0.1:$p_srv" "$PKI/alice.pem" "$PKI/alice.key"
disconnect 127.0.0.1 1 "disconnect by address"
wait_hold_ended alice-3 "$(scale 5)" "disconnect by address"

note "no daemon: it says so"
stop_ktlstund "$pid"
rc=0
out=$("$KTLSTUN" disconnect alice -c "$conf" 2>&1) || rc=$?
assert_eq "$rc" 1 "ktlstun disconnect without a daemon"
assert_contains "$out" "not running" "ktlstun disconnect without a daemon"
note "ktlstun disconnect ok"
