#include "core/seqlock.h"

#include <sched.h>
#include <string.h>

void seqlock_write_begin(struct seqlock *lock)
{
    uint32_t sequence = atomic_load_explicit(&lock->sequence, memory_order_relaxed);
    /* A sequence left odd by a writer that died: entering makes it odd again. */
    if ((sequence & 1u) == 0)
        sequence++;
    atomic_store_explicit(&lock->sequence, sequence, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
}

void seqlock_write_end(struct seqlock *lock)
{
    uint32_t sequence = atomic_load_explicit(&lock->sequence, memory_order_relaxed);
    atomic_store_explicit(&lock->sequence, sequence + 1, memory_order_release);
}

int seqlock_read(const struct seqlock *lock, const volatile void *data, void *copy, size_t len)
{
    for (unsigned attempt = 0; attempt < SEQLOCK_READ_ATTEMPTS; attempt++) {
        uint32_t before = atomic_load_explicit(&lock->sequence, memory_order_acquire);
        if ((before & 1u) == 0) {
            memcpy(copy, (const void *)data, len);
            atomic_thread_fence(memory_order_acquire);
            if (atomic_load_explicit(&lock->sequence, memory_order_relaxed) == before)
                return 0;
        }
        /* The writer is another process: let it run rather than burn our slice. */
        if (attempt % 64 == 63)
            sched_yield();
    }
    return -1;
}

int seqlock_was_abandoned(const struct seqlock *lock)
{
    return (atomic_load_explicit(&lock->sequence, memory_order_acquire) & 1u) != 0;
}
