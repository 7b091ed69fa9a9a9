#include "store/store_leases.h"

#include <stdio.h>
#include <string.h>

#include "store/store_connect.h"
#include "store/store_schema.h"

/* A gateway's store process writes every 2 s: one silent this long has stopped, and
 * its clients with it. */
#define LEASE_STALE_SECONDS "30"

/* The pool's addresses as PostgreSQL computes them from $2, the hub's address with the
 * pool's length: its first and last are the network's and broadcast's, never leased. */
#define HOST_LEN "CASE family($2::inet) WHEN 4 THEN 32 ELSE 128 END"
#define POOL_FIRST "set_masklen(network($2::inet), " HOST_LEN ")"
#define POOL_LAST "set_masklen(broadcast($2::inet), " HOST_LEN ")"

/* Runs SQL, which returns at most one row of one column, and copies it into OUT (LEN
 * bytes). Returns 1 with a row, 0 without, -1 with libpq's reason in ERR. */
static int one_value(PGconn *conn, const char *sql, int count, const char *const *params,
                     char *out, size_t len, char *err, size_t errlen)
{
    PGresult *res = store_connect_query(conn, sql, count, params, PGRES_TUPLES_OK, err, errlen);
    if (res == NULL)
        return -1;
    int found = PQntuples(res) > 0;
    if (found)
        snprintf(out, len, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return found;
}

static int reserve(PGconn *conn, const char *tunnel, const struct ip_prefix *address, char *err,
                   size_t errlen)
{
    char text[IP_PREFIX_TEXT_MAX];
    struct ip_prefix host = *address;
    host.len = (uint8_t)ip_prefix_max_len(host.family);
    const char *params[] = { tunnel, ip_prefix_format(&host, text, sizeof(text)) };
    /* A client's lease on it is taken back: a hub's or fixed address is never a pool
     * client's, whatever an older configuration said. */
    return store_connect_command(conn,
                                 "INSERT INTO ktlstun_lease (tunnel, address, identity, reserved)"
                                 " VALUES ($1, $2::inet, '', true)"
                                 " ON CONFLICT (tunnel, address) DO UPDATE SET reserved = true,"
                                 " identity = '', held_by = '{}'"
                                 " WHERE NOT ktlstun_lease.reserved",
                                 2, params, err, errlen);
}

/* Leases IDENTITY one address of POOL into ADDRESS (text, ADDRLEN bytes). Returns 1,
 * 0 when the pool has none left, -1 with libpq's reason in ERR. */
static int take_one(PGconn *conn, const char *gateway, const char *tunnel, const char *identity,
                    const struct ip_prefix *pool, char *address, size_t addrlen, char *err,
                    size_t errlen)
{
    char pool_text[IP_PREFIX_TEXT_MAX];
    const char *find[] = { tunnel, ip_prefix_format(pool, pool_text, sizeof(pool_text)),
                           identity };
    int found = one_value(conn,
                          "SELECT host(address) FROM ktlstun_lease WHERE tunnel = $1"
                          " AND address << $2::inet AND identity = $3 AND NOT reserved",
                          3, find, address, addrlen, err, errlen);
    if (found == 0)
        /* The lowest address never leased: the pool's first, or one after a leased one. */
        found = one_value(conn,
                          "SELECT host(c.a) FROM (SELECT " POOL_FIRST " + 1 AS a"
                          " UNION ALL SELECT address + 1 FROM ktlstun_lease"
                          "  WHERE tunnel = $1 AND address << $2::inet) c"
                          " WHERE c.a < " POOL_LAST
                          " AND NOT EXISTS (SELECT 1 FROM ktlstun_lease l"
                          "  WHERE l.tunnel = $1 AND l.address = c.a)"
                          " ORDER BY c.a LIMIT 1",
                          2, find, address, addrlen, err, errlen);
    if (found == 0)
        found = one_value(conn,
                          "SELECT host(address) FROM ktlstun_lease l WHERE tunnel = $1"
                          " AND address << $2::inet AND NOT reserved"
                          " AND NOT EXISTS (SELECT 1 FROM ktlstun_gateway g"
                          "  WHERE g.name = ANY(l.held_by)"
                          "  AND g.last_seen > now() - interval '" LEASE_STALE_SECONDS " s')"
                          " ORDER BY released_at NULLS LAST, leased_at LIMIT 1",
                          2, find, address, addrlen, err, errlen);
    if (found <= 0)
        return found;
    const char *take[] = { tunnel, address, identity, gateway };
    /* Its own again, or newly its own: held by this gateway, released by none. */
    if (store_connect_command(conn,
                              "INSERT INTO ktlstun_lease (tunnel, address, identity, held_by)"
                              " VALUES ($1, $2::inet, $3, ARRAY[$4])"
                              " ON CONFLICT (tunnel, address) DO UPDATE SET"
                              " held_by = CASE WHEN ktlstun_lease.identity = $3"
                              "  THEN array_append(array_remove(ktlstun_lease.held_by, $4), $4)"
                              "  ELSE ARRAY[$4] END,"
                              " leased_at = CASE WHEN ktlstun_lease.identity = $3"
                              "  THEN ktlstun_lease.leased_at ELSE now() END,"
                              " identity = $3, released_at = NULL",
                              4, take, err, errlen) < 0)
        return -1;
    return 1;
}

int store_leases_take(PGconn *conn, const char *gateway, const struct lease_msg *req,
                      struct lease_msg *reply, char *err, size_t errlen)
{
    memset(reply, 0, sizeof(*reply));
    reply->type = LEASE_MSG_RESULT;
    reply->id = req->id;
    if (store_connect_command(conn, "BEGIN", 0, NULL, err, errlen) < 0)
        return -1;
    if (store_connect_command(conn, "SELECT pg_advisory_xact_lock(" STORE_SCHEMA_LEASE_LOCK ")",
                              0, NULL, err, errlen) < 0)
        goto fail;
    for (uint32_t i = 0; i < req->reserve_count; i++)
        if (reserve(conn, req->tunnel, &req->reserve[i], err, errlen) < 0)
            goto fail;
    for (uint32_t i = 0; i < req->count; i++) {
        char address[64], pool[IP_PREFIX_TEXT_MAX];
        const char *why = NULL;
        int got = take_one(conn, gateway, req->tunnel, req->identity, &req->addresses[i],
                           address, sizeof(address), err, errlen);
        if (got < 0)
            goto fail;
        if (got == 0) {
            /* Nothing of this request is kept: the other pools' leases roll back. */
            PQclear(PQexec(conn, "ROLLBACK"));
            memset(reply->addresses, 0, sizeof(reply->addresses));
            reply->count = 0;
            reply->result = LEASE_RESULT_REFUSED;
            snprintf(reply->text, sizeof(reply->text), "the pool %s has no address left: "
                     "every one is held by a client connected to some hub of the fleet",
                     ip_prefix_format(&req->addresses[i], pool, sizeof(pool)));
            return 0;
        }
        if (ip_prefix_parse(address, &reply->addresses[i], &why) != 0) {
            snprintf(err, errlen, "the store gave %.64s, not an address: %s", address, why);
            goto fail;
        }
        reply->count = i + 1;
    }
    if (store_connect_command(conn, "COMMIT", 0, NULL, err, errlen) < 0)
        return -1;
    reply->result = LEASE_RESULT_OK;
    return 0;
fail:
    PQclear(PQexec(conn, "ROLLBACK"));
    memset(reply->addresses, 0, sizeof(reply->addresses));
    reply->count = 0;
    return -1;
}

int store_leases_release(PGconn *conn, const char *gateway, const char *tunnel,
                         const char *identity, char *err, size_t errlen)
{
    const char *params[] = { gateway, tunnel != NULL ? tunnel : "",
                             tunnel != NULL ? identity : "" };
    return store_connect_command(conn,
                                 "UPDATE ktlstun_lease SET held_by = array_remove(held_by, $1),"
                                 " released_at = CASE WHEN held_by = ARRAY[$1] THEN now()"
                                 "  ELSE released_at END"
                                 " WHERE $1 = ANY(held_by) AND NOT reserved"
                                 " AND ($2 = '' OR (tunnel = $2 AND identity = $3))",
                                 3, params, err, errlen);
}
