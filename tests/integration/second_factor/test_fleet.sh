#!/usr/bin/env bash
# Two gateways sharing one PostgreSQL state store behave like one: a login through
# gateway A admits alice's data connections wherever the TCP balancer (HAProxy) sends
# them; with the store stopped, logins are refused with the reason while granted
# traffic goes on, and both gateways come back by themselves; wrong codes alternated
# between the gateways lock alice after max_failures in all, with one alert, and the
# lock withdraws her grant everywhere, live tunnel included; `ktlstun unlock` on the
# other gateway lifts it; a lock both gateways make at the same moment raises one
# alert; a standby promoted after the primary stops is followed within
# seconds, and a gateway started afterwards knows the lock; `ktlstun unlock` on a
# machine whose daemon is stopped unlocks through the store; `ktlstun revoke` on one
# gateway ends alice's tunnel held by the other within a second and withdraws her
# grant there, and with its daemon stopped it revokes through the store, for good; a
# gateway restarted keeps a grant made after a lifted lock; a lock made on A is lifted
# by `ktlstun unlock` on B.
source "$(dirname "$0")/lib.sh"
source "$SF_DIR/../pg_lib.sh"
trap 'sf_rc=$?; sf_cleanup; pg_cleanup; (exit $sf_rc); cleanup' EXIT

note "a primary, its standby, the gateways' user ktlstun"
pg_start_primary main
pg_start_standby spare main
store=$(pg_conninfo main spare)

sf_make_ca
sf_cert alice
sf_user alice
sf_pam_dir "$TEST_DIR/pam.d" "$TEST_DIR/oath"
sf_enrol "$TEST_DIR/oath" "$SF_USER" HOTP
printf 'cn:alice %s\n' "$SF_USER" >"$TEST_DIR/users.map"
echo_port=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"

# gateway NAME [GATEWAY_NAME]: $TEST_DIR/NAME.ini, a gateway (gateway_name gw-NAME
# unless given) with the gated tunnel [vpn] in front of the echo backend, alice's client
# tunnel [c-alice] to it, metrics for /readyz.
declare -A vpn_port metrics_port
gateway() {
    local name=$1 client_port
    vpn_port[$name]=$(free_port) metrics_port[$name]=$(free_port) client_port=$(free_port)
    mkdir -p "$TEST_DIR/$name"
    {
        ini_section global "log_level = info" "state_dir = $TEST_DIR/$name/state" \
            "runtime_dir = $TEST_DIR/$name/run" "workers = 2" "shutdown_timeout = 5" \
            "state_store = $store" "gateway_name = ${2:-gw-$name}" \
            "metrics_listen = ${metrics_port[$name]}"
        sf_gated_tunnel vpn "${vpn_port[$name]}" "$echo_port" "max_failures = 3" \
            "alert_command = $TEST_DIR/alert.sh"
        sf_client_tunnel c-alice "$client_port" "${vpn_port[$name]}" alice
    } >"$TEST_DIR/$name.ini"
    mkdir -p "$TEST_DIR/$name/state" "$TEST_DIR/$name/run"
}
mkdir -p "$TEST_DIR/alerts"
printf '#!/bin/sh\nenv | grep "^KTLSTUN_" >"%s/alerts/$$"\n' "$TEST_DIR" >"$TEST_DIR/alert.sh"
chmod +x "$TEST_DIR/alert.sh"
alerts() { find "$TEST_DIR/alerts" -type f | wc -l; }
gateway a
gateway b
readyz() { curl -s "http://127.0.0.1:${metrics_port[$1]}/readyz"; }

start_ktlstund "$TEST_DIR/a.ini" "$TEST_DIR/a.log"
pid_a=$KTLSTUND_PID
start_ktlstund "$TEST_DIR/b.ini" "$TEST_DIR/b.log"
pid_b=$KTLSTUND_PID
assert_log "$TEST_DIR/a.log" "state store: connected to 127\.0\.0\.1:$PG_PORT_main as gateway gw-a" "gateway a connects"
assert_log "$TEST_DIR/b.log" "state store: connected to 127\.0\.0\.1:$PG_PORT_main as gateway gw-b" "gateway b connects"
assert_eq "$(pg_psql main "SELECT string_agg(version::text, ',' ORDER BY version) FROM ktlstun_schema")" "1,2,3" "the schema is created once, migration by migration"
assert_eq "$(pg_psql main "SELECT string_agg(name, ',' ORDER BY name) FROM ktlstun_gateway")" "gw-a,gw-b" \
    "both gateways recorded"
