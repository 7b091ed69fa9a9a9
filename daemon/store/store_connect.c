#include "store/store_connect.h"

#include <stdio.h>
#include <string.h>

void store_connect_error(PGconn *conn, char *err, size_t errlen)
{
    const char *why = conn != NULL ? PQerrorMessage(conn) : "out of memory";
    if (why == NULL || why[0] == '\0')
        why = "no reason given";
    /* libpq's multi-line messages: the first line says what failed. */
    snprintf(err, errlen, "%.*s", (int)strcspn(why, "\n"), why);
}

/* Without parameters, the simple protocol: a migration is several statements in one
 * string, which the extended protocol refuses. */
static PGresult *exec(PGconn *conn, const char *sql, int count, const char *const *params)
{
    if (count == 0)
        return PQexec(conn, sql);
    return PQexecParams(conn, sql, count, NULL, params, NULL, NULL, 0);
}

PGresult *store_connect_query(PGconn *conn, const char *sql, int count,
                              const char *const *params, ExecStatusType wanted, char *err,
                              size_t errlen)
{
    PGresult *res = exec(conn, sql, count, params);
    if (PQresultStatus(res) == wanted)
        return res;
    store_connect_error(conn, err, errlen);
    PQclear(res);
    return NULL;
}

int store_connect_command(PGconn *conn, const char *sql, int count,
                          const char *const *params, char *err, size_t errlen)
{
    PGresult *res = exec(conn, sql, count, params);
    ExecStatusType status = PQresultStatus(res);
    PQclear(res);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK)
        return 0;
    store_connect_error(conn, err, errlen);
    return -1;
}

/* libpq prints the server's NOTICEs on stderr; they are not problems (the IF NOT EXISTS
 * of a migration that found its table), and would clutter ktlstun's output and the
 * journal. Warnings and errors still reach the caller through the results. */
static void ignore_notice(void *arg, const char *message)
{
    (void)arg, (void)message;
}

PGconn *store_connect_open(const char *conninfo, const char *application, char *err,
                           size_t errlen)
{
    /* libpq takes keywords in order and keeps the last value: the defaults come before
     * the expanded connection string, which may override them, and the name after. */
    const char *const keywords[] = {
        "connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",
        "keepalives_count", "tcp_user_timeout", "dbname", "application_name", NULL,
    };
    const char *const values[] = {
        "5", "1", "5", "2", "2", "5000", conninfo, application, NULL,
    };
    PGconn *conn = PQconnectdbParams(keywords, values, 1);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        store_connect_error(conn, err, errlen);
        PQfinish(conn);
        return NULL;
    }
    PQsetNoticeProcessor(conn, ignore_notice, NULL);
    if (store_connect_command(conn, "SET statement_timeout = 5000", 0, NULL, err, errlen) < 0) {
        PQfinish(conn);
        return NULL;
    }
    return conn;
}

void store_connect_describe(PGconn *conn, char *buf, size_t len)
{
    const char *host = PQhost(conn), *port = PQport(conn);
    snprintf(buf, len, "%s:%s", host != NULL ? host : "?", port != NULL ? port : "?");
}
