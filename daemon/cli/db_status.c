#include "cli/db_status.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_args.h"
#include "config/config.h"
#include "core/limits.h"
#include "core/utc_time.h"
#include "store/store_connect.h"
#include "store/store_schema.h"

/* A gateway that has not written last_seen for this long is shown as not seen: the
 * store process of a running gateway writes it every few seconds. */
#define DB_STATUS_RECENT_S 15

static void usage(FILE *out)
{
    fprintf(out, "usage: ktlstun db status [-c FILE]\n"
                 "       ktlstun db migrate [-c FILE]\n"
                 "  status   the shared state store: server, schema version, gateways, grants\n"
                 "  migrate  create or migrate the store's schema to this ktlstun's version\n");
}

/* Copies TEXT into BUF (LEN bytes) with control bytes as '?': names come from the
 * database, which anyone with write access to it may have filled. */
static const char *printable(const char *text, char *buf, size_t len)
{
    snprintf(buf, len, "%s", text);
    for (char *c = buf; *c != '\0'; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f)
            *c = '?';
    return buf;
}

/* Runs SQL that returns rows; returns the result, or NULL after telling the user. */
static PGresult *rows(PGconn *conn, const char *sql)
{
    char err[512];
    PGresult *res = store_connect_query(conn, sql, 0, NULL, PGRES_TUPLES_OK, err, sizeof(err));
    if (res == NULL)
        fprintf(stderr, "ktlstun db status: the state store refused a query: %s\n", err);
    return res;
}

/* "store: HOST:PORT, PostgreSQL 15.10, primary". Returns 0, or -1 after telling why. */
static int print_server(PGconn *conn)
{
    char where[300];
    store_connect_describe(conn, where, sizeof(where));
    PGresult *res = rows(conn, "SELECT pg_is_in_recovery()");
    if (res == NULL)
        return -1;
    int standby = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    int version = PQserverVersion(conn);
    printf("store: %s, PostgreSQL %d.%d, %s\n", where, version / 10000, version % 10000,
           standby ? "standby (read only: gateways cannot write to it)" : "primary");
    return 0;
}

