#include "worker/stats.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "worker/conn_limit.h"
#include "core/log.h"
#include "core/seqlock.h"

struct tunnel_counters {
    _Atomic uint64_t results[STATS_RESULT_COUNT];
    _Atomic uint64_t refusals[STATS_REFUSAL_COUNT];
    _Atomic uint64_t bytes_in, bytes_out;
    _Atomic uint64_t offloaded, userspace;
    _Atomic uint64_t decrypt_errors;
    _Atomic uint64_t packets_in, packets_out;
    _Atomic uint64_t dropped[3];         /* source, invalid, device */
    /* Several workers write it: the one whose pid is in WRITER does, under LOCK, which
     * lets readers copy it without waiting. */
    _Atomic int32_t last_refusal_writer;
    struct seqlock last_refusal_lock;
    struct stats_last_refusal last_refusal;
};

struct network_peer_row {
    _Atomic int32_t owner;               /* the worker's pid, 0 when free */
    struct seqlock lock;
    struct stats_network_peer peer;
};

struct stats {
    struct tunnel_counters tunnels[CONN_LIMIT_TUNNEL_SLOTS];
    struct network_peer_row peers[STATS_NETWORK_PEERS];
};

static const char *const result_names[STATS_RESULT_COUNT] = {
    [STATS_RESULT_COMPLETED] = "completed", [STATS_RESULT_REFUSED] = "refused",
    [STATS_RESULT_OVER_LIMIT] = "over_limit", [STATS_RESULT_TARGET_UNREACHABLE] = "target_unreachable",
    [STATS_RESULT_IDLE_TIMEOUT] = "idle_timeout", [STATS_RESULT_ERROR] = "error",
    [STATS_RESULT_SHUTDOWN] = "shutdown", [STATS_RESULT_WITHDRAWN] = "access_withdrawn",
    [STATS_RESULT_MAX_LIFETIME] = "max_lifetime",
};

/* Refusal reasons have fixed phrasings (verify_reason.h, allow.h, conn.c); a metric
 * label is the phrase's class. Order matters: the first match wins. */
static const struct {
    const char *phrase;
    int anywhere;              /* match inside the reason, not only at its start */
    enum stats_refusal refusal;
    const char *name;
} refusal_classes[] = {
    { "certificate expired", 0, STATS_REFUSAL_EXPIRED, "expired" },
    { "certificate not valid before", 0, STATS_REFUSAL_NOT_YET_VALID, "not_yet_valid" },
    { "unknown CA", 0, STATS_REFUSAL_UNKNOWN_CA, "unknown_ca" },
    { "self-signed", 0, STATS_REFUSAL_SELF_SIGNED, "self_signed" },
    { "revoked", 0, STATS_REFUSAL_REVOKED, "revoked" },
    { "CRL ", 0, STATS_REFUSAL_CRL, "crl" },
    { "no client certificate", 0, STATS_REFUSAL_NO_CLIENT_CERT, "no_client_certificate" },
    { "certificate not allowed for", 0, STATS_REFUSAL_PURPOSE, "purpose" },
    { "certificate purpose", 0, STATS_REFUSAL_PURPOSE, "purpose" },
    { "certificate is a CA certificate", 0, STATS_REFUSAL_PURPOSE, "purpose" },
    { "server certificate does not match", 0, STATS_REFUSAL_NAME_MISMATCH, "name_mismatch" },
    { "weak signature digest", 0, STATS_REFUSAL_WEAK_SIGNATURE, "weak_signature" },
    { "key too small", 0, STATS_REFUSAL_WEAK_KEY, "weak_key" },
    { "public key pin mismatch", 0, STATS_REFUSAL_PIN, "pin" },
    { " not in allow_", 1, STATS_REFUSAL_ALLOW_RULE, "allow_rule" },
    { "matched none of allow_", 1, STATS_REFUSAL_ALLOW_RULE, "allow_rule" },
    { "(allow_", 1, STATS_REFUSAL_ALLOW_RULE, "allow_rule" },
    { "ktls = require", 0, STATS_REFUSAL_KTLS_REQUIRED, "ktls_required" },
    { "peer sent alert", 0, STATS_REFUSAL_PEER_ALERT, "peer_alert" },
    { "handshake timed out", 0, STATS_REFUSAL_TIMEOUT, "timeout" },
    { "target connect timed out", 0, STATS_REFUSAL_TIMEOUT, "timeout" },
};

