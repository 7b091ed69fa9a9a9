#!/usr/bin/env bash
# Access withdrawn by a reload ends the live tunnels it no longer admits, within a few
# seconds, without close_notify, with the reason in the audit line:
#   - the CRL reloaded with alice revoked ends alice's connection on the tunnel with
#     that CRL (not her connection on a tunnel without it, not mallory's);
#   - allow_cn reloaded without mallory ends mallory's connection, even though it has
#     already outlived one reload (its worker is two generations old);
#   - a tunnel removed from the configuration ends its connections;
#   - a reload that changes nothing for a connection leaves it alone.
source "$(dirname "$0")/lib.sh"

echo_port=$(free_port)
p_srv=$(free_port) p_keep=$(free_port) p_gone=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
cp "$PKI/crl.pem" "$TEST_DIR/crl.pem"

conf="$TEST_DIR/ktlstund.ini"
# write_conf ALLOW_CN WITH_GONE: [srv] (crl, allow_cn), [keep] (no rules) and, with
# WITH_GONE = yes, [gone].
write_conf() {
    {
        global_section
        server_tunnel srv "$p_srv" "$echo_port" "crl = $TEST_DIR/crl.pem" "allow_cn = $1"
        server_tunnel keep "$p_keep" "$echo_port"
        if [ "$2" = yes ]; then
            server_tunnel gone "$p_gone" "$echo_port"
        fi
    } >"$conf"
}
write_conf "alice, mallory" yes
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID

hold alice-srv "127.0.0.1:$p_srv" "$PKI/alice.pem" "$PKI/alice.key"
hold mallory-srv "127.0.0.1:$p_srv" "$PKI/mallory.pem" "$PKI/mallory.key"
hold alice-gone "127.0.0.1:$p_gone" "$PKI/alice.pem" "$PKI/alice.key"
hold mallory-keep "127.0.0.1:$p_keep" "$PKI/mallory.pem" "$PKI/mallory.key"
keep_pid=$HOLD_PID

note "a reload that changes nothing ends nothing"
assert_eq "$(reload "$pid" "$log")" reloaded "reload without changes"
sleep 1.5
for name in alice-srv mallory-srv alice-gone mallory-keep; do
    assert_hold_open "$name" "a reload that withdrew nothing"
done

note "CRL reloaded with alice revoked: her connection on [srv] ends"
cat "$PKI/crl-alice.pem" >"$TEST_DIR/crl.pem"
assert_eq "$(reload "$pid" "$log")" reloaded "reload with alice revoked"
reloaded_ms=$(now_ms)
wait_hold_ended alice-srv "$(scale 5)" "revoked alice"
note "alice-srv ended $(($(now_ms) - reloaded_ms)) ms after the reload: $(hold_outcome alice-srv)"
assert_log "$log" "info: audit tunnel=srv peer=127\\.0\\.0\\.1:[0-9]+ subject=\"CN=alice,OU=eng,O=ktlstun test\" .*close=\"access withdrawn: certificate revoked by the CRL reloaded at [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9:]{8}Z \\(CRL $TEST_DIR/crl\\.pem\\) \\(CN=alice\\)\"" \
    "alice's audit line names the revocation"
sleep 1
for name in mallory-srv alice-gone mallory-keep; do
    assert_hold_open "$name" "the CRL revoking alice"
done

note "allow_cn reloaded without mallory: mallory's connection on [srv] ends"
write_conf alice yes
assert_eq "$(reload "$pid" "$log")" reloaded "reload without mallory in allow_cn"
wait_hold_ended mallory-srv "$(scale 5)" "mallory out of allow_cn"
assert_log "$log" "info: audit tunnel=srv peer=127\\.0\\.0\\.1:[0-9]+ subject=\"CN=mallory,O=ktlstun test\" .*close=\"access withdrawn: certificate no longer matches the allow rules reloaded at [0-9T:Z-]+: CN=mallory not in allow_cn\"" \
    "mallory's audit line names the allow rules"
sleep 1
for name in alice-gone mallory-keep; do
    assert_hold_open "$name" "allow_cn without mallory on [srv]"
done

note "[gone] removed from the configuration: its connection ends"
write_conf alice no
assert_eq "$(reload "$pid" "$log")" reloaded "reload without [gone]"
wait_hold_ended alice-gone "$(scale 5)" "tunnel removed"
assert_log "$log" "info: audit tunnel=gone .*close=\"access withdrawn: tunnel gone is no longer in the configuration reloaded at [0-9T:Z-]+\"" \
    "the removed tunnel's audit line"
sleep 1
assert_hold_open mallory-keep "[gone] removed"
assert_eq "$(audit_lines "$log" keep | wc -l)" 0 "audit lines of [keep], whose connection nothing withdrew"

# Its client ends the last connection, so the stop need not wait out shutdown_timeout.
kill "$keep_pid"
stop_ktlstund "$pid"
note "access withdrawn by reload ok"
