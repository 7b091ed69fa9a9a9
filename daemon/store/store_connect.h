/* store_connect — one connection to the shared state store (PostgreSQL through libpq),
 * with every wait bounded: a store that stops answering is noticed within seconds,
 * never waited on for ever. Used by the store process and by `ktlstun db`. */
#ifndef KTLSTUN_STORE_CONNECT_H
#define KTLSTUN_STORE_CONNECT_H

#include <stddef.h>
#include <libpq-fe.h>

/* Opens a connection to CONNINFO (a libpq connection string, see state_store) named
 * APPLICATION (application_name). Defaults the connection string may override:
 * connect_timeout 5 s, TCP keepalives after 5 s, tcp_user_timeout 5 s; then sets
 * statement_timeout to 5 s. Returns the connection (the caller PQfinish()es it), or
 * NULL with libpq's reason, first line only, in ERR (ERRLEN bytes). */
PGconn *store_connect_open(const char *conninfo, const char *application, char *err,
                           size_t errlen);

/* Writes "HOST:PORT" of CONN (the server it reached, of several) into BUF (LEN
 * bytes). */
void store_connect_describe(PGconn *conn, char *buf, size_t len);

/* Copies the first line of CONN's last error into ERR (ERRLEN bytes). */
void store_connect_error(PGconn *conn, char *err, size_t errlen);

/* Runs SQL with COUNT text PARAMS (may be NULL when COUNT is 0: then SQL may hold
 * several statements) on CONN. Returns the
 * result when its status is WANTED (the caller PQclear()s it), else NULL with libpq's
 * reason in ERR (ERRLEN bytes). */
PGresult *store_connect_query(PGconn *conn, const char *sql, int count,
                              const char *const *params, ExecStatusType wanted, char *err,
                              size_t errlen);

/* Runs SQL with COUNT text PARAMS for its effect: a statement, or a query whose rows are
 * not wanted. Returns 0, or -1 with libpq's reason in ERR (ERRLEN bytes). */
int store_connect_command(PGconn *conn, const char *sql, int count,
                          const char *const *params, char *err, size_t errlen);

#endif
