#!/usr/bin/env bash
# `ktlstun db status` and `ktlstun db migrate` against a real PostgreSQL (TLS, client
# certificate): an empty database has no schema yet; migrate creates it once, a second
# run changes nothing; status lists the gateways with when each was last seen and the
# live grants each published; a schema newer than this ktlstun's makes both exit 1
# with "upgrade ktlstun"; a stopped server makes them exit 1 with libpq's reason within
# seconds; a standby is shown as one and cannot be migrated. `ktlstun disconnect` with a
# store publishes a disconnect event in this gateway's name, with a daemon (whose
# tunnels it ends) or without (no error then), and exits 1 when the store cannot be
# reached.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg_lib.sh"

# db ARGS...: runs `ktlstun ARGS -c $conf`; sets OUT (stdout and stderr) and RC.
db() {
    RC=0
    OUT=$("$KTLSTUN" "$@" -c "$conf" 2>&1) || RC=$?
}

pg_start_primary main
port=$(pg_var PORT main)
conf="$TEST_DIR/ktlstund.ini"
{
    global_section "state_store = $(pg_conninfo main)" "gateway_name = gw-test"
    server_tunnel srv "$(free_port)" "$(free_port)"
} >"$conf"

note "state_store = file: the state is in files"
file_conf="$TEST_DIR/file.ini"
{
    global_section
    server_tunnel srv "$(free_port)" "$(free_port)"
} >"$file_conf"
RC=0
OUT=$("$KTLSTUN" db status -c "$file_conf" 2>&1) || RC=$?
assert_eq "$RC" 0 "db status with state_store = file: $OUT"
assert_contains "$OUT" "store: file: the state is kept in files under $TEST_DIR/state" "db status (file)"
RC=0
OUT=$("$KTLSTUN" db migrate -c "$file_conf" 2>&1) || RC=$?
assert_eq "$RC" 1 "db migrate with state_store = file: $OUT"
assert_contains "$OUT" "no database to migrate" "db migrate (file)"

note "an empty database: no schema yet"
db db status
assert_eq "$RC" 0 "db status on an empty database: $OUT"
assert_contains "$OUT" "store: 127.0.0.1:$port, PostgreSQL " "db status names the server"
assert_contains "$OUT" ", primary" "db status: a primary"
assert_contains "$OUT" "schema: not created yet: the first gateway that starts creates it" \
    "db status on an empty database"
assert_not_contains "$OUT" "gateways:" "db status lists no gateways without a schema"

RC=0
OUT=$("$KTLSTUN" disconnect alice -c "$conf" 2>&1) || RC=$?
assert_eq "$RC" 1 "ktlstun disconnect before the schema exists: $OUT"
assert_contains "$OUT" "ktlstun disconnect: the state store refused the disconnect, so the other gateways were not told: ERROR:  relation \"ktlstun_event\" does not exist" \
    "ktlstun disconnect before the schema exists"

note "db migrate creates the schema, once"
db db migrate
assert_eq "$RC" 0 "db migrate: $OUT"
assert_eq "$OUT" "schema version 3 (was 0)" "db migrate on an empty database"
assert_eq "$(pg_psql main "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables
                           WHERE tablename LIKE 'ktlstun%'")" \
    "ktlstun_event,ktlstun_gateway,ktlstun_grant,ktlstun_lock_alert,ktlstun_schema" "the tables db migrate made"
db db migrate
assert_eq "$RC" 0 "db migrate again: $OUT"
assert_eq "$OUT" "schema version 3 (was 3)" "db migrate again"
assert_eq "$(pg_psql main "SELECT string_agg(version::text, ',' ORDER BY version) FROM ktlstun_schema")" 1,2,3 \
    "ktlstun_schema after two migrations"

