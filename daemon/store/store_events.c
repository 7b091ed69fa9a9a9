#include "store/store_events.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/text.h"
#include "store/store_connect.h"
#include "store/store_schema.h"

static const char *const kind_names[] = {
    [STORE_EVENT_GRANT] = "grant",
    [STORE_EVENT_REVOKE] = "revoke",
    [STORE_EVENT_DISCONNECT] = "disconnect",
    [STORE_EVENT_FAILURE] = "failure",
    [STORE_EVENT_SUCCESS] = "success",
    [STORE_EVENT_UNLOCK] = "unlock",
};

const char *store_events_kind_name(enum store_event_kind kind)
{
    if (kind < STORE_EVENT_GRANT || kind > STORE_EVENT_UNLOCK)
        return "?";
    return kind_names[kind];
}

void store_events_admin_revoke(struct store_event *event, const char *gateway,
                               const char *tunnel, const char *key)
{
    unsigned char digest[LIMIT_SHA256_HEX / 2];
    memset(event, 0, sizeof(*event));
    event->kind = STORE_EVENT_REVOKE;
    event->tag = STORE_REVOKE_BY_ADMIN;
    snprintf(event->gateway, sizeof(event->gateway), "%s", gateway);
    snprintf(event->tunnel, sizeof(event->tunnel), "%s", tunnel != NULL ? tunnel : "");
    if (text_hex_decode_fingerprint(key, digest, sizeof(digest)) == 0) {
        text_hex_encode(digest, sizeof(digest), event->sha256);
        snprintf(event->identity, sizeof(event->identity), "%s", event->sha256);
    } else {
        snprintf(event->identity, sizeof(event->identity), "%s", key);
    }
}

static int kind_parse(const char *name)
{
    for (int k = STORE_EVENT_GRANT; k <= STORE_EVENT_UNLOCK; k++)
        if (strcmp(kind_names[k], name) == 0)
            return k;
    return -1;
}

static void rollback(PGconn *conn)
{
    PQclear(PQexec(conn, "ROLLBACK"));
}

/* What EVENT changes in ktlstun_grant. */
static int apply_to_grants(PGconn *conn, const struct store_event *event, const char *expires,
                           char *err, size_t errlen)
{
    if (event->kind == STORE_EVENT_GRANT) {
        const char *params[] = { event->tunnel, event->sha256, event->identity,
                                 event->username, event->source, expires, event->gateway };
        return store_connect_command(conn,
                       "INSERT INTO ktlstun_grant (tunnel, sha256, identity, username, source,"
                       " expires_at, gateway) VALUES ($1, $2, $3, $4, $5, to_timestamp($6), $7)"
                       " ON CONFLICT (tunnel, sha256) DO UPDATE SET identity = $3,"
                       " username = $4, source = $5, expires_at = to_timestamp($6), gateway = $7",
                       7, params, err, errlen);
    }
    if (event->kind == STORE_EVENT_UNLOCK) {
        /* A lock made after an unlock is a new lock, with an alert of its own. */
        const char *params[] = { event->identity };
        return store_connect_command(conn, "DELETE FROM ktlstun_lock_alert WHERE key = $1", 1,
                                     params, err, errlen);
    }
    if (event->kind == STORE_EVENT_REVOKE) {
        const char *params[] = { event->identity, event->tunnel, event->sha256 };
        return store_connect_command(conn,
                                     "DELETE FROM ktlstun_grant WHERE ($2 = '' OR tunnel = $2) AND"
                                     " CASE WHEN $3 = '' THEN identity = $1 ELSE sha256 = $3 END",
                                     3, params, err, errlen);
    }
    return 0;
}

