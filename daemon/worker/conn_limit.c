#include "worker/conn_limit.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>

#include "core/log.h"

struct shared_counts {
    _Atomic uint64_t total[CONN_LIMIT_TUNNEL_SLOTS];
    /* Each worker's own, so a dead worker's share can be taken off the total. */
    _Atomic uint32_t per_tunnel[CONN_LIMIT_TUNNEL_SLOTS][LIMIT_WORKER_SLOTS];
};

/* The source table follows the counts in the same mapping. */
#define SOURCES_OFFSET ((sizeof(struct shared_counts) + 63) / 64 * 64)

struct conn_limit {
    struct shared_counts *shared;                      /* MAP_SHARED */
    size_t shared_size;
    struct source_table *sources;                      /* inside the same mapping */
    char *tunnel_names[CONN_LIMIT_TUNNEL_SLOTS];       /* parent's bookkeeping */
    unsigned char worker_used[LIMIT_WORKER_SLOTS];
};

struct conn_limit *conn_limit_create(void)
{
    struct conn_limit *limit = calloc(1, sizeof(*limit));
    if (limit == NULL) {
        log_error("connection limits: out of memory");
        return NULL;
    }
    limit->shared_size = SOURCES_OFFSET + source_table_size();
    limit->shared = mmap(NULL, limit->shared_size, PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (limit->shared == MAP_FAILED) {
        log_error("connection limits: mmap: %s", strerror(errno));
        free(limit);
        return NULL;
    }
    uint64_t seed = 0;
    if (getrandom(&seed, sizeof(seed), 0) != (ssize_t)sizeof(seed))
        log_warning("connection limits: getrandom: %s; per-source slots are predictable",
                    strerror(errno));
    limit->sources = source_table_init((char *)limit->shared + SOURCES_OFFSET, seed);
    if (limit->sources == NULL) {
        log_error("connection limits: cannot share a lock between the workers");
        munmap(limit->shared, limit->shared_size);
        free(limit);
        return NULL;
    }
    return limit;
}

void conn_limit_free(struct conn_limit *limit)
{
    if (limit == NULL)
        return;
    munmap(limit->shared, limit->shared_size);
    for (int i = 0; i < CONN_LIMIT_TUNNEL_SLOTS; i++)
        free(limit->tunnel_names[i]);
    free(limit);
}

int conn_limit_tunnel_slot(struct conn_limit *limit, const char *name, int *fresh)
{
    int free_slot = -1;
    *fresh = 0;
    for (int i = 0; i < CONN_LIMIT_TUNNEL_SLOTS; i++) {
        if (limit->tunnel_names[i] == NULL) {
            if (free_slot < 0)
                free_slot = i;
        } else if (strcmp(limit->tunnel_names[i], name) == 0) {
            return i;
        }
    }
    if (free_slot >= 0 && (limit->tunnel_names[free_slot] = strdup(name)) == NULL)
        return -1;
    *fresh = free_slot >= 0;
    return free_slot;
}

void conn_limit_forget_unused(struct conn_limit *limit, const char *const *keep, unsigned count)
{
    for (int i = 0; i < CONN_LIMIT_TUNNEL_SLOTS; i++) {
        if (limit->tunnel_names[i] == NULL || conn_limit_count(limit, i) != 0)
            continue;
        int kept = 0;
        for (unsigned k = 0; k < count && !kept; k++)
            kept = strcmp(keep[k], limit->tunnel_names[i]) == 0;
        if (!kept) {
            free(limit->tunnel_names[i]);
            limit->tunnel_names[i] = NULL;
        }
    }
}

int conn_limit_take_worker_slot(struct conn_limit *limit)
{
    for (int i = 0; i < LIMIT_WORKER_SLOTS; i++) {
        if (!limit->worker_used[i]) {
            limit->worker_used[i] = 1;
            return i;
        }
    }
    return -1;
}

void conn_limit_release_worker_slot(struct conn_limit *limit, int worker_slot)
{
    for (int t = 0; t < CONN_LIMIT_TUNNEL_SLOTS; t++) {
        uint32_t held = atomic_exchange(&limit->shared->per_tunnel[t][worker_slot], 0);
        if (held != 0)
            atomic_fetch_sub(&limit->shared->total[t], held);
    }
    source_table_forget_worker(limit->sources, worker_slot);
    limit->worker_used[worker_slot] = 0;
}

uint64_t conn_limit_count(const struct conn_limit *limit, int tunnel_slot)
{
    return atomic_load(&limit->shared->total[tunnel_slot]);
}

int conn_limit_acquire(struct conn_limit *limit, int worker_slot, int tunnel_slot, uint64_t max)
{
    _Atomic uint64_t *total = &limit->shared->total[tunnel_slot];
    uint64_t seen = atomic_load(total);
    do {
        if (seen >= max)
            return 0;
    } while (!atomic_compare_exchange_weak(total, &seen, seen + 1));
    /* Dying between these two would leave one count on the total for good: the
     * tunnel then admits one connection fewer, never one more. */
    atomic_fetch_add(&limit->shared->per_tunnel[tunnel_slot][worker_slot], 1);
    return 1;
}

void conn_limit_release(struct conn_limit *limit, int worker_slot, int tunnel_slot)
{
    _Atomic uint32_t *mine = &limit->shared->per_tunnel[tunnel_slot][worker_slot];
    if (atomic_load(mine) == 0)
        return;
    atomic_fetch_sub(mine, 1);
    atomic_fetch_sub(&limit->shared->total[tunnel_slot], 1);
}

struct source_table *conn_limit_sources(struct conn_limit *limit)
{
    return limit->sources;
}
