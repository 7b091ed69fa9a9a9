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

#endif
