#include "worker/conn_audit.h"

#include <stdio.h>

#include "core/log.h"
#include "core/message_ids.h"
#include "core/text.h"

void conn_audit_refusal(const char *tunnel, const char *peer_address,
                        const struct identity *identity, const char *reason)
{
    char q[600];
    const struct log_field fields[] = {
        { "TUNNEL", tunnel },
        { "PEER", peer_address },
        { "REASON", reason },
        { "PEER_ID", identity ? identity->subject : "" },
    };
    log_event(LOG_LEVEL_WARNING, MESSAGE_ID_REFUSED, fields, sizeof(fields) / sizeof(fields[0]),
              "refused tunnel=%s peer=%s reason=\"%s\"", tunnel, peer_address,
              text_log_quote(reason, q, sizeof(q)));
}

void conn_audit_close(const struct conn_audit_record *r, const char *close_reason)
{
    const struct identity *id = r->identity;
    char in_text[24], out_text[24], copied_text[24], elapsed_text[24];
    snprintf(in_text, sizeof(in_text), "%llu", (unsigned long long)r->bytes_in);
    snprintf(out_text, sizeof(out_text), "%llu", (unsigned long long)r->bytes_out);
    snprintf(copied_text, sizeof(copied_text), "%llu", (unsigned long long)r->userspace_bytes);
    snprintf(elapsed_text, sizeof(elapsed_text), "%llu", (unsigned long long)r->elapsed_ms);
    const struct log_field fields[] = {
        { "TUNNEL", r->tunnel },
        { "PEER", r->peer_address },
        { "PEER_ID", id ? id->subject : "" },
        { "PEER_SANS", id ? id->sans : "" },
        { "PEER_SHA256", id ? id->sha256 : "" },
        { "TLS_VERSION", r->tls_version },
        { "TLS_CIPHER", r->cipher },
        { "KTLS", r->offloaded ? "tx+rx" : "off" },
        { "BYTES_IN", in_text },
        { "BYTES_OUT", out_text },
        { "USERSPACE_BYTES", copied_text },
        { "DURATION_MS", elapsed_text },
        { "CLOSE_REASON", close_reason },
        { "RESULT", r->result },
    };
    char subject[600], sans[600], reason[400];
    log_event(LOG_LEVEL_INFO, MESSAGE_ID_AUDIT, fields, sizeof(fields) / sizeof(fields[0]),
              "audit tunnel=%s peer=%s subject=\"%s\" sans=\"%s\" sha256=%s tls=%s cipher=%s "
              "ktls=%s bytes_in=%llu bytes_out=%llu userspace_bytes=%llu duration=%llu.%03llus "
              "close=\"%s\" result=%s%s",
              r->tunnel, r->peer_address,
              text_log_quote(id ? id->subject : "", subject, sizeof(subject)),
              text_log_quote(id ? id->sans : "", sans, sizeof(sans)), id ? id->sha256 : "-",
              r->tls_version, r->cipher, r->offloaded ? "tx+rx" : "off",
              (unsigned long long)r->bytes_in, (unsigned long long)r->bytes_out,
              (unsigned long long)r->userspace_bytes,
              (unsigned long long)(r->elapsed_ms / 1000), (unsigned long long)(r->elapsed_ms % 1000),
              text_log_quote(close_reason, reason, sizeof(reason)), r->result,
              r->network != NULL ? r->network : "");
}
