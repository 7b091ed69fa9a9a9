/* conn_limit — max_connections across every worker, in memory shared by fork, and
 * the per-source table (worker/source_table.h) that lives in the same memory.
 *
 * A tunnel's total is one atomic counter that a worker raises only by compare-and-
 * swap below the limit, so workers racing never overshoot it. Each worker also
 * counts its own connections in its own row, so when a worker dies the parent takes
 * that row off the total and no count leaks. */
#ifndef KTLSTUN_CONN_LIMIT_H
#define KTLSTUN_CONN_LIMIT_H

#include <stdint.h>

#include "core/limits.h"
#include "worker/source_table.h"

#define CONN_LIMIT_TUNNEL_SLOTS LIMIT_TUNNELS

struct conn_limit;

/* Maps the shared table (parent, before the first fork). NULL after logging. */
struct conn_limit *conn_limit_create(void);

/* Frees LIMIT (NULL is fine). */
void conn_limit_free(struct conn_limit *limit);

/* Parent: returns the slot for tunnel NAME, assigning a free one if needed (then
 * *FRESH is set to 1, else 0), or -1 when every slot is taken. */
int conn_limit_tunnel_slot(struct conn_limit *limit, const char *name, int *fresh);

/* Parent: frees the slots of tunnels not named in KEEP (count NAMES) that hold no
 * connection any more. */
void conn_limit_forget_unused(struct conn_limit *limit, const char *const *keep, unsigned count);

/* Parent: returns a free worker slot, or -1. */
int conn_limit_take_worker_slot(struct conn_limit *limit);

/* Parent: a worker died or exited: forget its counts (per-source ones too) and free
 * its slot. */
void conn_limit_release_worker_slot(struct conn_limit *limit, int worker_slot);

/* Worker: counts one more connection on TUNNEL_SLOT if the total stays within MAX
 * (exactly, whatever the other workers do at the same time). Returns 1 when
 * admitted, 0 when the tunnel is full. */
int conn_limit_acquire(struct conn_limit *limit, int worker_slot, int tunnel_slot, uint64_t max);

/* Worker: one connection on TUNNEL_SLOT ended. */
void conn_limit_release(struct conn_limit *limit, int worker_slot, int tunnel_slot);

/* Returns the number of live connections on TUNNEL_SLOT across all workers. */
uint64_t conn_limit_count(const struct conn_limit *limit, int tunnel_slot);

/* Returns the per-source table in LIMIT's shared memory (owned by LIMIT). */
struct source_table *conn_limit_sources(struct conn_limit *limit);

#endif