assert_contains "$(readyz a)" "state store: connected to 127.0.0.1:$PG_PORT_main" "/readyz names the store"

note "a third gateway given the name of the first stays away from the store"
gateway c gw-a
start_ktlstund "$TEST_DIR/c.ini" "$TEST_DIR/c.log"
assert_log "$TEST_DIR/c.log" "another gateway named gw-a uses this store" "the name clash is told"
assert_contains "$(readyz c)" "state store: unreachable (another gateway named gw-a" "/readyz of the clashing gateway"
stop_ktlstund "$KTLSTUND_PID"
assert_eq "$(pg_psql main "SELECT count(*) FROM ktlstun_gateway")" 2 "the clashing gateway took no row"

lb_port=$(free_port)
haproxy_tcp_start lb "$lb_port" "${vpn_port[a]}" "${vpn_port[b]}"

note "no grant yet: refused on both, through the balancer too"
sf_expect_denied "127.0.0.1:${vpn_port[b]}" alice "alice before any login, on b"

note "log in through a; data through the balancer, 20 times"
sf_expect_login "$TEST_DIR/a.ini" c-alice "$(sf_hotp 0)" 0 "Access granted" "alice's login through a"
assert_log "$TEST_DIR/b.log" 'state store: alice logged in through gateway gw-a' "b learns the grant"
# One client process for the 20 connections, each a full TLS session of its own with
# alice's certificate: prints how many echoed their token.
echoed=$(python3 - "$lb_port" "$TEST_DIR/alice.pem" "$TEST_DIR/user.key" "$PKI/ca.pem" <<'PY'
import socket, ssl, sys
port, cert, key, ca = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
ok = 0
for i in range(20):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.load_cert_chain(cert, key)
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as raw:
            with ctx.wrap_socket(raw, server_hostname="localhost") as tls:
                token = b"lb-%d\n" % i
                tls.sendall(token)
                got = b""
                while not got.endswith(b"\n"):
                    chunk = tls.recv(64)
                    if not chunk:
                        break
                    got += chunk
                ok += got == token
    except (OSError, ssl.SSLError) as e:
        print("connection %d: %s" % (i, e), file=sys.stderr)
print(ok)
PY
)
assert_eq "$echoed" 20 "data connections through the balancer that echoed"
in_a=$(audit_lines "$TEST_DIR/a.log" vpn | wc -l) in_b=$(audit_lines "$TEST_DIR/b.log" vpn | wc -l)
[ "$in_a" -ge 1 ] && [ "$in_b" -ge 1 ] || fail "the balancer did not use both gateways (a $in_a, b $in_b)"
note "admitted by a $in_a times, by b $in_b times"

note "ktlstun disconnect on a ends alice's tunnel held by b within a second"
held_b=$(free_port)
socat "TCP-LISTEN:$held_b,bind=127.0.0.1,reuseaddr" \
    "OPENSSL:127.0.0.1:${vpn_port[b]},cert=$TEST_DIR/alice.pem,key=$TEST_DIR/user.key,cafile=$PKI/ca.pem,commonname=localhost" &
PIDS+=($!)
wait_listening "$held_b"
coproc on_b { socat - "TCP:127.0.0.1:$held_b"; }
on_b_out=${on_b[0]}
echo "on-b-$RANDOM" >&"${on_b[1]}"
read -r -t 5 line <&"$on_b_out" || fail "the tunnel held through b does not echo"
started=$(now_ms)
"$KTLSTUN" disconnect alice -c "$TEST_DIR/a.ini" >"$TEST_DIR/disconnect.out" 2>&1 ||
    fail "ktlstun disconnect on a: $(cat "$TEST_DIR/disconnect.out")"