note "db status: gateways, recent and stale, with their live grants"
db db status
assert_eq "$RC" 0 "db status with a schema: $OUT"
assert_contains "$OUT" "schema: version 3 (this ktlstun: version 3)" "db status: the schema"
assert_contains "$OUT" "gateways: 0" "db status: no gateway yet"
assert_contains "$OUT" "live grants: 0" "db status: no grant yet"
pg_psql main \
    "INSERT INTO ktlstun_gateway VALUES
       ('gw-a', 4242, '0.1.0', '2026-12-01 10:00:00+00', now() - interval '2 seconds'),
       ('gw-b', 77, '0.0.9', '2026-11-30 08:30:00+00', now() - interval '300 seconds')" \
    "INSERT INTO ktlstun_grant (tunnel, sha256, identity, expires_at, gateway) VALUES
       ('srv', 'aa', 'alice', now() + interval '1 hour', 'gw-a'),
       ('srv', 'bb', 'bob', now() + interval '1 hour', 'gw-a'),
       ('srv', 'cc', 'carol', now() - interval '1 minute', 'gw-a'),
       ('web', 'aa', 'alice', now() + interval '8 hours', 'gw-b')" >/dev/null
db db status
assert_eq "$RC" 0 "db status with gateways: $OUT"
assert_contains "$OUT" "gateways: 2" "db status: two gateways"
line_a=$(grep '^gateway gw-a: ' <<<"$OUT") || fail "no line for gw-a: $OUT"
line_b=$(grep '^gateway gw-b: ' <<<"$OUT") || fail "no line for gw-b: $OUT"
[[ $line_a =~ ^gateway\ gw-a:\ up,\ pid\ 4242,\ version\ 0\.1\.0,\ started\ 2026-12-01T10:00:00Z,\ last\ seen\ [2-9]\ s\ ago,\ 2\ live\ grants$ ]] ||
    fail "gw-a's line: $line_a"
[[ $line_b =~ ^gateway\ gw-b:\ not\ seen\ for\ 30[0-9]\ s,\ pid\ 77,\ version\ 0\.0\.9,\ started\ 2026-11-30T08:30:00Z,\ last\ seen\ 30[0-9]\ s\ ago,\ 1\ live\ grant$ ]] ||
    fail "gw-b's line: $line_b"
assert_contains "$OUT" "live grants: 3" "db status: the live grants in all"

note "ktlstun disconnect with a store and no daemon: the event is published"
RC=0
OUT=$("$KTLSTUN" disconnect alice -c "$conf" 2>&1) || RC=$?
assert_eq "$RC" 0 "ktlstun disconnect alice (no daemon, a store): $OUT"
assert_contains "$OUT" "ktlstund is not running here: no tunnel of alice to end on this gateway" \
    "ktlstun disconnect without a daemon"
assert_contains "$OUT" "sent the disconnect of alice to the other gateways (event " \
    "ktlstun disconnect with a store"
assert_eq "$(pg_psql main "SELECT gateway || ' ' || kind || ' ' || identity FROM ktlstun_event")" \
    "gw-test disconnect alice" "the event ktlstun disconnect published"

note "TLS that does not verify: libpq's reason"
bad_conf="$TEST_DIR/bad-ca.ini"
{
    global_section "state_store = $(pg_conninfo main | sed "s#sslrootcert=[^ ]*#sslrootcert=$PKI/ca.pem#")"
    server_tunnel srv "$(free_port)" "$(free_port)"
} >"$bad_conf"
RC=0
OUT=$("$KTLSTUN" db status -c "$bad_conf" 2>&1) || RC=$?
assert_eq "$RC" 1 "db status with the wrong CA: $OUT"
assert_contains "$OUT" "cannot reach the state store: connection to server at \"127.0.0.1\", port $port failed: SSL error: certificate verify failed" \
    "db status with the wrong CA"
{
    global_section "state_store = $(pg_conninfo main | sed "s#host=127.0.0.1#host=wrong.example hostaddr=127.0.0.1#")"
    server_tunnel srv "$(free_port)" "$(free_port)"
} >"$bad_conf"
RC=0
OUT=$("$KTLSTUN" db status -c "$bad_conf" 2>&1) || RC=$?
assert_eq "$RC" 1 "db status with a name the server's certificate does not hold: $OUT"
assert_contains "$OUT" "server certificate for \"localhost\" (and 1 other name) does not match host name \"wrong.example\"" \
    "db status with a name the server's certificate does not hold"

