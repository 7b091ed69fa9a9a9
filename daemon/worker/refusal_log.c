#include "worker/refusal_log.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/event_loop.h"
#include "core/log.h"
#include "core/log_limited.h"
#include "core/text.h"
#include "worker/conn_audit.h"
#include "worker/conn_limit.h"

/* Made on a tunnel's first refusal of each kind: most never see one. */
static struct log_limit *limits[REFUSAL_KIND_COUNT][CONN_LIMIT_TUNNEL_SLOTS];

void refusal_log_write(enum refusal_kind kind, const struct tunnel *tunnel, const char *peer_address,
                       const struct identity *identity, const char *reason)
{
    char line[LOG_LIMIT_TEXT], quoted[300];
    snprintf(line, sizeof(line), "refused tunnel=%s peer=%s reason=\"%s\"", tunnel->config->name,
             peer_address, text_log_quote(reason, quoted, sizeof(quoted)));
    if (log_limited_admit(&limits[kind][tunnel->limit_slot], event_loop_now_ms(), line))
        conn_audit_refusal(tunnel->config->name, peer_address, identity, reason);
}

void refusal_log_flush(uint64_t now_ms)
{
    for (int k = 0; k < REFUSAL_KIND_COUNT; k++)
        for (int t = 0; t < CONN_LIMIT_TUNNEL_SLOTS; t++)
            log_limited_flush(limits[k][t], now_ms);
}