/* One line per gateway, then the total of live grants. Returns 0, or -1. */
static int print_gateways(PGconn *conn)
{
    PGresult *res = rows(conn,
                         "SELECT g.name, g.pid, g.version, extract(epoch FROM g.started_at)::bigint,"
                         " greatest(0, floor(extract(epoch FROM now() - g.last_seen)))::bigint,"
                         " (SELECT count(*) FROM ktlstun_grant r"
                         "   WHERE r.gateway = g.name AND r.expires_at > now())"
                         " FROM ktlstun_gateway g ORDER BY g.name");
    if (res == NULL)
        return -1;
    int count = PQntuples(res);
    printf("gateways: %d\n", count);
    for (int row = 0; row < count; row++) {
        char name[LIMIT_GATEWAY_NAME * 2], version[64], started[32], state[64];
        long long seen = strtoll(PQgetvalue(res, row, 4), NULL, 10);
        if (seen < DB_STATUS_RECENT_S)
            snprintf(state, sizeof(state), "up");
        else
            snprintf(state, sizeof(state), "not seen for %lld s", seen);
        printf("gateway %s: %s, pid %s, version %s, started %s, last seen %lld s ago, "
               "%s live grant%s\n",
               printable(PQgetvalue(res, row, 0), name, sizeof(name)), state,
               PQgetvalue(res, row, 1), printable(PQgetvalue(res, row, 2), version, sizeof(version)),
               utc_time_format(strtoll(PQgetvalue(res, row, 3), NULL, 10), started, sizeof(started)),
               seen, PQgetvalue(res, row, 5), strcmp(PQgetvalue(res, row, 5), "1") == 0 ? "" : "s");
    }
    PQclear(res);
    res = rows(conn, "SELECT count(*) FROM ktlstun_grant WHERE expires_at > now()");
    if (res == NULL)
        return -1;
    printf("live grants: %s\n", PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

/* One line per network tunnel whose hubs lease addresses in the store (schema 3 on). */
static int print_leases(PGconn *conn)
{
    PGresult *res = rows(conn,
                         "SELECT tunnel,"
                         " count(*) FILTER (WHERE NOT reserved AND cardinality(held_by) > 0),"
                         " count(*) FILTER (WHERE NOT reserved AND cardinality(held_by) = 0),"
                         " count(*) FILTER (WHERE reserved)"
                         " FROM ktlstun_lease GROUP BY tunnel ORDER BY tunnel");
    if (res == NULL)
        return -1;
    for (int row = 0; row < PQntuples(res); row++) {
        char name[LIMIT_TUNNEL_NAME * 2];
        printf("network tunnel %s: %s addresses held, %s kept for clients gone, %s never "
               "leased (hubs' and fixed)\n",
               printable(PQgetvalue(res, row, 0), name, sizeof(name)), PQgetvalue(res, row, 1),
               PQgetvalue(res, row, 2), PQgetvalue(res, row, 3));
    }
    PQclear(res);
    return 0;
}

static int status(PGconn *conn)
{
    if (print_server(conn) < 0)
        return 1;
    char err[512];
    int version = store_schema_version(conn, err, sizeof(err));
    if (version < 0) {
        fprintf(stderr, "ktlstun db status: cannot read the schema version: %s\n", err);
        return 1;
    }
    if (version == 0) {
        printf("schema: not created yet: the first gateway that starts creates it "
               "(this ktlstun: version %d)\n", STORE_SCHEMA_VERSION);
        return 0;
    }
    if (version > STORE_SCHEMA_VERSION) {
        printf("schema: version %d, newer than this ktlstun's (%d): upgrade ktlstun\n",
               version, STORE_SCHEMA_VERSION);
        fprintf(stderr, "ktlstun db status: the store's schema is version %d, newer than this "
                        "ktlstun's (%d): upgrade ktlstun\n", version, STORE_SCHEMA_VERSION);
        return 1;
    }
    if (version < STORE_SCHEMA_VERSION)
        printf("schema: version %d, older than this ktlstun's (%d): the next gateway that "
               "starts migrates it (or: ktlstun db migrate)\n", version, STORE_SCHEMA_VERSION);
    else
        printf("schema: version %d (this ktlstun: version %d)\n", version, STORE_SCHEMA_VERSION);
    if (print_gateways(conn) < 0 || (version >= 3 && print_leases(conn) < 0))
        return 1;
    return 0;
}

static int migrate(PGconn *conn)
{
    char err[512];
    int from = 0;
    if (store_schema_migrate(conn, &from, err, sizeof(err)) < 0) {
        fprintf(stderr, "ktlstun db migrate: %s\n", err);
        return 1;
    }
    printf("schema version %d (was %d)\n", STORE_SCHEMA_VERSION, from);
    return 0;
}

int db_status_command(int argc, char **argv)
{
    if (argc < 2 || (strcmp(argv[1], "status") != 0 && strcmp(argv[1], "migrate") != 0)) {
        if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
            usage(stdout);
            return 0;
        }
        usage(stderr);
        return 2;
    }
    int is_status = strcmp(argv[1], "status") == 0;
    static const struct cli_args_spec spec = { .min_args = 0, .max_args = 0, .usage = usage };
    struct cli_args args;
    int parsed = cli_args_parse(argc - 1, argv + 1, &spec, &args);
    if (parsed >= 0)
        return parsed;
    const char *config_path = args.config_path;

    const char *me = is_status ? "ktlstun db status" : "ktlstun db migrate";
    char *errors = NULL;
    struct config *config = config_load(config_path, &errors);
    PGconn *conn = NULL;
    int result = 1;
    if (config == NULL) {
        fprintf(stderr, "%s%s: %s has errors\n", errors != NULL ? errors : "", me, config_path);
        goto out;
    }
    if (config->global.state_store == NULL) {
        if (is_status) {
            printf("store: file: the state is kept in files under %s (state_store = file)\n",
                   config->global.state_dir);
            result = 0;
        } else {
            fprintf(stderr, "%s: state_store = file: there is no database to migrate\n", me);
        }
        goto out;
    }
    char err[512];
    conn = store_connect_open(config->global.state_store, me, err, sizeof(err));
    if (conn == NULL) {
        fprintf(stderr, "%s: cannot reach the state store: %s\n", me, err);
        goto out;
    }
    result = is_status ? status(conn) : migrate(conn);
out:
    PQfinish(conn);
    config_free(config);
    free(errors);
    return result;
}
