#include "worker/conn_limit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/log.h"

/* Indexed [tunnel][worker] so that summing one tunnel reads one contiguous run. */
struct shared_counts {
    _Atomic uint32_t per_tunnel[CONN_LIMIT_TUNNEL_SLOTS][CONN_LIMIT_WORKER_SLOTS];
};

struct conn_limit {
    struct shared_counts *shared;                      /* MAP_SHARED */
    char *tunnel_names[CONN_LIMIT_TUNNEL_SLOTS];       /* parent's bookkeeping */
    unsigned char worker_used[CONN_LIMIT_WORKER_SLOTS];
};

struct conn_limit *conn_limit_create(void)
{
    struct conn_limit *limit = calloc(1, sizeof(*limit));
    if (limit == NULL) {
        log_error("connection limits: out of memory");
        return NULL;
    }
    limit->shared = mmap(NULL, sizeof(*limit->shared), PROT_READ | PROT_WRITE,
                         MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (limit->shared == MAP_FAILED) {
        log_error("connection limits: mmap: %s", strerror(errno));
        free(limit);
        return NULL;
    }
    return limit;
}

void conn_limit_free(struct conn_limit *limit)
{
    if (limit == NULL)
        return;
    munmap(limit->shared, sizeof(*limit->shared));
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
    for (int i = 0; i < CONN_LIMIT_WORKER_SLOTS; i++) {
        if (!limit->worker_used[i]) {
            limit->worker_used[i] = 1;
            return i;
        }
    }
    return -1;
}

void conn_limit_release_worker_slot(struct conn_limit *limit, int worker_slot)
{
    for (int t = 0; t < CONN_LIMIT_TUNNEL_SLOTS; t++)
        limit->shared->per_tunnel[t][worker_slot] = 0;
    limit->worker_used[worker_slot] = 0;
}

uint64_t conn_limit_count(const struct conn_limit *limit, int tunnel_slot)
{
    uint64_t total = 0;
    for (int w = 0; w < CONN_LIMIT_WORKER_SLOTS; w++)
        total += limit->shared->per_tunnel[tunnel_slot][w];
    return total;
}

int conn_limit_acquire(struct conn_limit *limit, int worker_slot, int tunnel_slot, uint64_t max)
{
    if (conn_limit_count(limit, tunnel_slot) >= max)
        return 0;
    limit->shared->per_tunnel[tunnel_slot][worker_slot]++;
    return 1;
}

void conn_limit_release(struct conn_limit *limit, int worker_slot, int tunnel_slot)
{
    if (limit->shared->per_tunnel[tunnel_slot][worker_slot] > 0)
        limit->shared->per_tunnel[tunnel_slot][worker_slot]--;
}