rc=0
read -r -t "$(scale 2)" line <&"$on_b_out" || rc=$?
[ "$rc" -gt 0 ] && [ "$rc" -le 128 ] || fail "the tunnel held through b outlived the disconnect on a (read: $rc)"
note "the tunnel through b ended $(($(now_ms) - started)) ms after ktlstun disconnect on a"
assert_log "$TEST_DIR/b.log" 'state store: gateway gw-a asks to disconnect alice' "b's log names the disconnect"
sf_data "127.0.0.1:${vpn_port[b]}" alice "after-disconnect-$RANDOM" || fail "a disconnect withdrew the grant"

note "the store stopped: logins refused with the reason, granted traffic goes on"
pg_stop spare immediate
pg_stop main immediate
assert_log "$TEST_DIR/a.log" "state store: .* unreachable: .*new logins are refused" "a notices" 10
assert_log "$TEST_DIR/b.log" "state store: .* unreachable: .*new logins are refused" "b notices" 10
assert_contains "$(readyz b)" "state store: unreachable" "/readyz of b says so"
sf_expect_login "$TEST_DIR/b.ini" c-alice "$(sf_hotp 1)" 3 "shared state store" "a login while the store is away"
for i in 1 2 3 4; do
    sf_data "127.0.0.1:$lb_port" alice "away-$i-$RANDOM" || fail "granted traffic refused while the store is away"
done

note "the store back: both reconnect without a restart"
pg_start main
pg_start spare
wait_for_log "$TEST_DIR/a.log" "state store: connected to .* as gateway gw-a" 10 2 || fail "a does not reconnect"
wait_for_log "$TEST_DIR/b.log" "state store: connected to .* as gateway gw-b" 10 2 || fail "b does not reconnect"
sf_expect_login "$TEST_DIR/b.ini" c-alice "$(sf_hotp 1)" 0 "Access granted" "a login once the store is back"

note "wrong codes alternated between the gateways: one lock after 3 in all, one alert"
held_port=$(free_port)
socat "TCP-LISTEN:$held_port,bind=127.0.0.1,reuseaddr" \
    "OPENSSL:127.0.0.1:${vpn_port[a]},cert=$TEST_DIR/alice.pem,key=$TEST_DIR/user.key,cafile=$PKI/ca.pem,commonname=localhost" &
PIDS+=($!)
wait_listening "$held_port"
coproc held { socat - "TCP:127.0.0.1:$held_port"; }
echo "held-$RANDOM" >&"${held[1]}"
read -r -t 5 line <&"${held[0]}" || fail "the held tunnel through a does not echo"
sf_expect_login "$TEST_DIR/b.ini" c-alice 000001 1 "2 more failed attempts" "first wrong code, on b"
sf_expect_login "$TEST_DIR/a.ini" c-alice 000002 1 "1 more failed attempt" "second wrong code, on a, counts b's"
sf_expect_login "$TEST_DIR/b.ini" c-alice 000003 1 "Locked: too many failed attempts" "third wrong code, on b, locks"
assert_log "$TEST_DIR/a.log" 'state store: gateway gw-b withdrew the grants of alice' "a learns the withdrawal" 2
sf_expect_login "$TEST_DIR/a.ini" c-alice "$(sf_hotp 2)" 1 "Locked" "the right code on a while the lock holds"
sleep 1
assert_eq "$(alerts)" 1 "alerts raised across both gateways"
sf_expect_denied "127.0.0.1:${vpn_port[a]}" alice "alice on a after the lock on b"
# The coproc's variables go when it ends, as it does once the tunnel is cut.
if [ -n "${held[0]:-}" ] && echo "after-$RANDOM" >&"${held[1]}" 2>/dev/null &&
    read -r -t 3 line <&"${held[0]}"; then
    fail "the tunnel alice held through a still answers after the lock: $line"
fi

note "ktlstun unlock on a lifts the lock made on b"
"$KTLSTUN" unlock alice -c "$TEST_DIR/a.ini" >"$TEST_DIR/unlock.out" 2>&1 || fail "unlock on a: $(cat "$TEST_DIR/unlock.out")"
assert_log "$TEST_DIR/b.log" 'state store: gateway gw-a unlocked "alice"' "b learns the unlock" 2
sf_expect_login "$TEST_DIR/b.ini" c-alice "$(sf_hotp 2)" 0 "Access granted" "alice on b after the unlock on a"

