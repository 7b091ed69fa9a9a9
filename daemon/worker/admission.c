#include "worker/admission.h"

#include <stdio.h>
#include <string.h>

#include "core/event_loop.h"
#include "worker/refusal_log.h"
#include "worker/stats.h"

static void refuse(struct conn_host *host, const struct tunnel *tunnel, enum refusal_kind kind,
                   const char *peer_address, const char *reason)
{
    stats_count_result(host->stats, tunnel->limit_slot, STATS_RESULT_OVER_LIMIT);
    refusal_log_write(kind, tunnel, peer_address, NULL, reason);
}

int admission_admit(struct conn_host *host, const struct tunnel *tunnel, const struct sockaddr *peer,
                    socklen_t peer_len, const char *peer_address, struct admission_ticket *ticket)
{
    const struct tunnel_config *t = tunnel->config;
    char reason[160];
    memset(ticket, 0, sizeof(*ticket));
    if (!conn_limit_acquire(host->limits, host->worker_slot, tunnel->limit_slot, t->max_connections)) {
        snprintf(reason, sizeof(reason), "max_connections (%llu) reached",
                 (unsigned long long)t->max_connections);
        refuse(host, tunnel, REFUSAL_MAX_CONNECTIONS, peer_address, reason);
        return 0;
    }
    const struct source_policy policy = { .max_connections = t->max_connections_per_source,
                                          .rate = t->handshake_rate_per_source,
                                          .burst = t->handshake_burst_per_source };
    /* Client tunnels take local applications, and a unix socket's peer has no
     * address: only max_connections applies to them. */
    if (t->mode != TUNNEL_MODE_SERVER || (policy.max_connections == 0 && policy.rate == 0) ||
        source_key_from_sockaddr(peer, peer_len, &ticket->source) < 0)
        return 1;
    enum source_verdict verdict =
        source_table_acquire(conn_limit_sources(host->limits), host->worker_slot, tunnel->limit_slot,
                             &ticket->source, &policy, event_loop_now_ms());
    if (verdict == SOURCE_ADMITTED) {
        ticket->source_counted = 1;
        return 1;
    }
    conn_limit_release(host->limits, host->worker_slot, tunnel->limit_slot);
    enum refusal_kind kind = REFUSAL_SOURCE_TABLE;
    if (verdict == SOURCE_TOO_MANY) {
        kind = REFUSAL_SOURCE_CONNECTIONS;
        snprintf(reason, sizeof(reason), "max_connections_per_source (%llu) reached",
                 (unsigned long long)policy.max_connections);
    } else if (verdict == SOURCE_TOO_FAST) {
        kind = REFUSAL_SOURCE_RATE;
        snprintf(reason, sizeof(reason), "handshake_rate_per_source (%llu/s, burst %llu) exceeded",
                 (unsigned long long)policy.rate, (unsigned long long)policy.burst);
    } else {
        snprintf(reason, sizeof(reason), "too many source addresses at once (the per-source "
                                         "table is full)");
    }
    refuse(host, tunnel, kind, peer_address, reason);
    return 0;
}

void admission_release(struct conn_host *host, const struct tunnel *tunnel,
                       const struct admission_ticket *ticket)
{
    if (ticket->source_counted)
        source_table_release(conn_limit_sources(host->limits), host->worker_slot, tunnel->limit_slot,
                             &ticket->source);
    conn_limit_release(host->limits, host->worker_slot, tunnel->limit_slot);
}
