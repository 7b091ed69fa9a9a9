#include "worker/refusal_log.h"

#include <stdio.h>
#include <stdlib.h>

#include "core/event_loop.h"
#include "core/log.h"
#include "core/log_limit.h"
#include "core/text.h"
#include "worker/conn_audit.h"
#include "worker/conn_limit.h"

/* Made on a tunnel's first refusal of each kind: most never see one. */
static struct log_limit *limits[REFUSAL_KIND_COUNT][CONN_LIMIT_TUNNEL_SLOTS];

static void write_summary(struct log_limit *limit, uint64_t now_ms)
{
    char summary[LOG_LIMIT_TEXT + 64];
    if (limit != NULL && log_limit_summary(limit, now_ms, summary, sizeof(summary)))
        log_warning("%s", summary);
}

void refusal_log_write(enum refusal_kind kind, const struct tunnel *tunnel, const char *peer_address,
                       const struct identity *identity, const char *reason)
{
    struct log_limit **limit = &limits[kind][tunnel->limit_slot];
    if (*limit == NULL && (*limit = calloc(1, sizeof(**limit))) == NULL) {
        conn_audit_refusal(tunnel->config->name, peer_address, identity, reason);
        return;
    }
    uint64_t now = event_loop_now_ms();
    write_summary(*limit, now);
    char line[LOG_LIMIT_TEXT], quoted[300];
    snprintf(line, sizeof(line), "refused tunnel=%s peer=%s reason=\"%s\"", tunnel->config->name,
             peer_address, text_log_quote(reason, quoted, sizeof(quoted)));
    if (log_limit_admit(*limit, now, line))
        conn_audit_refusal(tunnel->config->name, peer_address, identity, reason);
}

void refusal_log_flush(uint64_t now_ms)
{
    for (int k = 0; k < REFUSAL_KIND_COUNT; k++)
        for (int t = 0; t < CONN_LIMIT_TUNNEL_SLOTS; t++)
            write_summary(limits[k][t], now_ms);
}
