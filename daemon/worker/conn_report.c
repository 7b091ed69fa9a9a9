#include "worker/conn_report.h"

#include "core/event_loop.h"
#include "proto/status_record.h"
#include "worker/conn_audit.h"
#include "worker/conn_network.h"

/* Bytes of C's relay towards the target (IN) and back (OUT). */
static void relayed_bytes(const struct conn *c, uint64_t *in, uint64_t *out)
{
    int server = c->tunnel->config->mode == TUNNEL_MODE_SERVER;
    uint64_t from_tls = c->offloaded ? c->splice.from_tls.bytes : c->relay.from_tls.bytes;
    uint64_t to_tls = c->offloaded ? c->splice.to_tls.bytes : c->relay.to_tls.bytes;
    *in = server ? from_tls : to_tls;
    *out = server ? to_tls : from_tls;
}

void conn_report_audit(const struct conn *c, const char *close_reason, enum stats_result result)
{
    struct conn_audit_record record = {
        .tunnel = c->tunnel->config->name,
        .peer_address = c->peer_address,
        .identity = c->peer.identity,
        .tls_version = c->tls_version,
        .cipher = c->cipher,
        .offloaded = c->offloaded,
        .elapsed_ms = event_loop_now_ms() - c->started_ms,
        .result = stats_result_name(result),
    };
    char network[300];
    record.network = conn_network_audit(c, network, sizeof(network));
    relayed_bytes(c, &record.bytes_in, &record.bytes_out);
    /* Payload bytes that passed through this process: all of them on the userspace
     * path, none on the kTLS path unless a data record had to be read by hand. */
    record.userspace_bytes = c->offloaded ? c->splice.userspace_bytes
                                          : record.bytes_in + record.bytes_out;
    conn_audit_close(&record, close_reason);
}

void conn_report_bytes(struct conn *c)
{
    uint64_t in, out;
    relayed_bytes(c, &in, &out);
    stats_add_bytes(c->host->stats, c->tunnel->limit_slot, in - c->reported_in,
                    out - c->reported_out);
    c->reported_in = in;
    c->reported_out = out;
}

static const char *state_name(enum conn_state state)
{
    switch (state) {
    case CONN_CONNECTING: return "connecting";
    case CONN_HANDSHAKING: return "handshaking";
    case CONN_RELAYING: return "relaying";
    case CONN_LOGIN: return "login";
    case CONN_CLOSED: break;
    }
    return "closed";
}

void conn_report_status(const struct conn *c, uint64_t now_ms, FILE *out)
{
    uint64_t in, out_bytes;
    relayed_bytes(c, &in, &out_bytes);
    const struct identity *id = c->peer.identity;
    status_record_begin(out, "conn");
    status_record_text(out, "tunnel", c->tunnel->config->name);
    status_record_text(out, "peer", c->peer_address);
    status_record_text(out, "state", state_name(c->state));
    status_record_text(out, "subject", id ? id->subject : "");
    status_record_text(out, "sha256", id ? id->sha256 : "");
    status_record_number(out, "age_seconds", (now_ms - c->started_ms) / 1000);
    status_record_number(out, "bytes_in", in);
    status_record_number(out, "bytes_out", out_bytes);
    status_record_text(out, "tls", c->tls_version);
    status_record_text(out, "cipher", c->cipher);
    status_record_number(out, "ktls_tx", (uint64_t)c->offloaded);
    status_record_number(out, "ktls_rx", (uint64_t)c->offloaded);
    status_record_number(out, "buffer_bytes",
                         c->state == CONN_RELAYING && !c->offloaded ? relay_buffer_bytes(&c->relay) : 0);
    conn_network_describe(c, out);
    status_record_end(out);
}
