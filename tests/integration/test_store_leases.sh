#!/usr/bin/env bash
# The network hubs' address allocator in the shared state store (store/store_leases.c),
# driven directly by store_lease_tool against a real PostgreSQL (TLS, client
# certificate), without hubs: each rule of store_leases.h, one case each.
#   - a /29 pool gives its clients, lowest first, every address but the network's, the
#     broadcast's and the hub's (reserve), then refuses naming the pool;
#   - an identity keeps its address on any gateway; a never-used address goes before a
#     released one; the released one goes to a new identity once none is left, the one
#     released longest ago first; an identity still held by another gateway, or by a
#     gateway seen within 30 s, is never taken; one held by a gateway silent for 60 s is;
#   - release-all takes a gateway out of every row; a reserve address is taken back
#     from its client and never leased again;
#   - IPv6 pools; a TAKE of both families keeps nothing when one pool is full;
#   - a TAKE waits for another hub's TAKE in progress (the lease lock) and leases
#     around what it leased; 4 processes × 50 takes at once into one /24, then 60
#     more: no address twice;
#   - identities full of quotes and backslashes are stored and matched byte for byte.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/pg_lib.sh"

pg_start_primary main
CONN=$(pg_conninfo main)
TOOL="$TOOLS/store_lease_tool"
[ -x "$TOOL" ] || fail "no $TOOL: make all builds it"

# lt ARGS...: runs store_lease_tool CONN ARGS; sets OUT (stdout and stderr) and RC.
lt() {
    RC=0
    OUT=$("$TOOL" "$CONN" "$@" 2>&1) || RC=$?
}

# take_ok EXPECTED ARGS...: `take ARGS` prints "ok EXPECTED" (exit 0).
take_ok() {
    local want=$1
    shift
    lt take "$@"
    assert_eq "$RC $OUT" "0 ok $want" "take $*"
}

# take_refused POOL ARGS...: `take ARGS` is refused (exit 1) naming POOL.
take_refused() {
    local pool=$1
    shift
    lt take "$@"
    assert_eq "$RC" 1 "take $* is refused: $OUT"
    assert_contains "$OUT" "refused the pool $pool has no address left" "take $* names the pool"
}

# q SQL: one value from the store, as postgres.
q() { pg_psql main "$1"; }

# holders TUNNEL IDENTITY: the gateways holding IDENTITY's row in TUNNEL ({a,b}).
holders() { q "SELECT held_by FROM ktlstun_lease WHERE tunnel = '$1' AND identity = '$2'"; }

# seen GATEWAY SECONDS: GATEWAY was last seen SECONDS ago.
seen() { q "UPDATE ktlstun_gateway SET last_seen = now() - interval '$2 s' WHERE name = '$1'" >/dev/null; }

P4=10.9.0.1/29
note "a /29 pool: five clients, lowest first, never .0, .1 (the hub's) or .7"
for k in 1 2 3 4 5; do
    take_ok "10.9.0.$((k + 1))" gw-a small "c$k" "$P4" 10.9.0.1
done
take_refused "$P4" gw-a small c6 "$P4" 10.9.0.1
assert_eq "$(q "SELECT count(*) FROM ktlstun_lease WHERE tunnel = 'small' AND identity = 'c6'")" 0 \
    "a refused take leaves no row"
assert_eq "$(q "SELECT string_agg(host(address) || '=' || identity || '/' || reserved, ' ' ORDER BY address)
                FROM ktlstun_lease WHERE tunnel = 'small'")" \
    "10.9.0.1=/true 10.9.0.2=c1/false 10.9.0.3=c2/false 10.9.0.4=c3/false 10.9.0.5=c4/false 10.9.0.6=c5/false" \
    "the rows of the full /29"

