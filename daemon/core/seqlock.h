/* seqlock — one writer, many readers and no lock, for tables in memory shared by fork:
 * a sequence number that is odd while the writer is inside. A reader never waits for
 * long (it may run inside certificate verification), and a writer may die inside: then
 * readers give up instead of spinning, and the next writer repairs the sequence. */
#ifndef KTLSTUN_SEQLOCK_H
#define KTLSTUN_SEQLOCK_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* How often a reader tries before it calls the data unknown. A live writer holds the
 * sequence odd for one memcpy of a few hundred bytes. */
#define SEQLOCK_READ_ATTEMPTS 100000

struct seqlock {
    _Atomic uint32_t sequence;   /* odd while the writer is inside */
};

/* The writer enters and leaves; the data may change only between the two. */
void seqlock_write_begin(struct seqlock *lock);
void seqlock_write_end(struct seqlock *lock);

/* Copies the LEN bytes at DATA, which LOCK guards, into COPY as the writer left them.
 * Returns 0, or -1 when the writer stayed inside for SEQLOCK_READ_ATTEMPTS tries (it
 * died there): the caller treats the data as unknown, never as valid. */
int seqlock_read(const struct seqlock *lock, const volatile void *data, void *copy, size_t len);

/* For a new writer taking over from one that may have died: returns 1 when LOCK was
 * left inside a write (the caller must rewrite the data it guards, within
 * seqlock_write_begin/end as usual), 0 when it is consistent. */
int seqlock_was_abandoned(const struct seqlock *lock);

#endif