note "a standby: db status says so, db migrate cannot write there"
pg_start_standby replica main
pg_wait_replicated replica main
standby_conf="$TEST_DIR/standby.ini"
{
    global_section "state_store = $(pg_conninfo replica)" "gateway_name = gw-test"
    server_tunnel srv "$(free_port)" "$(free_port)"
} >"$standby_conf"
RC=0
OUT=$("$KTLSTUN" db status -c "$standby_conf" 2>&1) || RC=$?
assert_eq "$RC" 0 "db status on a standby: $OUT"
assert_contains "$OUT" "store: 127.0.0.1:$(pg_var PORT replica), PostgreSQL " "db status on a standby"
assert_contains "$OUT" ", standby (read only: gateways cannot write to it)" "db status on a standby"
assert_contains "$OUT" "gateways: 2" "db status on a standby: the replicated gateways"
RC=0
OUT=$("$KTLSTUN" db migrate -c "$standby_conf" 2>&1) || RC=$?
assert_eq "$RC" 1 "db migrate on a standby: $OUT"
assert_eq "$OUT" "ktlstun db migrate: ERROR:  cannot execute CREATE TABLE in a read-only transaction" \
    "db migrate on a standby"
pg_stop replica

note "ktlstun disconnect with a daemon and a store: the local tunnels end, the others are told"
echo_port=$(free_port) live_port=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
live_conf="$TEST_DIR/live.ini"
{
    global_section "state_store = $(pg_conninfo main)" "gateway_name = gw-test"
    server_tunnel srv "$live_port" "$echo_port"
} >"$live_conf"
start_ktlstund "$live_conf" "$TEST_DIR/ktlstund.log"
hold alice-1 "127.0.0.1:$live_port" "$PKI/alice.pem" "$PKI/alice.key"
RC=0
OUT=$("$KTLSTUN" disconnect alice -c "$live_conf" 2>&1) || RC=$?
assert_eq "$RC" 0 "ktlstun disconnect alice (a daemon, a store): $OUT"
assert_contains "$OUT" "ended 1 tunnel of alice" "ktlstun disconnect with a daemon"
assert_contains "$OUT" "sent the disconnect of alice to the other gateways (event " \
    "ktlstun disconnect with a daemon and a store"
wait_hold_ended alice-1 "$(scale 5)" "ktlstun disconnect with a daemon and a store"
assert_eq "$(pg_psql main "SELECT count(*) FROM ktlstun_event WHERE kind = 'disconnect'
                           AND identity = 'alice' AND gateway = 'gw-test'")" 2 \
    "the disconnect events published"
stop_ktlstund "$KTLSTUND_PID"

note "a schema newer than this ktlstun's: upgrade ktlstun"
pg_psql main "INSERT INTO ktlstun_schema (version) VALUES (1000)" >/dev/null
db db status
assert_eq "$RC" 1 "db status with a newer schema: $OUT"
assert_contains "$OUT" "schema is version 1000, newer than this ktlstun's (3): upgrade ktlstun" \
    "db status with a newer schema"
db db migrate
assert_eq "$RC" 1 "db migrate with a newer schema: $OUT"
assert_contains "$OUT" "upgrade ktlstun" "db migrate with a newer schema"
assert_eq "$(pg_psql main "SELECT string_agg(version::text, ',' ORDER BY version) FROM ktlstun_schema")" \
    "1,2,1000" "db migrate changed nothing"
pg_psql main "DELETE FROM ktlstun_schema WHERE version = 1000" >/dev/null

note "the store stopped: exit 1 with libpq's reason, at once"
pg_stop main
for args in "db status" "db migrate"; do
    started=$(now_ms)
    # shellcheck disable=SC2086
    db $args
    took=$(($(now_ms) - started))
    assert_eq "$RC" 1 "ktlstun $args with the store stopped: $OUT"
    assert_contains "$OUT" "ktlstun $args: cannot reach the state store: connection to server at \"127.0.0.1\", port $port failed: Connection refused" \
        "ktlstun $args with the store stopped"
    [ "$took" -lt "$(scale 5)000" ] || fail "ktlstun $args took $took ms to give up"
done
RC=0
OUT=$("$KTLSTUN" disconnect alice -c "$conf" 2>&1) || RC=$?
assert_eq "$RC" 1 "ktlstun disconnect with the store stopped: $OUT"
assert_contains "$OUT" "ktlstund is not running here" "ktlstun disconnect with the store stopped"
assert_contains "$OUT" "cannot reach the state store, so the other gateways were not told: connection to server" \
    "ktlstun disconnect with the store stopped"
note "ktlstun db ok"
