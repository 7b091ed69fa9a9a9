/* pam_link — a worker's end of its socketpair to the PAM helper: one more fd in the
 * worker's event loop, never a blocking call. Login channels register for the
 * helper's replies by request id. */
#ifndef KTLSTUN_PAM_LINK_H
#define KTLSTUN_PAM_LINK_H

#include <stdint.h>

#include "core/event_loop.h"
#include "proto/helper_msg.h"

struct pam_link;

/* Called with each message the helper sends for a registered request. */
typedef void pam_link_deliver(void *arg, const struct helper_msg *msg);

/* Takes FD (the worker's end, or -1 when there is no helper) and watches it in LOOP.
 * Returns the link, or NULL when FD < 0 or after logging. */
struct pam_link *pam_link_open(struct event_loop *loop, int fd);

/* Closes LINK (NULL is fine). Registered channels get nothing more. */
void pam_link_close(struct pam_link *link);

/* Called with a key as `ktlstun disconnect` takes it, when the helper passes on
 * another gateway's disconnect (shared state store). */
typedef void pam_link_disconnect_fn(void *arg, const char *key);

/* LINK (NULL is fine) calls DISCONNECT with ARG for each such message. */
void pam_link_on_disconnect(struct pam_link *link, pam_link_disconnect_fn *disconnect, void *arg);

/* Called when the helper asks for the live connections to be checked against the
 * grants table at once (an administrator revoked grants). */
typedef void pam_link_recheck_fn(void *arg);

/* LINK (NULL is fine) calls RECHECK with ARG for each such message. */
void pam_link_on_recheck(struct pam_link *link, pam_link_recheck_fn *recheck, void *arg);

/* Registers a login: DELIVER(ARG, msg) gets the helper's messages for the returned
 * request id (never 0). Returns 0 when the link is gone or full. */
uint32_t pam_link_register(struct pam_link *link, pam_link_deliver *deliver, void *arg);

/* Forgets request ID (sending CANCEL first when CANCEL is set, so the helper ends
 * that login's PAM child). */
void pam_link_unregister(struct pam_link *link, uint32_t id, int cancel);

/* Sends MSG to the helper. Returns 0, or -1 when the helper is gone or not keeping
 * up (the caller fails that login as unavailable). */
int pam_link_send(struct pam_link *link, const struct helper_msg *msg);

/* Best effort: tells the helper a handshake from SOURCE on TUNNEL was refused. */
void pam_link_report_handshake_failure(struct pam_link *link, const char *tunnel,
                                       const char *source, const char *reason);

#endif
