#!/usr/bin/env bash
# The harness of the shared state store's tests (pg_lib.sh) does what the fleet tests
# rely on: a PostgreSQL primary and a hot standby on 127.0.0.1 only, reached as the
# gateways reach them (psql with pg_conninfo's string): TLS with the ktlstun client
# certificate gets in; no client certificate, a certificate of another user, or no
# TLS at all is refused by the server; a row written on the primary is read on the
# standby, which refuses writes; with the primary stopped and the standby promoted, the
# multi-host string (target_session_attrs=read-write) reaches the new primary and
# writes. HAProxy in TCP mode (haproxy_tcp_start) alternates between two backends
# and, its health checks on, sends everything to the one left when the other stops.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg_lib.sh"

command -v socat >/dev/null || fail "socat is not installed"

# gw CONNINFO SQL: runs SQL as a gateway would connect (CONNINFO); prints the tuples.
gw() { "$PG_BIN/psql" -XAtq -v ON_ERROR_STOP=1 "$1" -c "$2" 2>"$TEST_DIR/gw.err"; }

# gw_fails CONNINFO SQL TEXT MESSAGE: SQL as gw runs it fails, psql's error has TEXT.
gw_fails() {
    local rc=0
    gw "$1" "$2" >/dev/null || rc=$?
    [ "$rc" != 0 ] || fail "$4: it worked"
    assert_contains "$(cat "$TEST_DIR/gw.err")" "$3" "$4"
}

# gw_refused CONNINFO TEXT MESSAGE: the connection is refused with TEXT.
gw_refused() { gw_fails "$1" "SELECT 1" "$2" "$3"; }

# only_loopback PORT WHAT: every listener on PORT is bound to 127.0.0.1.
only_loopback() {
    local addrs
    addrs=$(ss -Hltn "sport = :$1" | awk '{ print $4 }' | sort -u)
    assert_eq "$addrs" "127.0.0.1:$1" "$2 listens on 127.0.0.1 only"
}

started=$(now_ms)
pg_start_primary p1
note "primary p1 on port $PG_PORT_p1 after $(($(now_ms) - started)) ms"
only_loopback "$PG_PORT_p1" "primary p1"
assert_eq "$(stat -c %a "$PG_CERTS/ktlstun.key")" 600 "the client key's mode"

note "TLS with the ktlstun client certificate gets in, as ktlstun"
conn=$(pg_conninfo p1)
assert_eq "$(gw "$conn" "SELECT current_user, ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")" \
    "ktlstun|t" "session over TLS as ktlstun"
gw "$conn" "CREATE TABLE grants (id int PRIMARY KEY, holder text NOT NULL)" >/dev/null
gw "$conn" "INSERT INTO grants VALUES (1, 'alice')" >/dev/null

note "no client certificate, another user's certificate, or no TLS: refused"
gw_refused "$conn sslcert=$TEST_DIR/absent.crt sslkey=$TEST_DIR/absent.key" \
    "connection requires a valid client certificate" "TLS without a client certificate"
gw_refused "$conn sslcert=$PG_CERTS/replicator.crt sslkey=$PG_CERTS/replicator.key" \
    'certificate authentication failed for user "ktlstun"' "the replicator's certificate for user ktlstun"
gw_refused "host=127.0.0.1 port=$PG_PORT_p1 dbname=ktlstun user=ktlstun sslmode=disable connect_timeout=2" \
    "no encryption" "a connection without TLS"
assert_log "$PG_ROOT/p1/postgres.log" 'no pg_hba.conf entry for host "127.0.0.1", user "ktlstun", database "ktlstun", no encryption' \
    "the server names the refused plain connection"

note "the standby replays what the primary writes, and refuses writes"
pg_start_standby s1 p1
only_loopback "$PG_PORT_s1" "standby s1"
gw "$conn" "INSERT INTO grants VALUES (2, 'bob')" >/dev/null
pg_wait_replicated s1 p1
assert_eq "$(gw "$(pg_conninfo s1)" "SELECT holder FROM grants WHERE id = 2")" bob "row 2 read on the standby"
assert_eq "$(pg_psql s1 "SELECT pg_is_in_recovery(), status FROM pg_stat_wal_receiver")" "t|streaming" \
    "s1 is a standby streaming from p1"