note "an identity keeps its address, on this gateway and on another"
take_ok 10.9.0.4 gw-a small c3 "$P4" 10.9.0.1
take_ok 10.9.0.4 gw-b small c3 "$P4" 10.9.0.1
assert_eq "$(holders small c3)" "{gw-a,gw-b}" "c3 is held by both gateways, once each"
take_ok 10.9.0.4 gw-b small c3 "$P4" 10.9.0.1
assert_eq "$(holders small c3)" "{gw-a,gw-b}" "a second take by gw-b adds no second entry"

note "a never-used address goes before a released one"
take_ok 10.9.1.2 gw-a fresh n1 10.9.1.1/29 10.9.1.1
take_ok 10.9.1.3 gw-a fresh n2 10.9.1.1/29 10.9.1.1
lt release gw-a fresh n1
assert_eq "$RC $OUT" "0 ok" "release n1"
take_ok 10.9.1.4 gw-a fresh n3 10.9.1.1/29 10.9.1.1
take_ok 10.9.1.2 gw-a fresh n1 10.9.1.1/29 10.9.1.1
assert_eq "$(q "SELECT released_at IS NULL FROM ktlstun_lease WHERE tunnel = 'fresh' AND identity = 'n1'")" t \
    "n1 back: its row is no longer released"

note "the full pool: a released address goes to a new identity, the one released longest ago first"
lt release gw-a small c1
assert_eq "$RC $OUT" "0 ok" "release c1"
assert_eq "$(q "SELECT held_by::text || ' ' || (released_at IS NOT NULL) FROM ktlstun_lease
                WHERE tunnel = 'small' AND identity = 'c1'")" "{} true" "c1's row once released"
take_ok 10.9.0.2 gw-a small c6 "$P4" 10.9.0.1
take_refused "$P4" gw-a small c1 "$P4" 10.9.0.1
lt release gw-a small c4
lt release gw-a small c5
# c5 was released after c4: make it the older release, so that neither the order of the
# releases nor that of the addresses gives the expected answer.
q "UPDATE ktlstun_lease SET released_at = now() - interval '10 min' WHERE tunnel = 'small' AND identity = 'c5'" >/dev/null
q "UPDATE ktlstun_lease SET released_at = now() - interval '5 min' WHERE tunnel = 'small' AND identity = 'c4'" >/dev/null
take_ok 10.9.0.6 gw-a small c7 "$P4" 10.9.0.1
take_ok 10.9.0.5 gw-a small c8 "$P4" 10.9.0.1

note "an identity two gateways hold, released by one, is not taken"
lt release gw-a small c3
assert_eq "$RC $OUT" "0 ok" "release c3 by gw-a"
assert_eq "$(holders small c3)" "{gw-b}" "c3 is still held by gw-b"
assert_eq "$(q "SELECT released_at IS NULL FROM ktlstun_lease WHERE tunnel = 'small' AND identity = 'c3'")" t \
    "c3 is not released while gw-b holds it"
take_refused "$P4" gw-a small c9 "$P4" 10.9.0.1

note "a gateway seen 20 s ago still holds its rows; one silent for 60 s does not"
seen gw-b 20
take_refused "$P4" gw-a small c9 "$P4" 10.9.0.1
seen gw-b 60
take_ok 10.9.0.4 gw-a small c9 "$P4" 10.9.0.1
assert_eq "$(holders small c9)" "{gw-a}" "c9's row is held by gw-a alone"
assert_eq "$(q "SELECT count(*) FROM ktlstun_lease WHERE tunnel = 'small' AND identity = 'c3'")" 0 \
    "c3 lost its row"
# Every row is gw-a's now, and gw-a is live.
take_refused "$P4" gw-a small c10 "$P4" 10.9.0.1
seen gw-b 0

