/* refusal_notice — a refusal said where it helps: a client tunnel whose server refused
 * it (or that refused its server, or whose server speaks no TLS) logs at warning, in
 * plain words (tls/refusal_words.h), what happened and what to do, a few lines per
 * 10 s per tunnel (core/log_limit.h); every tunnel keeps its last refusal for
 * `ktlstun status` (worker/stats.h): a client tunnel the one it received, a server
 * tunnel the one it gave. */
#ifndef KTLSTUN_REFUSAL_NOTICE_H
#define KTLSTUN_REFUSAL_NOTICE_H

#include <stdint.h>

#include <openssl/ssl.h>

#include "supervisor/generation.h"
#include "tls/tls_context.h"
#include "worker/stats.h"

/* A connection on TUNNEL ended for REASON (its close or refusal reason). SSL: its
 * session, NULL once the kernel has it; PEER: what verification learned. REFUSED: it
 * ended as a refused handshake. FROM_SERVER: payload bytes the server had sent
 * through (client tunnels). Writes the warning and the last refusal in STATS when the
 * end is a refusal. Returns the reason to log: REASON, or for a server that speaks no
 * TLS the words for it (static storage, valid until the next call), which OpenSSL's
 * ("wrong version number") would only hide. */
const char *refusal_notice_conn_end(struct stats *stats, const struct tunnel *tunnel, SSL *ssl,
                                    const struct tls_peer *peer, int refused, uint64_t from_server,
                                    const char *reason);

/* Writes the summaries of held-back warnings due at NOW_MS (called once a second). */
void refusal_notice_flush(uint64_t now_ms);

#endif
