#!/usr/bin/env bash
# `ktlstun revoke` withdraws second-factor grants on one gateway: alice's live tunnel
# carrying data ends within a second, with "revoked by an administrator" in the
# audit line and the helper's log, and her next data connection is refused until she
# logs in again, which then works; bob's tunnel stays. With --tunnel only that
# tunnel's grant goes; a SHA-256 fingerprint (as openssl prints it) names one
# certificate; an identity with no grant revokes 0, which is said and no error; a
# tunnel the configuration lacks is a usage error; with no daemon running it says so
# and exits 1.
source "$(dirname "$0")/lib.sh"

sf_make_ca
sf_cert alice
sf_cert bob
sf_user alice; u_alice=$SF_USER
sf_user bob; u_bob=$SF_USER
sf_pam_dir "$TEST_DIR/pam.d" "$TEST_DIR/oath"
sf_enrol "$TEST_DIR/oath" "$u_alice" HOTP
sf_enrol "$TEST_DIR/oath" "$u_bob" HOTP
printf 'cn:alice %s\ncn:bob %s\n' "$u_alice" "$u_bob" >"$TEST_DIR/users.map"

echo_port=$(free_port) p_vpn=$(free_port) p_other=$(free_port)
c_vpn=$(free_port) c_other=$(free_port) c_bob=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
conf="$TEST_DIR/ktlstund.ini"
{
    global_section
    sf_gated_tunnel vpn "$p_vpn" "$echo_port"
    sf_gated_tunnel other "$p_other" "$echo_port"
    sf_client_tunnel c-vpn "$c_vpn" "$p_vpn" alice
    sf_client_tunnel c-other "$c_other" "$p_other" alice
    sf_client_tunnel c-bob "$c_bob" "$p_vpn" bob
} >"$conf"
log="$TEST_DIR/ktlstund.log"

# revoke OUTFILE ARGS...: `ktlstun revoke ARGS -c $conf`, stdout and stderr in OUTFILE,
# exit status in RC.
revoke() {
    RC=0
    "$KTLSTUN" revoke "${@:2}" -c "$conf" >"$1" 2>&1 || RC=$?
}

note "no daemon running: said, exit 1"
revoke "$TEST_DIR/stopped.out" alice
assert_eq "$RC" 1 "ktlstun revoke's exit status with no daemon"
assert_contains "$(cat "$TEST_DIR/stopped.out")" "ktlstund is not running" "what revoke says with no daemon"
revoke "$TEST_DIR/usage.out"
assert_eq "$RC" 2 "ktlstun revoke without an identity"

start_ktlstund "$conf" "$log"

note "alice logs in on [vpn] and [other], bob on [vpn]; alice's tunnel carries data"
sf_expect_login "$conf" c-vpn "$(sf_hotp 0)" 0 "Access granted" "alice's login on [vpn]"
sf_expect_login "$conf" c-other "$(sf_hotp 1)" 0 "Access granted" "alice's login on [other]"
sf_expect_login "$conf" c-bob "$(sf_hotp 0)" 0 "Access granted" "bob's login on [vpn]"
held=$(free_port)
socat "TCP-LISTEN:$held,bind=127.0.0.1,reuseaddr" \
    "OPENSSL:127.0.0.1:$p_vpn,cert=$TEST_DIR/alice.pem,key=$TEST_DIR/user.key,cafile=$PKI/ca.pem,commonname=localhost" &
PIDS+=($!)
wait_listening "$held"
coproc alice_vpn { socat - "TCP:127.0.0.1:$held"; }
alice_out=${alice_vpn[0]} alice_in=${alice_vpn[1]}
for i in 1 2 3; do
    echo "alice-$i-$RANDOM" >&"$alice_in"
    read -r -t 5 line <&"$alice_out" || fail "alice's tunnel through [vpn] does not echo (line $i)"
done
hold alice-other "127.0.0.1:$p_other" "$TEST_DIR/alice.pem" "$TEST_DIR/user.key"
hold bob-vpn "127.0.0.1:$p_vpn" "$TEST_DIR/bob.pem" "$TEST_DIR/user.key"
bob_pid=$HOLD_PID

note "--tunnel other: alice's tunnel on [other] ends, hers on [vpn] stays"
revoke "$TEST_DIR/other.out" alice --tunnel other
assert_eq "$RC" 0 "revoke alice --tunnel other: $(cat "$TEST_DIR/other.out")"
assert_contains "$(cat "$TEST_DIR/other.out")" "revoked 1 grant of alice on tunnel other" "what revoke --tunnel says"
wait_hold_ended alice-other "$(scale 2)" "alice's tunnel on [other] after the revoke"
assert_log "$log" 'info: audit tunnel=other .*subject="CN=alice" .*close="access withdrawn: second-factor grant of alice \(sha256 [0-9a-f]{16}…\) revoked by an administrator"' \
    "the audit line of the tunnel on [other]"
echo "still-$RANDOM" >&"$alice_in"
read -r -t 5 line <&"$alice_out" || fail "alice's tunnel through [vpn] ended with the revoke on [other]"
sf_data "127.0.0.1:$p_vpn" alice "vpn-$RANDOM" || fail "alice's grant on [vpn] went with --tunnel other"
sf_expect_denied "127.0.0.1:$p_other" alice "alice on [other] after its revoke"

