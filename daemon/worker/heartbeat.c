#include "worker/heartbeat.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "core/log.h"

struct heartbeat {
    _Atomic uint64_t stamps_ms[LIMIT_WORKER_SLOTS];
};

struct heartbeat *heartbeat_create(void)
{
    struct heartbeat *hb = mmap(NULL, sizeof(*hb), PROT_READ | PROT_WRITE,
                                MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (hb == MAP_FAILED) {
        log_error("heartbeat: mmap: %s", strerror(errno));
        return NULL;
    }
    return hb;
}

void heartbeat_free(struct heartbeat *hb)
{
    if (hb != NULL)
        munmap(hb, sizeof(*hb));
}

void heartbeat_beat(struct heartbeat *hb, int worker_slot, uint64_t now_ms)
{
    hb->stamps_ms[worker_slot] = now_ms;
}

uint64_t heartbeat_age_ms(const struct heartbeat *hb, int worker_slot, uint64_t now_ms)
{
    uint64_t stamp = hb->stamps_ms[worker_slot];
    return stamp == 0 || now_ms < stamp ? 0 : now_ms - stamp;
}

void heartbeat_reset(struct heartbeat *hb, int worker_slot)
{
    hb->stamps_ms[worker_slot] = 0;
}
