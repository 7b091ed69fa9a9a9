#include "supervisor/metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tls/tls_context.h"
#include "core/text.h"

struct text {
    char *data;
    size_t len, cap;
    int failed;
};

static void append(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void append(struct text *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    for (;;) {
        va_list args;
        va_start(args, fmt);
        int n = vsnprintf(t->data + t->len, t->cap - t->len, fmt, args);
        va_end(args);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap + (size_t)n + 1) * 2;
        char *grown = realloc(t->data, cap);
        if (grown == NULL) {
            t->failed = 1;
            return;
        }
        t->data = grown;
        t->cap = cap;
    }
}

static void header(struct text *t, const char *name, const char *type, const char *help)
{
    append(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static const char *const drop_reasons[3] = { "source", "invalid", "device" };

static void peer_line(struct text *t, const char *metric, const char *tunnel,
                      const struct stats_network_peer *peer, const char *label, uint64_t value)
{
    char identity[600];
    append(t, "ktlstun_network_peer_%s{tunnel=\"%s\",peer=\"%s\",address=\"%s\",device=\"%s\","
              "ktls=\"%s\",%s} %llu\n", metric, tunnel,
           text_log_quote(peer->identity, identity, sizeof(identity)), peer->address, peer->device,
           peer->ktls ? "on" : "off", label, (unsigned long long)value);
}

static void render_peer(struct text *t, int drops, const char *tunnel,
                        const struct stats_network_peer *peer)
{
    if (!drops) {
        peer_line(t, "packets_total", tunnel, peer, "direction=\"in\"", peer->packets_in);
        peer_line(t, "packets_total", tunnel, peer, "direction=\"out\"", peer->packets_out);
        return;
    }
    peer_line(t, "dropped_packets_total", tunnel, peer, "reason=\"source\"", peer->dropped_source);
    peer_line(t, "dropped_packets_total", tunnel, peer, "reason=\"invalid\"", peer->dropped_invalid);
    peer_line(t, "dropped_packets_total", tunnel, peer, "reason=\"device\"", peer->dropped_device);
}

/* Network tunnels: packets and drops by tunnel, and each peer of the moment. */
static void render_network(struct text *t, const struct generation *gen, const struct stats *stats)
{
    header(t, "ktlstun_network_packets_total", "counter",
           "IP packets carried by network tunnels; in = from the TLS peer.");
    for (size_t i = 0; i < gen->tunnel_count; i++)
        for (int out = 0; out <= 1; out++)
            if (gen->tunnels[i].config->type == TUNNEL_TYPE_NETWORK)
                append(t, "ktlstun_network_packets_total{tunnel=\"%s\",direction=\"%s\"} %llu\n",
                       gen->tunnels[i].config->name, out ? "out" : "in",
                       (unsigned long long)stats_network_packets(stats, gen->tunnels[i].limit_slot, out));
    header(t, "ktlstun_network_dropped_packets_total", "counter",
           "IP packets network tunnels dropped: source (not the client's address or networks), "
           "invalid (not a well-formed IP packet, or above the MTU), device (the TUN device "
           "did not take it).");
    for (size_t i = 0; i < gen->tunnel_count; i++)
        for (int r = 0; r < 3; r++)
            if (gen->tunnels[i].config->type == TUNNEL_TYPE_NETWORK)
                append(t, "ktlstun_network_dropped_packets_total{tunnel=\"%s\",reason=\"%s\"} %llu\n",
                       gen->tunnels[i].config->name, drop_reasons[r],
                       (unsigned long long)stats_network_dropped(stats, gen->tunnels[i].limit_slot, r));
    for (int kind = 0; kind <= 1; kind++) {
        if (kind == 0)
            header(t, "ktlstun_network_peer_packets_total", "counter",
                   "IP packets of each connected network tunnel peer (CN, tunnel address).");
        else
            header(t, "ktlstun_network_peer_dropped_packets_total", "counter",
                   "IP packets dropped from each connected network tunnel peer, by reason.");
        for (int p = 0; p < STATS_NETWORK_PEERS; p++) {
            struct stats_network_peer peer;
            const char *tunnel = NULL;
            if (!stats_network_peer_read(stats, p, &peer))
                continue;
            for (size_t i = 0; i < gen->tunnel_count && tunnel == NULL; i++)
                if (gen->tunnels[i].limit_slot == peer.slot)
                    tunnel = gen->tunnels[i].config->name;
            if (tunnel != NULL)
                render_peer(t, kind, tunnel, &peer);
        }
    }
}

char *metrics_render(const struct generation *gen, const struct stats *stats,
                     const struct conn_limit *limits, unsigned workers)
{
    struct text t = { .cap = 8192 };
    t.data = malloc(t.cap);
    if (t.data == NULL)
        return NULL;
    t.data[0] = '\0';
    time_t now = time(NULL);

    header(&t, "ktlstun_workers", "gauge", "Worker processes serving the current configuration.");
    append(&t, "ktlstun_workers %u\n", workers);
    header(&t, "ktlstun_config_generation", "gauge", "Configuration generation (1 + reloads).");
    append(&t, "ktlstun_config_generation %u\n", gen->number);

    header(&t, "ktlstun_connections_active", "gauge", "Open connections by tunnel.");
    for (size_t i = 0; i < gen->tunnel_count; i++)
        append(&t, "ktlstun_connections_active{tunnel=\"%s\"} %llu\n", gen->tunnels[i].config->name,
               (unsigned long long)conn_limit_count(limits, gen->tunnels[i].limit_slot));

    header(&t, "ktlstun_connections_total", "counter", "Finished connections by tunnel and result.");
    for (size_t i = 0; i < gen->tunnel_count; i++)
        for (int r = 0; r < STATS_RESULT_COUNT; r++)
            append(&t, "ktlstun_connections_total{tunnel=\"%s\",result=\"%s\"} %llu\n",
                   gen->tunnels[i].config->name, stats_result_name((enum stats_result)r),
                   (unsigned long long)stats_result(stats, gen->tunnels[i].limit_slot,
                                                    (enum stats_result)r));

    header(&t, "ktlstun_handshake_failures_total", "counter", "Refused handshakes by tunnel and reason.");
    for (size_t i = 0; i < gen->tunnel_count; i++)
        for (int r = 0; r < STATS_REFUSAL_COUNT; r++)
            append(&t, "ktlstun_handshake_failures_total{tunnel=\"%s\",reason=\"%s\"} %llu\n",
                   gen->tunnels[i].config->name, stats_refusal_name((enum stats_refusal)r),
                   (unsigned long long)stats_refusal(stats, gen->tunnels[i].limit_slot,
                                                     (enum stats_refusal)r));

    header(&t, "ktlstun_bytes_total", "counter",
           "Payload bytes relayed; in = from the accepted peer toward the target.");
    for (size_t i = 0; i < gen->tunnel_count; i++)
        for (int out = 0; out <= 1; out++)
            append(&t, "ktlstun_bytes_total{tunnel=\"%s\",direction=\"%s\"} %llu\n",
                   gen->tunnels[i].config->name, out ? "out" : "in",
                   (unsigned long long)stats_bytes(stats, gen->tunnels[i].limit_slot, out));

    header(&t, "ktlstun_relayed_connections_total", "counter",
           "Connections that started relaying, by path: ktls (kernel) or userspace (fallback).");
    for (size_t i = 0; i < gen->tunnel_count; i++)
        for (int offloaded = 1; offloaded >= 0; offloaded--)
            append(&t, "ktlstun_relayed_connections_total{tunnel=\"%s\",path=\"%s\"} %llu\n",
                   gen->tunnels[i].config->name, offloaded ? "ktls" : "userspace",
                   (unsigned long long)stats_relay_path(stats, gen->tunnels[i].limit_slot, offloaded));

    header(&t, "ktlstun_ktls_decrypt_errors_total", "counter", "kTLS records that failed to decrypt or parse (each closes its connection).");
    for (size_t i = 0; i < gen->tunnel_count; i++)
        append(&t, "ktlstun_ktls_decrypt_errors_total{tunnel=\"%s\"} %llu\n",
               gen->tunnels[i].config->name,
               (unsigned long long)stats_decrypt_errors(stats, gen->tunnels[i].limit_slot));

    render_network(&t, gen, stats);

    header(&t, "ktlstun_certificate_expiry_seconds", "gauge",
           "Seconds until each loaded certificate (or CRL nextUpdate) expires.");
    for (size_t i = 0; i < gen->tunnel_count; i++) {
        const struct tunnel *tunnel = &gen->tunnels[i];
        char path[600];
        long long not_after = tls_context_cert_not_after(tunnel->ssl_ctx);
        if (not_after >= 0)
            append(&t, "ktlstun_certificate_expiry_seconds{tunnel=\"%s\",kind=\"cert\",file=\"%s\"} %lld\n",
                   tunnel->config->name, text_log_quote(tunnel->config->cert, path, sizeof(path)),
                   not_after - (long long)now);
        long long next_update = tls_context_crl_next_update(tunnel->ssl_ctx);
        if (next_update >= 0 && tunnel->config->crl != NULL)
            append(&t, "ktlstun_certificate_expiry_seconds{tunnel=\"%s\",kind=\"crl\",file=\"%s\"} %lld\n",
                   tunnel->config->name, text_log_quote(tunnel->config->crl, path, sizeof(path)),
                   next_update - (long long)now);
    }
    if (t.failed) {
        free(t.data);
        return NULL;
    }
    return t.data;
}