note "a failure the store refuses to take is kept and published later, never lost"
pg_psql main "ALTER TABLE ktlstun_event ADD CONSTRAINT test_refuses_failures CHECK (kind <> 'failure') NOT VALID" >/dev/null
connected_a=$(log_count "$TEST_DIR/a.log" "state store: connected to .* as gateway gw-a")
sf_expect_login "$TEST_DIR/a.ini" c-alice 000010 1 "2 more failed attempts" "a wrong code on a while the store refuses failures"
assert_log "$TEST_DIR/a.log" 'state store: .* unreachable: .*test_refuses_failures' "a drops the store that refused its failure"
sf_expect_login "$TEST_DIR/a.ini" c-alice "$(sf_hotp 3)" 3 "shared state store" "a login on a until its failure is published"
pg_psql main "ALTER TABLE ktlstun_event DROP CONSTRAINT test_refuses_failures" >/dev/null
wait_for_log "$TEST_DIR/a.log" "state store: connected to .* as gateway gw-a" 10 $((connected_a + 1)) ||
    fail "a does not come back once the store takes failures again"
sf_expect_login "$TEST_DIR/b.ini" c-alice 000011 1 "1 more failed attempt" "b counts a's kept failure"
sf_expect_login "$TEST_DIR/b.ini" c-alice "$(sf_hotp 3)" 0 "Access granted" "the right code on b clears the count"

note "a and b lock alice at the same moment: one alert"
# b's store process held still: b counts its own failures only and locks on its own,
# as two gateways do when both lock before either hears of the other.
helper_b=$(pgrep -x ktlstund-pam -P "$pid_b" | head -n 1)
store_b=$(pgrep -x ktlstund-store -P "$helper_b" | head -n 1)
[ -n "$store_b" ] || fail "no store process under b's helper"
kill -STOP "$store_b"
for n in 4 5 6; do
    sf_login "$TEST_DIR/a.ini" c-alice "00000$n" "$TEST_DIR/wrong.$n.out"
done
grep -q "Locked: too many failed attempts" "$TEST_DIR/wrong.6.out" || fail "no lock on a: $(cat "$TEST_DIR/wrong.6.out")"
for n in 7 8 9; do
    sf_login "$TEST_DIR/b.ini" c-alice "00000$n" "$TEST_DIR/wrong.$n.out"
done
grep -q "Locked: too many failed attempts" "$TEST_DIR/wrong.9.out" || fail "no lock on b: $(cat "$TEST_DIR/wrong.9.out")"
kill -CONT "$store_b"
assert_log "$TEST_DIR/b.log" 'state store: the lock of identity alice was alerted by another gateway' \
    "b's alert of the same lock is left to a" 5
sleep 1
assert_eq "$(alerts)" 2 "alerts after the second lock, made on both gateways at once"

note "failover: the primary stops, the standby is promoted, the gateways follow"
pg_wait_replicated spare main
pg_stop main immediate
pg_promote spare
assert_log "$TEST_DIR/a.log" "state store: connected to 127\.0\.0\.1:$PG_PORT_spare as gateway gw-a" "a follows the promoted standby" 15
assert_log "$TEST_DIR/b.log" "state store: connected to 127\.0\.0\.1:$PG_PORT_spare as gateway gw-b" "b follows the promoted standby" 15
assert_eq "$(pg_psql spare "SELECT count(*) FROM ktlstun_event WHERE kind = 'failure'")" 11 \
    "every failure made before the failover is on the new primary"
sf_expect_login "$TEST_DIR/b.ini" c-alice "$(sf_hotp 4)" 1 "Locked" "alice on b after the failover"
note "a restarted after the failover rebuilds its locks from the store"
stop_ktlstund "$pid_a"
start_ktlstund "$TEST_DIR/a.ini" "$TEST_DIR/a.log"
pid_a=$KTLSTUND_PID
wait_for_log "$TEST_DIR/a.log" "state store: connected to 127\.0\.0\.1:$PG_PORT_spare as gateway gw-a" 10 2 ||
    fail "a does not connect after its restart"