assert_eq "$(pg_psql p1 "SELECT r.usename, s.ssl FROM pg_stat_replication r JOIN pg_stat_ssl s USING (pid)")" \
    "replicator|t" "the standby streams from the primary over TLS as replicator"
gw_fails "$(pg_conninfo s1)" "INSERT INTO grants VALUES (3, 'carol')" "read-only transaction" "a write on the standby"
assert_eq "$(gw "$(pg_conninfo s1 p1)" "SELECT inet_server_port()")" "$PG_PORT_p1" \
    "read-write multi-host string with the standby first reaches the primary"

note "primary stopped, standby promoted: the multi-host string reaches the new primary"
pg_stop p1
pg_promote s1
assert_eq "$(pg_psql s1 "SELECT pg_is_in_recovery()")" f "s1 is a primary after promotion"
both=$(pg_conninfo p1 s1)
assert_contains "$both" "host=127.0.0.1,127.0.0.1 port=$PG_PORT_p1,$PG_PORT_s1" "multi-host string"
assert_contains "$both" "target_session_attrs=read-write" "multi-host string"
assert_eq "$(gw "$both" "SELECT inet_server_port()")" "$PG_PORT_s1" "multi-host string reaches s1"
gw "$both" "INSERT INTO grants VALUES (3, 'carol')" >/dev/null
assert_eq "$(gw "$both" "SELECT string_agg(holder, ',' ORDER BY id) FROM grants")" "alice,bob,carol" \
    "rows after the failover"

note "the old primary starts again on its own data"
pg_start p1
assert_eq "$(pg_psql p1 "SELECT count(*) FROM grants")" 2 "p1 has its own two rows"
pg_stop p1 immediate
note "postgres part took $(($(now_ms) - started)) ms"

note "HAProxy in TCP mode alternates between two backends, and skips one that is down"
a=$(free_port)
b=$(free_port)
front=$(free_port)
spawn "$TEST_DIR/backend-a.log" socat "TCP-LISTEN:$a,bind=127.0.0.1,reuseaddr,fork" "SYSTEM:echo backend-a; cat"
spawn "$TEST_DIR/backend-b.log" socat "TCP-LISTEN:$b,bind=127.0.0.1,reuseaddr,fork" "SYSTEM:echo backend-b; cat"
backend_b=$SPAWN_PID
wait_listening "$a" "$b" || fail "the socat backends did not listen"
haproxy_tcp_start --check lb "$front" "$a" "$b"
only_loopback "$front" "haproxy"

# through_lb COUNT: COUNT connections through haproxy, each echoing a line; the
# backends that answered, in order, in SEEN.
through_lb() {
    local i out
    SEEN=()
    for ((i = 1; i <= $1; i++)); do
        out=$(printf 'ping-%s\n' "$i" | timeout "$(scale 5)" socat -t 2 - "TCP:127.0.0.1:$front") ||
            fail "connection $i through haproxy failed"
        assert_contains "$out" "ping-$i" "connection $i echoed through haproxy"
        SEEN+=("$(head -n 1 <<<"$out")")
    done
}
through_lb 4
note "backends in turn: ${SEEN[*]}"
for i in 1 2 3; do
    [ "${SEEN[i]}" != "${SEEN[i - 1]}" ] || fail "haproxy did not alternate: ${SEEN[*]}"
done
assert_eq "$(printf '%s\n' "${SEEN[@]}" | sort -u | tr '\n' ' ')" "backend-a backend-b " "both backends served"

kill -TERM "$backend_b"
wait_exit "$backend_b" "$(scale 5)" || true
assert_log "$TEST_DIR/haproxy-lb/haproxy.log" 'Server lb/b2 is DOWN' "haproxy's check finds backend b down"
through_lb 3
assert_eq "${SEEN[*]}" "backend-a backend-a backend-a" "with b down, haproxy sends everything to a"

haproxy_tcp_stop lb
alive "$HAPROXY_PID" && fail "haproxy still runs after haproxy_tcp_stop"
note "whole test took $(($(now_ms) - started)) ms"
