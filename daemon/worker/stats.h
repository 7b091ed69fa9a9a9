/* stats — per-tunnel counters every worker adds to and the parent reads (metrics,
 * STATUS=), in memory shared by fork. Indexed by the tunnel's conn_limit slot. */
#ifndef KTLSTUN_STATS_H
#define KTLSTUN_STATS_H

#include <stdint.h>

#include "core/limits.h"

enum stats_result {
    STATS_RESULT_COMPLETED,          /* relayed, closed by the two ends */
    STATS_RESULT_REFUSED,            /* handshake, certificate, rules or kTLS policy */
    STATS_RESULT_OVER_LIMIT,         /* max_connections or a per-source limit */
    STATS_RESULT_TARGET_UNREACHABLE,
    STATS_RESULT_IDLE_TIMEOUT,
    STATS_RESULT_ERROR,              /* aborted: a reset, a fatal alert, no close_notify, ... */
    STATS_RESULT_SHUTDOWN,           /* closed because the daemon stopped */
    STATS_RESULT_WITHDRAWN,          /* access withdrawn: CRL, allow rules, grant, admin */
    STATS_RESULT_MAX_LIFETIME,       /* max_connection_lifetime */
    STATS_RESULT_COUNT
};

enum stats_refusal {
    STATS_REFUSAL_EXPIRED, STATS_REFUSAL_NOT_YET_VALID, STATS_REFUSAL_UNKNOWN_CA,
    STATS_REFUSAL_SELF_SIGNED, STATS_REFUSAL_REVOKED, STATS_REFUSAL_CRL,
    STATS_REFUSAL_NO_CLIENT_CERT, STATS_REFUSAL_PURPOSE, STATS_REFUSAL_NAME_MISMATCH,
    STATS_REFUSAL_WEAK_SIGNATURE, STATS_REFUSAL_WEAK_KEY, STATS_REFUSAL_PIN,
    STATS_REFUSAL_ALLOW_RULE, STATS_REFUSAL_KTLS_REQUIRED, STATS_REFUSAL_PEER_ALERT,
    STATS_REFUSAL_TIMEOUT, STATS_REFUSAL_OTHER,
    STATS_REFUSAL_COUNT
};

struct stats;

#define STATS_REFUSAL_WORDS 480

/* The last refusal of a tunnel, for `ktlstun status`: for a client tunnel the last one
 * it received, in plain words; for a server tunnel the last one it gave. */
struct stats_last_refusal {
    int64_t at;                          /* seconds since the epoch; 0: none yet */
    char identity[LIMIT_IDENTITY + 1];   /* server tunnels: whom it refused ("" unknown) */
    char words[STATS_REFUSAL_WORDS];
};

/* The network tunnels' peers the metrics show, at most this many at once. */
#define STATS_NETWORK_PEERS 1024

/* What one network tunnel connection moved so far, by the worker that runs it. */
struct stats_network_peer {
    int slot;                            /* its tunnel's */
    int ktls;                            /* relayed by the kernel's TLS */
    char identity[LIMIT_IDENTITY + 1];   /* the peer's CN */
    char address[48];                    /* the client's tunnel address, or "" */
    char device[16];
    uint64_t packets_in, packets_out;    /* in: from the peer */
    uint64_t bytes_in, bytes_out;
    uint64_t dropped_source, dropped_invalid, dropped_device;
};

/* Maps the shared counters (parent, before forking). NULL after logging. */
struct stats *stats_create(void);

/* Unmaps STATS (NULL is fine). */
void stats_free(struct stats *stats);

/* Parent: zeroes SLOT's counters (the slot now belongs to another tunnel). */
void stats_reset_tunnel(struct stats *stats, int slot);

/* Worker: one connection on SLOT ended with RESULT. */
void stats_count_result(struct stats *stats, int slot, enum stats_result result);

/* Worker: one refusal on SLOT whose logged reason is REASON (classified by its fixed
 * phrasing, see stats.c). */
void stats_count_refusal(struct stats *stats, int slot, const char *reason);

/* Worker: payload bytes moved on SLOT since the last call. */
void stats_add_bytes(struct stats *stats, int slot, uint64_t in, uint64_t out);

/* Worker: a connection on SLOT started relaying, in the kernel (OFFLOADED) or not. */
void stats_count_relay_path(struct stats *stats, int slot, int offloaded);

/* Worker: a kTLS record on SLOT failed to decrypt. */
void stats_count_decrypt_error(struct stats *stats, int slot);

/* Worker: REFUSAL is SLOT's newest refusal now. Never waits: when another worker is
 * writing SLOT's at this very moment, theirs stands instead (they are as new). */
void stats_note_last_refusal(struct stats *stats, int slot, const struct stats_last_refusal *refusal);

/* Copies SLOT's last refusal into OUT. Returns 1, or 0 when there is none or it
 * cannot be read consistently (a writer died inside it). */
int stats_last_refusal(const struct stats *stats, int slot, struct stats_last_refusal *out);

/* Parent: readers. */
uint64_t stats_result(const struct stats *stats, int slot, enum stats_result result);
uint64_t stats_refusal(const struct stats *stats, int slot, enum stats_refusal refusal);
uint64_t stats_bytes(const struct stats *stats, int slot, int outbound);
uint64_t stats_relay_path(const struct stats *stats, int slot, int offloaded);
uint64_t stats_decrypt_errors(const struct stats *stats, int slot);

/* Worker: takes a row of the network peer table for PEER. Returns its index, or -1
 * when the table is full (the peer is then missing from the metrics only). */
int stats_network_peer_open(struct stats *stats, const struct stats_network_peer *peer);

/* Worker: row INDEX (-1 is ignored) holds PEER now; also adds what moved since the
 * previous call to the tunnel's packet and drop counters. */
void stats_network_peer_update(struct stats *stats, int index, const struct stats_network_peer *peer);

/* Worker: gives row INDEX back (-1 is ignored). */
void stats_network_peer_close(struct stats *stats, int index);

/* Parent: gives back the rows of the worker PID, which died. */
void stats_network_peers_forget(struct stats *stats, int pid);

/* Parent: copies row INDEX (0..STATS_NETWORK_PEERS-1) into *OUT. Returns 1 when it is
 * in use, 0 when not (or unreadable). */
int stats_network_peer_read(const struct stats *stats, int index, struct stats_network_peer *out);

/* The tunnel's network totals: packets (OUTBOUND: to the peer) and drops by REASON
 * (0 source, 1 invalid, 2 device). */
uint64_t stats_network_packets(const struct stats *stats, int slot, int outbound);
uint64_t stats_network_dropped(const struct stats *stats, int slot, int reason);

/* Label names for metrics. */
const char *stats_result_name(enum stats_result result);
const char *stats_refusal_name(enum stats_refusal refusal);

/* The class of a refusal REASON (exported for its unit test). */
enum stats_refusal stats_classify_refusal(const char *reason);

#endif