sf_expect_login "$TEST_DIR/a.ini" c-alice "$(sf_hotp 4)" 1 "Locked" "alice on the restarted a"

note "ktlstun unlock where no daemon runs goes through the store"
stop_ktlstund "$pid_a"
"$KTLSTUN" unlock alice -c "$TEST_DIR/a.ini" >"$TEST_DIR/unlock2.out" 2>&1 ||
    fail "unlock with a stopped: $(cat "$TEST_DIR/unlock2.out")"
assert_contains "$(cat "$TEST_DIR/unlock2.out")" "sent to every gateway through the shared state store" \
    "what unlock says without a daemon"
wait_for_log "$TEST_DIR/b.log" 'state store: gateway gw-a unlocked "alice"' 5 2 || fail "b does not learn the second unlock"
sf_expect_login "$TEST_DIR/b.ini" c-alice "$(sf_hotp 4)" 0 "Access granted" "alice on b after the unlock from a stopped a"

note "b restarted rebuilds the locks of the last 48 h, lifted ones too, and keeps alice's grant made after them"
stop_ktlstund "$pid_b"
connected_b=$(log_count "$TEST_DIR/b.log" "state store: connected to .* as gateway gw-b")
start_ktlstund "$TEST_DIR/b.ini" "$TEST_DIR/b.log"
pid_b=$KTLSTUND_PID
wait_for_log "$TEST_DIR/b.log" "state store: connected to .* as gateway gw-b" 10 $((connected_b + 1)) ||
    fail "b does not connect after its restart"
sf_data "127.0.0.1:${vpn_port[b]}" alice "after-restart-$RANDOM" ||
    fail "the restarted b replayed a lifted lock and withdrew alice's later grant"

note "ktlstun revoke on b ends alice's tunnel held by a within a second; a refuses her next"
connected_a=$(log_count "$TEST_DIR/a.log" "state store: connected to .* as gateway gw-a")
start_ktlstund "$TEST_DIR/a.ini" "$TEST_DIR/a.log"
pid_a=$KTLSTUND_PID
wait_for_log "$TEST_DIR/a.log" "state store: connected to .* as gateway gw-a" 10 $((connected_a + 1)) ||
    fail "a does not connect after its start"
sf_expect_login "$TEST_DIR/a.ini" c-alice "$(sf_hotp 5)" 0 "Access granted" "alice logs in through the started a"
revoke_a=$(free_port)
socat "TCP-LISTEN:$revoke_a,bind=127.0.0.1,reuseaddr" \
    "OPENSSL:127.0.0.1:${vpn_port[a]},cert=$TEST_DIR/alice.pem,key=$TEST_DIR/user.key,cafile=$PKI/ca.pem,commonname=localhost" &
PIDS+=($!)
wait_listening "$revoke_a"
coproc on_a { socat - "TCP:127.0.0.1:$revoke_a"; }
on_a_out=${on_a[0]}
echo "on-a-$RANDOM" >&"${on_a[1]}"
read -r -t 5 line <&"$on_a_out" || fail "the tunnel alice holds through a does not echo"
started=$(now_ms)
"$KTLSTUN" revoke alice -c "$TEST_DIR/b.ini" >"$TEST_DIR/revoke.out" 2>&1 ||
    fail "ktlstun revoke on b: $(cat "$TEST_DIR/revoke.out")"
assert_contains "$(cat "$TEST_DIR/revoke.out")" "revoked 1 grant of alice" "what revoke on b says"
rc=0
read -r -t "$(scale 2)" line <&"$on_a_out" || rc=$?
[ "$rc" -gt 0 ] && [ "$rc" -le 128 ] || fail "the tunnel held through a outlived the revoke on b (read: $rc)"
note "the tunnel through a ended $(($(now_ms) - started)) ms after ktlstun revoke on b"
assert_log "$TEST_DIR/a.log" 'state store: an administrator on gateway gw-b revoked the grants of alice \(1 live here\)' \
    "a's log names the revoke"