note "release-all takes a gateway out of every row"
take_ok 10.9.2.2 gw-c multi m1 10.9.2.1/29 10.9.2.1
take_ok 10.9.2.3 gw-c multi m2 10.9.2.1/29 10.9.2.1
take_ok 10.9.2.3 gw-a multi m2 10.9.2.1/29 10.9.2.1
take_ok 10.9.3.2 gw-c other m1 10.9.3.1/29 10.9.3.1
assert_eq "$(q "SELECT count(*) FROM ktlstun_lease WHERE 'gw-c' = ANY(held_by)")" 3 "gw-c holds three rows"
lt release-all gw-c
assert_eq "$RC $OUT" "0 ok" "release-all gw-c"
assert_eq "$(q "SELECT count(*) FROM ktlstun_lease WHERE 'gw-c' = ANY(held_by)")" 0 "gw-c holds no row"
assert_eq "$(q "SELECT string_agg(tunnel || ':' || identity || '=' || held_by::text || '/' || (released_at IS NOT NULL), ' '
                ORDER BY tunnel, address) FROM ktlstun_lease WHERE tunnel IN ('multi', 'other') AND NOT reserved")" \
    "multi:m1={}/true multi:m2={gw-a}/false other:m1={}/true" "the rows after release-all gw-c"
assert_eq "$(holders small c9)" "{gw-a}" "release-all gw-c leaves gw-a's rows"

note "a reserve address is taken back from its client and never leased again"
R=10.9.4.1/29
take_ok 10.9.4.2 gw-a res r1 "$R" 10.9.4.1
take_ok 10.9.4.3 gw-a res r2 "$R" 10.9.4.1
take_ok 10.9.4.4 gw-a res r3 "$R" 10.9.4.1 10.9.4.2
assert_eq "$(q "SELECT identity || '/' || reserved || '/' || held_by::text FROM ktlstun_lease
                WHERE tunnel = 'res' AND address = '10.9.4.2'")" "/true/{}" "10.9.4.2 is reserved, r1's no more"
take_ok 10.9.4.5 gw-a res r1 "$R" 10.9.4.1
take_ok 10.9.4.6 gw-a res r4 "$R" 10.9.4.1
# Full now; the reserved row is neither never-used nor released: a later TAKE that does
# not name it still does not lease it.
take_refused "$R" gw-a res r5 "$R" 10.9.4.1
lt release gw-a res r4
take_ok 10.9.4.6 gw-a res r5 "$R" 10.9.4.1
take_ok 10.9.4.3 gw-a res r2 "$R" 10.9.4.1

note "IPv6 pools, and a TAKE of both families keeps nothing when one is full"
take_ok fd00:9::2 gw-a six s1 fd00:9::1/64 fd00:9::1
take_ok fd00:9::3 gw-a six s2 fd00:9::1/64 fd00:9::1
take_ok fd00:9::2 gw-b six s1 fd00:9::1/64 fd00:9::1
take_ok "10.9.5.2 fd00:a::2" gw-a dual d1 10.9.5.1/29,fd00:a::1/126 10.9.5.1 fd00:a::1
take_refused fd00:a::1/126 gw-a dual d2 10.9.5.1/29,fd00:a::1/126 10.9.5.1 fd00:a::1
assert_eq "$(q "SELECT count(*) FROM ktlstun_lease WHERE tunnel = 'dual' AND identity = 'd2'")" 0 \
    "the refused dual take kept no IPv4 address"
take_ok 10.9.5.3 gw-a dual d3 10.9.5.1/29 10.9.5.1
take_ok "10.9.5.2 fd00:a::2" gw-b dual d1 10.9.5.1/29,fd00:a::1/126 10.9.5.1 fd00:a::1

note "a TAKE waits for another hub's TAKE in progress, then sees what it leased"
# psql plays a hub whose TAKE holds the lease lock and has leased 10.9.7.2, not yet
# committed; store_lease_tool's TAKE, started meanwhile, must wait for it and take .3.
# psql reads its statements from the test, which commits once it has seen the TAKE
# wait (rather than holding for a fixed time).
spawn_fed held-psql "exec '$PG_BIN/psql' -XAtq -v ON_ERROR_STOP=1 -h '$(pg_var SOCKET_DIR main)' \
    -p '$(pg_var PORT main)' -U postgres -d ktlstun"
