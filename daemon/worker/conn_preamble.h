/* conn_preamble — what a connection's outgoing socket carries before the stream: a
 * server tunnel's PROXY v2 header to its target (proxy_protocol = v2), or a client
 * tunnel's CONNECT to its HTTP proxy and the proxy's reply (proxy = http://...), read
 * without blocking and bounded. Internal to worker/conn*.c (struct conn). */
#ifndef KTLSTUN_CONN_PREAMBLE_H
#define KTLSTUN_CONN_PREAMBLE_H

#include <stddef.h>
#include <sys/socket.h>

#include "config/config.h"
#include "worker/stats.h"

struct conn;

/* Where TUNNEL's outgoing connect goes: its HTTP proxy when it has one, else its
 * target. Sets *ADDR and *LEN (pointing into TUNNEL) and *WHAT ("proxy" or "target",
 * static) and returns the address as configured, for log lines. */
const struct address *conn_preamble_dial(const struct tunnel_config *tunnel,
                                         const struct sockaddr_storage **addr, socklen_t *len,
                                         const char **what);

/* Returns 1 while C's preamble is under way: its outgoing socket is connected. */
int conn_preamble_started(const struct conn *c);

/* Runs C's preamble, its outgoing socket being connected: the first call builds what
 * to send, each call sends what is left and reads what is due. Returns 1 once done
 * (at once when the tunnel has none), 0 while it waits for the socket, -1 with
 * *RESULT and a reason a user can act on in REASON (LEN bytes): the caller ends C. */
int conn_preamble_step(struct conn *c, enum stats_result *result, char *reason, size_t len);

/* Names what C, still connecting, waits for, for "… timed out": "target connect",
 * "proxy connect" or "the proxy's reply to CONNECT" (static). */
const char *conn_preamble_stage(const struct conn *c);

/* Frees C's preamble state, the proxy credentials it sent wiped (none is fine). */
void conn_preamble_free(struct conn *c);

#endif