assert_log "$TEST_DIR/a.log" 'info: audit tunnel=vpn .*subject="CN=alice" .*close="access withdrawn: second-factor grant of alice \(sha256 [0-9a-f]{16}…\) revoked by an administrator"' \
    "a's audit line of the revoked tunnel"
sf_expect_denied "127.0.0.1:${vpn_port[a]}" alice "alice's next data connection through a"
sf_expect_denied "127.0.0.1:${vpn_port[b]}" alice "alice's next data connection through b"

note "ktlstun revoke where no daemon runs goes through the store, and the grant stays gone"
learned_b=$(log_count "$TEST_DIR/b.log" 'state store: alice logged in through gateway gw-a')
sf_expect_login "$TEST_DIR/a.ini" c-alice "$(sf_hotp 6)" 0 "Access granted" "alice logs in again through a"
wait_for_log "$TEST_DIR/b.log" 'state store: alice logged in through gateway gw-a' 5 $((learned_b + 1)) ||
    fail "b does not learn alice's new grant"
hold alice-a "127.0.0.1:${vpn_port[a]}" "$TEST_DIR/alice.pem" "$TEST_DIR/user.key"
stop_ktlstund "$pid_b"
assert_eq "$(pg_psql spare "SELECT count(*) FROM ktlstun_grant WHERE identity = 'alice'")" 1 "alice's grant in the store"
"$KTLSTUN" revoke alice -c "$TEST_DIR/b.ini" >"$TEST_DIR/revoke2.out" 2>&1 ||
    fail "revoke with b stopped: $(cat "$TEST_DIR/revoke2.out")"
assert_contains "$(cat "$TEST_DIR/revoke2.out")" "sent to every gateway through the shared state store" \
    "what revoke says without a daemon"
wait_hold_ended alice-a "$(scale 2)" "alice's tunnel through a after the revoke from a stopped b"
wait_for_log "$TEST_DIR/a.log" 'state store: an administrator on gateway gw-b revoked the grants of alice \(1 live here\)' 5 2 ||
    fail "a does not learn the revoke from a stopped b"
sf_expect_denied "127.0.0.1:${vpn_port[a]}" alice "alice through a after the revoke from a stopped b"
assert_eq "$(pg_psql spare "SELECT count(*) FROM ktlstun_grant WHERE identity = 'alice'")" 0 "alice's grant left the store"
connected_b=$(log_count "$TEST_DIR/b.log" "state store: connected to .* as gateway gw-b")
start_ktlstund "$TEST_DIR/b.ini" "$TEST_DIR/b.log"
pid_b=$KTLSTUND_PID
wait_for_log "$TEST_DIR/b.log" "state store: connected to .* as gateway gw-b" 10 $((connected_b + 1)) ||
    fail "b does not connect after its restart"
sf_expect_denied "127.0.0.1:${vpn_port[b]}" alice "alice through the restarted b"

note "a lock made on a, lifted by ktlstun unlock on b"
sf_expect_login "$TEST_DIR/a.ini" c-alice 000021 1 "2 more failed attempts" "a wrong code on a"
sf_expect_login "$TEST_DIR/b.ini" c-alice 000022 1 "1 more failed attempt" "a wrong code on b, counting a's"
sf_expect_login "$TEST_DIR/a.ini" c-alice 000023 1 "Locked: too many failed attempts" "the third, on a, locks"
for ((i = 0; i < $(scale 5) * 10; i++)); do
    "$KTLSTUN" unlock --list -c "$TEST_DIR/b.ini" | grep -q '^vpn identity alice until' && break
    sleep 0.1
done
"$KTLSTUN" unlock alice -c "$TEST_DIR/b.ini" >"$TEST_DIR/unlock3.out" 2>&1 || fail "unlock on b: $(cat "$TEST_DIR/unlock3.out")"
assert_log "$TEST_DIR/a.log" 'state store: gateway gw-b unlocked "alice" \(1 lock lifted here\)' "a lifts the lock it made on b's unlock" 2
sf_expect_login "$TEST_DIR/a.ini" c-alice "$(sf_hotp 7)" 0 "Access granted" "alice on a after the unlock on b"

stop_ktlstund "$pid_a"
stop_ktlstund "$pid_b"
