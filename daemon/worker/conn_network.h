/* conn_network — a network (layer-3) tunnel's connection once its handshake is done:
 * the TUN device it relays to, the CONFIG exchange, keepalives, and its packet relay
 * (iprelay/packet_relay.h). conn.c drives it; everything network-specific is here.
 *
 * Hub: asks the supervisor for a device for the client's CN (worker/tun_link.h),
 * then sends CONFIG (the client's leased addresses, the MTU, the keepalive interval,
 * the networks behind the hub) as its first frame and relays, checking each packet's
 * source against the client's addresses and networks. Client: relays with the
 * dialer's device (worker/net_dialer.h); the hub's CONFIG is handed to the supervisor
 * to configure the device, and only then is the device read.
 *
 * Both ends send a keepalive every interval and answer the peer's at once; a peer
 * silent for three intervals ends the connection. Only conn*.c includes this. */
#ifndef KTLSTUN_CONN_NETWORK_H
#define KTLSTUN_CONN_NETWORK_H

#include <stdint.h>
#include <stdio.h>

#include "worker/conn_state.h"

/* Called once when a client connection ends: whether it got the hub's CONFIG. */
typedef void (*conn_network_ended)(void *arg, int configured);

/* Makes C (a network tunnel's connection, not yet past its handshake) a client one
 * relaying to TUN_FD (the dialer's; not owned). ENDED is called when it ends.
 * Returns 0, or -1 when memory is short. */
int conn_network_prepare_client(struct conn *c, int tun_fd, conn_network_ended ended, void *arg);

/* Starts C's network part once its handshake (and the kTLS handoff) is done. WAKE
 * (with ARG) is called when something C waits for arrived outside its own events
 * (the supervisor's answer); the caller then steps C. Returns 0, or -1 with C's end
 * in *RESULT and *REASON (owned by C). */
int conn_network_start(struct conn *c, void (*wake)(void *arg), void *arg,
                       enum stats_result *result, const char **reason);

/* Moves what C's TUN and session hold. Returns 0 to go on, or -1 with C's end in
 * *RESULT and *REASON (owned by C). */
int conn_network_step(struct conn *c, enum stats_result *result, const char **reason);

/* Keepalives and dead-peer detection at NOW_MS (called about once a second).
 * Returns 0, or -1 with C's end as above. */
int conn_network_tick(struct conn *c, uint64_t now_ms, enum stats_result *result,
                      const char **reason);

/* C's TLS socket had an event: the next step reads the session. */
void conn_network_note_tls(struct conn *c);

/* Whether C's network part moved packets since the last call (for idle timeouts). */
int conn_network_moved(struct conn *c);

/* The supervisor's request id of C's hub device (0 when none): its end orders name it. */
uint32_t conn_network_request(const struct conn *c);

/* Ends C's network part: stops watching its device, gives a hub device back (its
 * lease is released) and tells a client's dialer. C's sockets are conn.c's. */
void conn_network_end(struct conn *c);

/* Ends C's TLS session as RESULT says (ALERT: a fatal alert of the caller's choosing,
 * 0 for none): close_notify for a clean end, else the alert (internal_error unless
 * ALERT says otherwise) on kTLS and a reset. Returns 1 when it did, 0 when C's
 * session is still the caller's to end (no handshake, or no relay on the userspace
 * path). */
int conn_network_finish_tls(struct conn *c, enum stats_result result, unsigned char alert);

/* Sets *FROM_TLS and *TO_TLS to the bytes of the IP packets C carried each way.
 * Returns 1, or 0 (nothing set) for a stream tunnel's connection. */
int conn_network_bytes(const struct conn *c, uint64_t *from_tls, uint64_t *to_tls);

/* Frees C's network part. */
void conn_network_free(struct conn *c);

/* Adds C's network fields to its status record being written to OUT. */
void conn_network_describe(const struct conn *c, FILE *out);

/* Adds C's network fields to its audit line: writes " key=value..." into BUF (LEN
 * bytes). Returns BUF ("" for a stream tunnel's connection). */
const char *conn_network_audit(const struct conn *c, char *buf, size_t len);

#endif