#define CLASS_COUNT (sizeof(refusal_classes) / sizeof(refusal_classes[0]))

struct stats *stats_create(void)
{
    struct stats *stats = mmap(NULL, sizeof(*stats), PROT_READ | PROT_WRITE,
                               MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (stats == MAP_FAILED) {
        log_error("statistics: mmap: %s", strerror(errno));
        return NULL;
    }
    return stats;
}

void stats_free(struct stats *stats)
{
    if (stats != NULL)
        munmap(stats, sizeof(*stats));
}

void stats_reset_tunnel(struct stats *stats, int slot)
{
    memset(&stats->tunnels[slot], 0, sizeof(stats->tunnels[slot]));
}

void stats_count_result(struct stats *stats, int slot, enum stats_result result)
{
    stats->tunnels[slot].results[result]++;
}

enum stats_refusal stats_classify_refusal(const char *reason)
{
    for (size_t i = 0; i < CLASS_COUNT; i++) {
        const char *phrase = refusal_classes[i].phrase;
        if (refusal_classes[i].anywhere ? strstr(reason, phrase) != NULL
                                        : strncmp(reason, phrase, strlen(phrase)) == 0)
            return refusal_classes[i].refusal;
    }
    return STATS_REFUSAL_OTHER;
}

void stats_count_refusal(struct stats *stats, int slot, const char *reason)
{
    stats->tunnels[slot].refusals[stats_classify_refusal(reason)]++;
}

void stats_add_bytes(struct stats *stats, int slot, uint64_t in, uint64_t out)
{
    if (in != 0)
        stats->tunnels[slot].bytes_in += in;
    if (out != 0)
        stats->tunnels[slot].bytes_out += out;
}

void stats_count_relay_path(struct stats *stats, int slot, int offloaded)
{
    if (offloaded)
        stats->tunnels[slot].offloaded++;
    else
        stats->tunnels[slot].userspace++;
}

void stats_count_decrypt_error(struct stats *stats, int slot)
{
    stats->tunnels[slot].decrypt_errors++;
}

/* Takes SLOT's last-refusal pen for this process. A pen left by a worker that died is
 * taken over. Returns 1, or 0 while a live worker holds it. */
static int take_pen(struct tunnel_counters *t, int32_t me)
{
    int32_t holder = 0;
    if (atomic_compare_exchange_strong(&t->last_refusal_writer, &holder, me))
        return 1;
    if (holder == me || kill(holder, 0) == 0 || errno != ESRCH)
        return 0;
    return atomic_compare_exchange_strong(&t->last_refusal_writer, &holder, me);
}

void stats_note_last_refusal(struct stats *stats, int slot, const struct stats_last_refusal *refusal)
{
    struct tunnel_counters *t = &stats->tunnels[slot];
    int32_t me = (int32_t)getpid();
    if (!take_pen(t, me))
        return;
    seqlock_write_begin(&t->last_refusal_lock);
    memcpy(&t->last_refusal, refusal, sizeof(t->last_refusal));
    t->last_refusal.identity[sizeof(t->last_refusal.identity) - 1] = '\0';
    t->last_refusal.words[sizeof(t->last_refusal.words) - 1] = '\0';
    seqlock_write_end(&t->last_refusal_lock);
    atomic_store(&t->last_refusal_writer, 0);
}

int stats_last_refusal(const struct stats *stats, int slot, struct stats_last_refusal *out)
{
    const struct tunnel_counters *t = &stats->tunnels[slot];
    if (seqlock_read(&t->last_refusal_lock, &t->last_refusal, out, sizeof(*out)) < 0)
        return 0;
    out->identity[sizeof(out->identity) - 1] = '\0';
    out->words[sizeof(out->words) - 1] = '\0';
    return out->at != 0;
}

uint64_t stats_result(const struct stats *stats, int slot, enum stats_result result)
{
    return stats->tunnels[slot].results[result];
}

uint64_t stats_refusal(const struct stats *stats, int slot, enum stats_refusal refusal)
{
    return stats->tunnels[slot].refusals[refusal];
}

uint64_t stats_bytes(const struct stats *stats, int slot, int outbound)
{
    return outbound ? stats->tunnels[slot].bytes_out : stats->tunnels[slot].bytes_in;
}

uint64_t stats_relay_path(const struct stats *stats, int slot, int offloaded)
{
    return offloaded ? stats->tunnels[slot].offloaded : stats->tunnels[slot].userspace;
}

uint64_t stats_decrypt_errors(const struct stats *stats, int slot)
{
    return stats->tunnels[slot].decrypt_errors;
}

const char *stats_result_name(enum stats_result result)
{
    return result_names[result];
}

const char *stats_refusal_name(enum stats_refusal refusal)
{
    if (refusal == STATS_REFUSAL_OTHER)
        return "other";
    for (size_t i = 0; i < CLASS_COUNT; i++)
        if (refusal_classes[i].refusal == refusal)
            return refusal_classes[i].name;
    return "other";
}

int stats_network_peer_open(struct stats *stats, const struct stats_network_peer *peer)
{
    int32_t me = (int32_t)getpid();
    for (int i = 0; i < STATS_NETWORK_PEERS; i++) {
        struct network_peer_row *row = &stats->peers[i];
        int32_t free_row = 0;
        if (!atomic_compare_exchange_strong(&row->owner, &free_row, me))
            continue;
        seqlock_write_begin(&row->lock);
        row->peer = *peer;
        row->peer.packets_in = row->peer.packets_out = row->peer.bytes_in = row->peer.bytes_out = 0;
        row->peer.dropped_source = row->peer.dropped_invalid = row->peer.dropped_device = 0;
        seqlock_write_end(&row->lock);
        stats_network_peer_update(stats, i, peer);
        return i;
    }
    return -1;
}

void stats_network_peer_update(struct stats *stats, int index, const struct stats_network_peer *peer)
{
    if (index < 0 || index >= STATS_NETWORK_PEERS)
        return;
    struct network_peer_row *row = &stats->peers[index];
    struct tunnel_counters *t = &stats->tunnels[row->peer.slot];
    t->packets_in += peer->packets_in - row->peer.packets_in;
    t->packets_out += peer->packets_out - row->peer.packets_out;
    t->bytes_in += peer->bytes_in - row->peer.bytes_in;
    t->bytes_out += peer->bytes_out - row->peer.bytes_out;
    t->dropped[0] += peer->dropped_source - row->peer.dropped_source;
    t->dropped[1] += peer->dropped_invalid - row->peer.dropped_invalid;
    t->dropped[2] += peer->dropped_device - row->peer.dropped_device;
    seqlock_write_begin(&row->lock);
    row->peer = *peer;
    row->peer.identity[sizeof(row->peer.identity) - 1] = '\0';
    row->peer.address[sizeof(row->peer.address) - 1] = '\0';
    row->peer.device[sizeof(row->peer.device) - 1] = '\0';
    seqlock_write_end(&row->lock);
}

void stats_network_peer_close(struct stats *stats, int index)
{
    if (index >= 0 && index < STATS_NETWORK_PEERS)
        atomic_store(&stats->peers[index].owner, 0);
}

void stats_network_peers_forget(struct stats *stats, int pid)
{
    for (int i = 0; i < STATS_NETWORK_PEERS; i++) {
        int32_t owner = (int32_t)pid;
        /* Its writer may have died inside a write: the next owner rewrites it whole. */
        atomic_compare_exchange_strong(&stats->peers[i].owner, &owner, 0);
    }
}

int stats_network_peer_read(const struct stats *stats, int index, struct stats_network_peer *out)
{
    const struct network_peer_row *row = &stats->peers[index];
    if (atomic_load(&row->owner) == 0 ||
        seqlock_read(&row->lock, &row->peer, out, sizeof(*out)) < 0)
        return 0;
    out->identity[sizeof(out->identity) - 1] = '\0';
    out->address[sizeof(out->address) - 1] = '\0';
    out->device[sizeof(out->device) - 1] = '\0';
    return atomic_load(&row->owner) != 0;
}

uint64_t stats_network_packets(const struct stats *stats, int slot, int outbound)
{
    return outbound ? stats->tunnels[slot].packets_out : stats->tunnels[slot].packets_in;
}

uint64_t stats_network_dropped(const struct stats *stats, int slot, int reason)
{
    return reason >= 0 && reason < 3 ? stats->tunnels[slot].dropped[reason] : 0;
}