held_psql=$SPAWN_PID
printf '%s\n' "BEGIN;" "SELECT pg_advisory_xact_lock(7465787402);" \
    "INSERT INTO ktlstun_lease (tunnel, address, identity, held_by) VALUES ('held', '10.9.7.2', 'other', '{gw-x}');" \
    >&"$FED_FD"
for ((i = 0; i < $(scale 10) * 20; i++)); do
    [ "$(q "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")" = 1 ] && break
    sleep 0.05
done
assert_eq "$(q "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted")" 1 "psql holds the lease lock"
"$TOOL" "$CONN" take gw-a held h1 10.9.7.1/29 10.9.7.1 >"$TEST_DIR/held-take.out" 2>&1 &
held_take=$!
PIDS+=("$held_take")
# The hold lasts until the TAKE is seen waiting: the TAKE's statements time out after 5 s.
waiting=0
for ((i = 0; i < 50; i++)); do
    waiting=$(q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'store_lease_tool'
                 AND wait_event_type = 'Lock'")
    [ "$waiting" = 1 ] && break
    alive "$held_take" || break
    sleep 0.05
done
assert_eq "$waiting" 1 "the TAKE waits while the other hub's is in progress: $(cat "$TEST_DIR/held-take.out")"
printf 'COMMIT;\n' >&"$FED_FD"
exec {FED_FD}>&-
wait "$held_psql" || fail "psql's TAKE failed: $(cat "$TEST_DIR/held-psql.out")"
rc=0
wait "$held_take" || rc=$?
assert_eq "$rc $(cat "$TEST_DIR/held-take.out")" "0 ok 10.9.7.3" "the TAKE after the other hub's"
assert_eq "$(q "SELECT string_agg(host(address) || '=' || identity, ' ' ORDER BY address) FROM ktlstun_lease
                WHERE tunnel = 'held' AND NOT reserved")" "10.9.7.2=other 10.9.7.3=h1" "the other hub's lease stays its own"

note "4 processes × 50 takes at once into one /24, then 60 more"
B=10.20.0.1/24
# Each burst connects, then waits for the end of its stdin (the fifo "go") before its
# first take: closing the fifo starts the four at the same moment.
mkfifo "$TEST_DIR/go"
pids=()
for p in 1 2 3 4; do
    "$TOOL" "$CONN" burst "gw-$p" big "p$p-" 50 "$B" 10.20.0.1 <"$TEST_DIR/go" >"$TEST_DIR/burst$p.out" 2>&1 &
    pids+=($!)
    PIDS+=($!)
done
exec 3>"$TEST_DIR/go"
for ((i = 0; i < $(scale 10) * 20; i++)); do
    [ "$(q "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'store_lease_tool'")" = 4 ] && break
    sleep 0.05
done
sleep "0.$((2 * SLOW))"
exec 3>&-
for p in 1 2 3 4; do
    rc=0
    wait "${pids[$((p - 1))]}" || rc=$?
    assert_eq "$rc" 0 "burst $p exit status: $(grep -v '^ok ' "$TEST_DIR/burst$p.out" | head -n 3)"
done
cat "$TEST_DIR"/burst[1-4].out >"$TEST_DIR/bursts.out"
assert_eq "$(grep -c '^ok 10\.20\.0\.[0-9]*$' "$TEST_DIR/bursts.out")" 200 "200 takes at once: 200 ok"
assert_eq "$(wc -l <"$TEST_DIR/bursts.out")" 200 "200 takes at once: nothing else printed"
assert_eq "$(sort -u "$TEST_DIR/bursts.out" | wc -l)" 200 "200 takes at once: 200 distinct addresses"
assert_eq "$(grep -cE '^ok 10\.20\.0\.(0|1|255)$' "$TEST_DIR/bursts.out" || true)" 0 \
    "200 takes at once: never the network, the hub or the broadcast"
assert_eq "$(q "SELECT count(*) || ' ' || count(DISTINCT identity) FROM ktlstun_lease WHERE tunnel = 'big' AND NOT reserved")" \
    "200 200" "200 takes at once: 200 rows, one per identity"
rc=0
"$TOOL" "$CONN" burst gw-5 big q- 60 "$B" 10.20.0.1 </dev/null >"$TEST_DIR/burst5.out" 2>&1 || rc=$?
assert_eq "$rc" 0 "burst 5 exit status: $(grep -v '^ok ' "$TEST_DIR/burst5.out" | grep -v '^refused ' | head -n 3)"
assert_eq "$(grep -c '^ok ' "$TEST_DIR/burst5.out")" 53 "60 more: 53 ok"
assert_eq "$(grep -c "^refused the pool $B has no address left" "$TEST_DIR/burst5.out")" 7 "60 more: 7 refused"
assert_eq "$(tail -n 7 "$TEST_DIR/burst5.out" | grep -c '^refused ')" 7 "60 more: the last 7 are the refused ones"
assert_eq "$(cat "$TEST_DIR"/burst[1-5].out | grep '^ok ' | sort -u | wc -l)" 253 \
    "260 takes: the 253 addresses, each once"
assert_eq "$(q "SELECT count(*) FROM ktlstun_lease WHERE tunnel = 'big' AND NOT reserved")" 253 \
    "the /24 has 253 leased rows"

note "hostile identities are stored and matched byte for byte"
# 64 bytes, the most a TAKE carries: quotes, backslashes, SQL.
H="a'b\"c\\d'; DROP TABLE ktlstun_lease; -- \\\\'' \"\" %s \$1 \\x00 \\' end"
H=${H:0:64}
H=$H$(printf '%*s' $((64 - ${#H})) '' | tr ' ' "'")
assert_eq "${#H}" 64 "the hostile identity's length"
H2="${H:0:63}\\"
take_ok 10.9.6.2 gw-a evil "$H" 10.9.6.1/29 10.9.6.1
take_ok 10.9.6.3 gw-a evil "$H2" 10.9.6.1/29 10.9.6.1
take_ok 10.9.6.2 gw-b evil "$H" 10.9.6.1/29 10.9.6.1
assert_eq "$(q "SELECT encode(convert_to(identity, 'UTF8'), 'hex') FROM ktlstun_lease
                WHERE tunnel = 'evil' AND address = '10.9.6.2'")" \
    "$(printf '%s' "$H" | od -An -tx1 -v | tr -d ' \n')" "the hostile identity as stored"
assert_eq "$(q "SELECT held_by FROM ktlstun_lease WHERE tunnel = 'evil' AND address = '10.9.6.2'")" \
    "{gw-a,gw-b}" "the hostile identity matched on gw-b"
assert_eq "$(q "SELECT count(*) FROM pg_tables WHERE tablename = 'ktlstun_lease'")" 1 "ktlstun_lease is still there"
long=$(for _ in 1 2 3 4; do printf '%s' "$H"; done)
assert_eq "${#long}" 256 "the long hostile identity's length"
lt take gw-a evil "$long" 10.9.6.1/29 10.9.6.1
assert_eq "$RC" 2 "a 256-byte identity does not fit a TAKE: $OUT"
assert_contains "$OUT" "error the identity is 256 bytes, a TAKE carries at most 64" "a 256-byte identity"
lt release gw-a evil "$long"
assert_eq "$RC $OUT" "0 ok" "release of a 256-byte identity"
lt release gw-a evil "$H2"
assert_eq "$(q "SELECT string_agg(host(address) || '=' || held_by::text, ' ' ORDER BY address) FROM ktlstun_lease
                WHERE tunnel = 'evil' AND NOT reserved")" \
    "10.9.6.2={gw-a,gw-b} 10.9.6.3={}" "releases matched only their own identity"