int store_events_publish(PGconn *conn, struct store_event *event, char *err, size_t errlen)
{
    char expires[32], id[32], tag[32], counted[16];
    snprintf(expires, sizeof(expires), "%lld", (long long)event->expires_at);
    /* bigint is signed: the tag's 64 bits travel as their two's complement. */
    snprintf(tag, sizeof(tag), "%lld", (long long)event->tag);
    snprintf(counted, sizeof(counted), "%u", event->counted);
    const char *params[] = { event->gateway, store_events_kind_name(event->kind), event->tunnel,
                             event->sha256, event->identity, event->username, event->source,
                             expires, tag, counted };
    if (store_connect_command(conn, "BEGIN", 0, NULL, err, errlen) < 0)
        return -1;
    /* One writer at a time: ids then commit in the order they were taken. */
    if (store_connect_command(conn, "SELECT pg_advisory_xact_lock(" STORE_SCHEMA_EVENT_LOCK ")",
                              0, NULL, err, errlen) < 0 ||
        apply_to_grants(conn, event, expires, err, errlen) < 0)
        goto fail;
    PGresult *res = store_connect_query(conn,
                          "INSERT INTO ktlstun_event (gateway, kind, tunnel, sha256, identity,"
                          " username, source, expires_at, tag, counted) VALUES ($1, $2, $3, $4,"
                          " $5, $6, $7,"
                          " CASE WHEN $8::bigint = 0 THEN NULL ELSE to_timestamp($8::bigint) END,"
                          " $9, $10) RETURNING id",
                          10, params, PGRES_TUPLES_OK, err, errlen);
    if (res == NULL)
        goto fail;
    snprintf(id, sizeof(id), "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    const char *notify[] = { id };
    if (store_connect_command(conn, "SELECT pg_notify('" STORE_SCHEMA_CHANNEL "', $1)", 1,
                              notify, err, errlen) < 0)
        goto fail;
    if (store_connect_command(conn, "COMMIT", 0, NULL, err, errlen) < 0)
        return -1;
    event->id = strtoll(id, NULL, 10);
    return 0;
fail:
    rollback(conn);
    return -1;
}

static void copy_field(char *out, size_t cap, const PGresult *res, int row, int column)
{
    snprintf(out, cap, "%s", PQgetvalue(res, row, column));
}

/* Columns: id, at, gateway, kind, tunnel, sha256, identity, username, source,
 * expires_at (epoch seconds, 0 when null), tag, counted. */
static int read_event(const PGresult *res, int row, struct store_event *event)
{
    memset(event, 0, sizeof(*event));
    int kind = kind_parse(PQgetvalue(res, row, 3));
    if (kind < 0)
        return -1;
    event->kind = (enum store_event_kind)kind;
    event->id = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    event->at = strtoll(PQgetvalue(res, row, 1), NULL, 10);
    copy_field(event->gateway, sizeof(event->gateway), res, row, 2);
    copy_field(event->tunnel, sizeof(event->tunnel), res, row, 4);
    copy_field(event->sha256, sizeof(event->sha256), res, row, 5);
    copy_field(event->identity, sizeof(event->identity), res, row, 6);
    copy_field(event->username, sizeof(event->username), res, row, 7);
    copy_field(event->source, sizeof(event->source), res, row, 8);
    event->expires_at = strtoll(PQgetvalue(res, row, 9), NULL, 10);
    event->tag = (uint64_t)strtoll(PQgetvalue(res, row, 10), NULL, 10);
    event->counted = (uint32_t)strtoul(PQgetvalue(res, row, 11), NULL, 10);
    return 0;
}

int store_events_fetch(PGconn *conn, int64_t after, struct store_event *out, size_t cap,
                       char *err, size_t errlen)
{
    char after_text[32], limit[32];
    snprintf(after_text, sizeof(after_text), "%lld", (long long)after);
    snprintf(limit, sizeof(limit), "%zu", cap);
    const char *params[] = { after_text, limit };
    PGresult *res = store_connect_query(conn,
                          "SELECT id, extract(epoch FROM at)::bigint, gateway, kind, tunnel,"
                          " sha256, identity, username, source,"
                          " coalesce(extract(epoch FROM expires_at)::bigint, 0), tag, counted"
                          " FROM ktlstun_event WHERE id > $1 ORDER BY id LIMIT $2",
                          2, params, PGRES_TUPLES_OK, err, errlen);
    if (res == NULL)
        return -1;
    int count = 0;
    for (int row = 0; row < PQntuples(res); row++)
        if (read_event(res, row, &out[count]) == 0)
            count++;
    PQclear(res);
    return count;
}

int store_events_snapshot(PGconn *conn, store_events_grant_fn *each, void *arg,
                          int64_t *last_id, char *err, size_t errlen)
{
    if (store_connect_command(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL,
                              err, errlen) < 0)
        return -1;
    int count = -1;
    PGresult *last = store_connect_query(conn, "SELECT coalesce(max(id), 0) FROM ktlstun_event",
                                         0, NULL, PGRES_TUPLES_OK, err, errlen);
    if (last == NULL)
        goto out;
    *last_id = strtoll(PQgetvalue(last, 0, 0), NULL, 10);
    PQclear(last);
    PGresult *res = store_connect_query(conn,
                          "SELECT 0, 0, gateway, 'grant', tunnel, sha256, identity, username,"
                          " source, extract(epoch FROM expires_at)::bigint, 0, 0"
                          " FROM ktlstun_grant WHERE expires_at > now()",
                          0, NULL, PGRES_TUPLES_OK, err, errlen);
    if (res == NULL)
        goto out;
    count = 0;
    for (int row = 0; row < PQntuples(res); row++) {
        struct store_event event;
        if (read_event(res, row, &event) == 0) {
            each(arg, &event);
            count++;
        }
    }
    PQclear(res);
out:
    if (count < 0)
        rollback(conn);
    else if (store_connect_command(conn, "COMMIT", 0, NULL, err, errlen) < 0)
        count = -1;
    return count;
}

int store_events_claim_alert(PGconn *conn, const char *gateway, const char *tunnel,
                             const char *kind, const char *key, int64_t locked_until,
                             int64_t now, char *err, size_t errlen)
{
    char until[32], at[32];
    snprintf(until, sizeof(until), "%lld", (long long)locked_until);
    snprintf(at, sizeof(at), "%lld", (long long)now);
    const char *params[] = { tunnel, kind, key, until, gateway, at };
    /* The row lock of the conflict serializes two claims: the second sees the first's
     * lock in force and updates nothing. */
    PGresult *res = store_connect_query(conn,
                          "INSERT INTO ktlstun_lock_alert"
                          " (tunnel, kind, key, locked_until, gateway)"
                          " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (tunnel, kind, key) DO UPDATE"
                          " SET locked_until = $4, gateway = $5"
                          " WHERE ktlstun_lock_alert.locked_until <= $6::bigint RETURNING 1",
                          6, params, PGRES_TUPLES_OK, err, errlen);
    if (res == NULL)
        return -1;
    int claimed = PQntuples(res) == 1;
    PQclear(res);
    return claimed;
}

int store_events_prune(PGconn *conn, int64_t max_age, char *err, size_t errlen)
{
    char age[32];
    snprintf(age, sizeof(age), "%lld", (long long)max_age);
    const char *params[] = { age };
    if (store_connect_command(conn,
                              "DELETE FROM ktlstun_event"
                              " WHERE at < now() - make_interval(secs => $1)",
                              1, params, err, errlen) < 0 ||
        store_connect_command(conn, "DELETE FROM ktlstun_grant WHERE expires_at <= now()", 0,
                              NULL, err, errlen) < 0)
        return -1;
    return 0;
}
