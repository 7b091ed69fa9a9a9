/* conn_login — the login side of a connection on a gated server tunnel: the
 * `ktlstun login` channel (ALPN ktlstun-auth/1) or the browser login page
 * (browser_login = yes), whichever the gate chose during the handshake. Neither
 * reaches the target: they keep the connection's SSL and speak to the PAM helper. */
#ifndef KTLSTUN_CONN_LOGIN_H
#define KTLSTUN_CONN_LOGIN_H

#include <stdint.h>

#include "worker/conn_state.h"

/* Starts C's login (its handshake done, the gate having chosen a login); WAKE(C) is
 * called when the PAM helper's reply needs the login to run. Returns 0, or -1 when
 * out of memory. */
int conn_login_start(struct conn *c, void (*wake)(void *));

/* Moves C's login along. Returns NULL while it goes on, or why it ended (valid until
 * conn_login_free): the caller then closes C. */
const char *conn_login_step(struct conn *c);

/* Returns 1 when C's login passed its deadline at NOW_MS (it then tells the client;
 * the caller steps C), 0 otherwise. */
int conn_login_expire(struct conn *c, uint64_t now_ms);

/* Frees C's login, if any, cancelling a PAM login still running. */
void conn_login_free(struct conn *c);

#endif
