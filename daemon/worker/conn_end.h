/* conn_end — how a connection ends on its sockets. A clean end stays what it always
 * was (close_notify and FIN, half-close mirrored by the relay); an abort reaches each
 * peer as one: a reset on the plain side (SO_LINGER {1,0}, then close), a fatal alert
 * (kTLS) or a reset on the TLS side, never close_notify. Also the words a failed relay
 * ends with, and the warnings an abort is worth. */
#ifndef KTLSTUN_CONN_END_H
#define KTLSTUN_CONN_END_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

#include "relay/relay.h"
#include "relay/relay_splice.h"
#include "supervisor/generation.h"
#include "worker/stats.h"

/* The sockets of one connection as they are when it ends. */
struct conn_end_sockets {
    SSL *ssl;                      /* its userspace session, NULL once offloaded or never made */
    struct splice_relay *splice;   /* its kTLS relay (may not be started) */
    int tls_fd, plain_fd;          /* -1 when not open */
    int handshake_done;
    int offloaded;
    int close_notify_sent;         /* the userspace relay already ended our direction */
    unsigned char alert;           /* fatal alert for a withdrawn access, 0 for none */
    int clean_close;               /* the relay chose to close cleanly (RELAY_ABORT_NONE) */
};

/* Whether a connection that ends with RESULT was aborted (a reset, a fatal alert, a
 * truncated stream, an unreachable target, a failure of ours): its peers must not
 * take its end for a clean one. */
int conn_end_is_abort(enum stats_result result);

/* Arms SO_LINGER {1,0} on TLS_FD and PLAIN_FD, the sockets of a relay that starts:
 * should the worker die, the kernel's close resets both peers rather than FIN them.
 * conn_end_close disarms it for a clean end. */
void conn_end_arm(int tls_fd, int plain_fd);

/* Ends the sockets of S as RESULT says and closes them: an abort (conn_end_is_abort,
 * unless S->clean_close)
 * resets the plain side and, past the handshake, sends a fatal alert on the kTLS path
 * (S->alert, else internal_error) and resets the TLS side; a refusal resets the plain
 * side; any other end is clean, as before: close_notify unless S->alert says otherwise. */
void conn_end_close(const struct conn_end_sockets *s, enum stats_result result);

/* The close reason of a relay on TUNNEL, from PEER_ADDRESS, that failed as END says
 * with REASON: the words name who ended it (application, target, TLS peer, server).
 * On a client tunnel whose server ended the tunnel abnormally it also logs that at
 * warning (rate-limited). Writes into OUT (LEN bytes) and returns it, or returns REASON
 * when no other words fit. */
const char *conn_end_relay_failed(const struct tunnel *tunnel, const char *peer_address,
                                  const struct relay_end *end, const char *reason, char *out,
                                  size_t len);

/* Logs at warning, rate-limited per tunnel, that TUNNEL could not reach its target
 * for the peer at PEER_ADDRESS: REASON. */
void conn_end_target_unreachable(const struct tunnel *tunnel, const char *peer_address,
                                 const char *reason);

/* Writes the summaries of the rate-limited warnings due at NOW_MS (once a second). */
void conn_end_flush(uint64_t now_ms);

#endif
