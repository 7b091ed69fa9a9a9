/* source_table — per-source limits of the server tunnels, kept in one fixed table in
 * the memory every worker shares (worker/conn_limit.c maps it), so a limit holds
 * exactly however the kernel spreads one source's connections over the workers.
 *
 * A source is an IPv4 address, or the /64 of an IPv6 one (one host gets a whole
 * /64). For each tunnel and source the table keeps the connections each worker
 * holds (per worker, so the parent can forget a dead worker's) and a token bucket
 * of new connections. The table has SOURCE_TABLE_SLOTS entries and a source's
 * entries live within SOURCE_TABLE_WINDOW slots of where its keyed hash points;
 * when that window has no room, the source is refused (fail closed), never let in
 * unlimited. One process-shared robust mutex guards it: a worker that dies holding
 * it does not wedge the others. */
#ifndef KTLSTUN_SOURCE_TABLE_H
#define KTLSTUN_SOURCE_TABLE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/limits.h"

#define SOURCE_TABLE_SLOTS 65536
/* A source keeps one count per worker it has connections on, and a bucket: its window
 * holds them all even when every worker slot has some. */
#define SOURCE_TABLE_WINDOW (LIMIT_WORKER_SLOTS + 2)

struct source_table;

/* An IPv4 address as ::ffff:a.b.c.d, or an IPv6 /64 with the rest zeroed. */
struct source_key {
    unsigned char bytes[16];
};

/* A tunnel's per-source limits; 0 turns each off. */
struct source_policy {
    uint64_t max_connections;     /* concurrent connections per source */
    uint64_t rate;                /* new connections a second per source */
    uint64_t burst;               /* new connections at once, when rate is set */
};

enum source_verdict {
    SOURCE_ADMITTED,
    SOURCE_TOO_MANY,              /* max_connections reached */
    SOURCE_TOO_FAST,              /* no token left */
    SOURCE_TABLE_FULL,            /* no room for this source */
};

/* Bytes of memory a table needs. */
size_t source_table_size(void);

/* Makes a fresh table in MEMORY (source_table_size() bytes, zeroed, shared by fork
 * when the workers are to share it), hashing with SEED. Returns it, or NULL when the
 * mutex cannot be made process-shared and robust. */
struct source_table *source_table_init(void *memory, uint64_t seed);

/* Fills KEY for the peer ADDR (LEN bytes). Returns 0, or -1 when ADDR is no IP
 * address (a unix socket's peer has no per-source limits). */
int source_key_from_sockaddr(const struct sockaddr *addr, socklen_t len, struct source_key *key);

/* Worker WORKER_SLOT asks to open one more connection on TUNNEL_SLOT from KEY at
 * NOW_MS under POLICY. SOURCE_ADMITTED counts it (give it back with
 * source_table_release) and takes a token; any other verdict changes nothing. */
enum source_verdict source_table_acquire(struct source_table *table, int worker_slot, int tunnel_slot,
                                         const struct source_key *key,
                                         const struct source_policy *policy, uint64_t now_ms);

/* One connection that source_table_acquire admitted ended. */
void source_table_release(struct source_table *table, int worker_slot, int tunnel_slot,
                          const struct source_key *key);

/* Parent: worker WORKER_SLOT is gone; forgets its connections. */
void source_table_forget_worker(struct source_table *table, int worker_slot);

/* Returns the connections from KEY on TUNNEL_SLOT across all workers. */
uint64_t source_table_connections(struct source_table *table, int tunnel_slot,
                                  const struct source_key *key);

#endif