note "revoke alice: her tunnel carrying data ends within a second, bob's stays"
started=$(now_ms)
revoke "$TEST_DIR/alice.out" alice
assert_eq "$RC" 0 "revoke alice: $(cat "$TEST_DIR/alice.out")"
assert_contains "$(cat "$TEST_DIR/alice.out")" "revoked 1 grant of alice:" "what revoke says"
rc=0
read -r -t "$(scale 2)" line <&"$alice_out" || rc=$?
[ "$rc" -gt 0 ] && [ "$rc" -le 128 ] || fail "alice's tunnel through [vpn] outlived the revoke (read: $rc)"
note "alice's tunnel ended $(($(now_ms) - started)) ms after ktlstun revoke"
assert_log "$log" 'an administrator revoked the second-factor grants of "alice" \(1 live\)' "the helper logs the revoke"
assert_log "$log" 'info: audit tunnel=vpn .*subject="CN=alice" .*close="access withdrawn: second-factor grant of alice \(sha256 [0-9a-f]{16}…\) revoked by an administrator"' \
    "the audit line of alice's tunnel on [vpn]"
sf_expect_denied "127.0.0.1:$p_vpn" alice "alice's next data connection after the revoke"
assert_hold_open bob-vpn "bob's tunnel after alice's revoke"
sf_data "127.0.0.1:$p_vpn" bob "bob-$RANDOM" || fail "bob's grant went with alice's"

note "a new login lets alice in again"
sf_expect_login "$conf" c-vpn "$(sf_hotp 2)" 0 "Access granted" "alice's login after the revoke"
sf_data "127.0.0.1:$p_vpn" alice "again-$RANDOM" || fail "alice's new login does not admit her"

note "by fingerprint, as openssl prints it: alice's certificate only"
fingerprint=$(openssl x509 -in "$TEST_DIR/alice.pem" -noout -fingerprint -sha256 | cut -d= -f2)
[ ${#fingerprint} = 95 ] || fail "unexpected fingerprint '$fingerprint'"
hold alice-fp "127.0.0.1:$p_vpn" "$TEST_DIR/alice.pem" "$TEST_DIR/user.key"
revoke "$TEST_DIR/fp.out" "$fingerprint" --tunnel vpn
assert_eq "$RC" 0 "revoke by fingerprint: $(cat "$TEST_DIR/fp.out")"
assert_contains "$(cat "$TEST_DIR/fp.out")" "revoked 1 grant of $fingerprint on tunnel vpn" "what revoke by fingerprint says"
wait_hold_ended alice-fp "$(scale 2)" "alice's tunnel after the revoke by fingerprint"
sf_expect_denied "127.0.0.1:$p_vpn" alice "alice after the revoke by fingerprint"
assert_hold_open bob-vpn "bob's tunnel after the revoke of alice's fingerprint"
sf_data "127.0.0.1:$p_vpn" bob "bob-fp-$RANDOM" || fail "the revoke of alice's fingerprint took bob's grant"

note "by subject, as the audit line writes it: a subject with a CN stands for its CN"
sf_expect_login "$conf" c-vpn "$(sf_hotp 3)" 0 "Access granted" "alice's login after the revoke by fingerprint"
hold alice-subject "127.0.0.1:$p_vpn" "$TEST_DIR/alice.pem" "$TEST_DIR/user.key"
revoke "$TEST_DIR/two-cn.out" "CN=alice,CN=bob"
assert_eq "$RC" 2 "revoke of a subject with two CNs: $(cat "$TEST_DIR/two-cn.out")"
assert_contains "$(cat "$TEST_DIR/two-cn.out")" "names more than one CN" "what revoke says of two CNs"
assert_hold_open alice-subject "alice's tunnel after the refused revoke"
revoke "$TEST_DIR/subject.out" "CN=alice,O=Example" --tunnel vpn
assert_eq "$RC" 0 "revoke by subject: $(cat "$TEST_DIR/subject.out")"
assert_contains "$(cat "$TEST_DIR/subject.out")" "revoked 1 grant of alice on tunnel vpn" "what revoke by subject says"
wait_hold_ended alice-subject "$(scale 2)" "alice's tunnel after the revoke by subject"
sf_expect_denied "127.0.0.1:$p_vpn" alice "alice after the revoke by subject"
assert_hold_open bob-vpn "bob's tunnel after the revoke of alice's subject"

note "an identity with no grant: 0 revoked, said, no error"
revoke "$TEST_DIR/nobody.out" nobody
assert_eq "$RC" 0 "revoke nobody: $(cat "$TEST_DIR/nobody.out")"
assert_contains "$(cat "$TEST_DIR/nobody.out")" "no grant of nobody to revoke here (0 revoked)" "what revoke says of 0"
revoke "$TEST_DIR/again.out" alice
assert_contains "$(cat "$TEST_DIR/again.out")" "(0 revoked)" "a second revoke of alice"
revoke "$TEST_DIR/nope.out" alice --tunnel nope
assert_eq "$RC" 2 "revoke on a tunnel the configuration lacks"
assert_contains "$(cat "$TEST_DIR/nope.out")" "tunnel nope is not in the configuration" "what revoke says of it"
assert_hold_open bob-vpn "bob's tunnel after all of alice's revokes"

kill "$bob_pid"
stop_ktlstund "$KTLSTUND_PID"

note "the daemon stopped: said, exit 1"
revoke "$TEST_DIR/stopped2.out" alice
assert_eq "$RC" 1 "ktlstun revoke's exit status after the stop"
assert_contains "$(cat "$TEST_DIR/stopped2.out")" "ktlstund is not running (nothing answers on $TEST_DIR/run/second-factor.sock)" \
    "what revoke says after the stop"
