#include "store/store_schema.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_connect.h"

/* Migration N brings version N-1 to N. Never edit one that shipped: add the next. */
static const char *const migrations[] = {
    [1] =
        "CREATE TABLE ktlstun_gateway ("
        "  name text PRIMARY KEY,"
        "  pid integer NOT NULL,"
        "  version text NOT NULL,"
        "  started_at timestamptz NOT NULL,"
        "  last_seen timestamptz NOT NULL);"
        "CREATE TABLE ktlstun_grant ("
        "  tunnel text NOT NULL,"
        "  sha256 text NOT NULL,"
        "  identity text NOT NULL,"
        "  username text NOT NULL DEFAULT '',"
        "  source text NOT NULL DEFAULT '',"
        "  expires_at timestamptz NOT NULL,"
        "  gateway text NOT NULL,"
        "  PRIMARY KEY (tunnel, sha256));"
        "CREATE TABLE ktlstun_event ("
        "  id bigserial PRIMARY KEY,"
        "  at timestamptz NOT NULL DEFAULT now(),"
        "  gateway text NOT NULL,"
        "  kind text NOT NULL CHECK (kind IN ('grant', 'revoke', 'disconnect')),"
        "  tunnel text NOT NULL DEFAULT '',"
        "  sha256 text NOT NULL DEFAULT '',"
        "  identity text NOT NULL DEFAULT '',"
        "  username text NOT NULL DEFAULT '',"
        "  source text NOT NULL DEFAULT '',"
        "  expires_at timestamptz);"
        "CREATE INDEX ktlstun_event_at ON ktlstun_event (at);",
    [2] =
        "ALTER TABLE ktlstun_event DROP CONSTRAINT ktlstun_event_kind_check;"
        "ALTER TABLE ktlstun_event ADD CONSTRAINT ktlstun_event_kind_check CHECK (kind IN"
        "  ('grant', 'revoke', 'disconnect', 'failure', 'success', 'unlock'));"
        "ALTER TABLE ktlstun_event ADD COLUMN tag bigint NOT NULL DEFAULT 0,"
        "  ADD COLUMN counted integer NOT NULL DEFAULT 0;"
        "ALTER TABLE ktlstun_gateway ADD COLUMN instance text NOT NULL DEFAULT '';"
        "CREATE TABLE ktlstun_lock_alert ("
        "  tunnel text NOT NULL,"
        "  kind text NOT NULL,"
        "  key text NOT NULL,"
        "  locked_until bigint NOT NULL,"
        "  gateway text NOT NULL,"
        "  PRIMARY KEY (tunnel, kind, key));",
    [3] =
        "CREATE TABLE ktlstun_lease ("
        "  tunnel text NOT NULL,"
        "  address inet NOT NULL,"
        "  identity text NOT NULL,"
        "  reserved boolean NOT NULL DEFAULT false,"
        "  held_by text[] NOT NULL DEFAULT '{}',"
        "  leased_at timestamptz NOT NULL DEFAULT now(),"
        "  released_at timestamptz,"
        "  PRIMARY KEY (tunnel, address));"
        "CREATE INDEX ktlstun_lease_identity ON ktlstun_lease (tunnel, identity);",
};

#define LATEST ((int)(sizeof(migrations) / sizeof(migrations[0])) - 1)

_Static_assert(LATEST == STORE_SCHEMA_VERSION, "STORE_SCHEMA_VERSION names the last migration");

/* Runs SQL; returns 0, or -1 with the reason in ERR. */
static int run(PGconn *conn, const char *sql, char *err, size_t errlen)
{
    return store_connect_command(conn, sql, 0, NULL, err, errlen);
}

/* Reads the version inside the current transaction (the table exists). */
static int read_version(PGconn *conn, char *err, size_t errlen)
{
    PGresult *res = store_connect_query(conn,
                                        "SELECT coalesce(max(version), 0) FROM ktlstun_schema", 0,
                                        NULL, PGRES_TUPLES_OK, err, errlen);
    if (res == NULL)
        return -1;
    int version = (int)strtol(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return version;
}

int store_schema_version(PGconn *conn, char *err, size_t errlen)
{
    PGresult *res = store_connect_query(conn, "SELECT to_regclass('ktlstun_schema') IS NOT NULL",
                                        0, NULL, PGRES_TUPLES_OK, err, errlen);
    if (res == NULL)
        return -1;
    int exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return exists ? read_version(conn, err, errlen) : 0;
}

int store_schema_migrate(PGconn *conn, int *from, char *err, size_t errlen)
{
    *from = 0;
    if (run(conn, "BEGIN", err, errlen) < 0)
        return -1;
    int version = -1;
    if (run(conn, "SELECT pg_advisory_xact_lock(7465787400)", err, errlen) < 0 ||
        run(conn, "CREATE TABLE IF NOT EXISTS ktlstun_schema ("
                  "  version integer PRIMARY KEY,"
                  "  migrated_at timestamptz NOT NULL DEFAULT now())", err, errlen) < 0 ||
        (version = read_version(conn, err, errlen)) < 0)
        goto rollback;
    *from = version;
    if (version > LATEST) {
        snprintf(err, errlen, "the store's schema is version %d, newer than this ktlstun's "
                 "(%d): upgrade ktlstun on this gateway", version, LATEST);
        goto rollback;
    }
    for (int step = version + 1; step <= LATEST; step++) {
        char record[96];
        snprintf(record, sizeof(record), "INSERT INTO ktlstun_schema (version) VALUES (%d)", step);
        if (run(conn, migrations[step], err, errlen) < 0 || run(conn, record, err, errlen) < 0) {
            char why[300];
            snprintf(why, sizeof(why), "%s", err);
            snprintf(err, errlen, "migration to schema version %d failed: %s", step, why);
            goto rollback;
        }
    }
    if (run(conn, "COMMIT", err, errlen) < 0)
        return -1;
    return 0;
rollback:
    PQclear(PQexec(conn, "ROLLBACK"));
    return -1;
}
