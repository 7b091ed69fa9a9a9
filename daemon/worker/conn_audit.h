/* conn_audit — the two lines every connection ends with at most one of: a refusal
 * (warning, MESSAGE_ID_REFUSED) or an audit record (info, MESSAGE_ID_AUDIT), each
 * also sent to the journal with structured fields. */
#ifndef KTLSTUN_CONN_AUDIT_H
#define KTLSTUN_CONN_AUDIT_H

#include <stdint.h>

#include "core/identity.h"

/* What one connection did, as the audit line reports it. */
struct conn_audit_record {
    const char *tunnel;
    const char *peer_address;
    const struct identity *identity;   /* NULL when the peer never verified */
    const char *tls_version;
    const char *cipher;
    int offloaded;                     /* kTLS both ways */
    uint64_t bytes_in, bytes_out;      /* towards the target, and back */
    uint64_t userspace_bytes;          /* payload that passed through this process */
    uint64_t elapsed_ms;
    const char *result;                /* how it ended, as the metrics' result label */
    const char *network;               /* a network tunnel's " key=value..." fields, or "" */
};

/* Logs the refusal of a connection from PEER_ADDRESS on TUNNEL, for REASON; IDENTITY
 * (NULL when unknown) names the peer in the journal fields. */
void conn_audit_refusal(const char *tunnel, const char *peer_address,
                        const struct identity *identity, const char *reason);

/* Logs the audit record of a connection that ended for CLOSE_REASON. */
void conn_audit_close(const struct conn_audit_record *record, const char *close_reason);

#endif
