/* refusal_log — the refusal lines a flood repeats (handshake timeouts, connections
 * over a limit), kept from flooding the log by core/log_limit.h: per worker, per
 * tunnel and kind, a few lines in each 10 s, then one line that sums up the rest. */
#ifndef KTLSTUN_REFUSAL_LOG_H
#define KTLSTUN_REFUSAL_LOG_H

#include <stdint.h>

#include "core/identity.h"
#include "supervisor/generation.h"

enum refusal_kind {
    REFUSAL_TIMEOUT,              /* handshake or target connect timed out */
    REFUSAL_MAX_CONNECTIONS,
    REFUSAL_SOURCE_CONNECTIONS,   /* max_connections_per_source */
    REFUSAL_SOURCE_RATE,          /* handshake_rate_per_source */
    REFUSAL_SOURCE_TABLE,         /* the per-source table has no room */
    REFUSAL_KIND_COUNT
};

/* Writes the refusal of a connection from PEER_ADDRESS on TUNNEL for REASON as
 * conn_audit_refusal does (IDENTITY may be NULL), unless too many of KIND on TUNNEL
 * came before it lately: then it is counted for the summary. */
void refusal_log_write(enum refusal_kind kind, const struct tunnel *tunnel, const char *peer_address,
                       const struct identity *identity, const char *reason);

/* Writes the summaries due at NOW_MS (called once a second). */
void refusal_log_flush(uint64_t now_ms);

#endif
