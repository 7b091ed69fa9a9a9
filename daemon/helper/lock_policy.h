/* lock_policy — failed second-factor attempts counted per identity and per source
 * address, and locks that double on each repeat. Pure: no I/O and no clock; the caller
 * passes the time, and lock_state keeps the table in a file.
 *
 * Rules (times are seconds since the epoch, so locks survive a restart or reboot):
 *   - a failure counts when it falls within the policy's window; the same answers
 *     (compared as a salted hash the caller computes, never as the code) count once
 *     per window;
 *   - the failure that brings the count to max_failures locks the key for
 *     lockout * 2^(level-1), at most 24 h, and clears the count; level goes up by one
 *     per lock and back to 0 on success or when the previous lock ended more than
 *     24 h before this one (an administrator's unlock keeps it: an attacker who
 *     resumes after an unlock meets a longer lock);
 *   - a locked key counts nothing until the lock ends;
 *   - with min_tags, the failures must also carry that many different tags: an
 *     address (LOCK_POLICY_SOURCE) is tagged with the identity that failed, so one
 *     person's failures lock that identity, never everyone behind the same address;
 *   - the table holds at most LOCK_POLICY_MAX_RECORDS keys: a failure that needs one
 *     more is refused (-1), and the caller says so.
 * Answer hashes live in memory only; a lock_policy_entry (what the state file keeps)
 * holds keys, levels, lock ends, failure times and tags. */
#ifndef KTLSTUN_LOCK_POLICY_H
#define KTLSTUN_LOCK_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include "core/limits.h"

#define LOCK_POLICY_HASH_LEN 32
#define LOCK_POLICY_MAX_RECORDS LIMIT_LOCK_TABLE_DEFAULT

enum lock_policy_kind {
    LOCK_POLICY_IDENTITY,    /* failed logins of one certificate identity */
    LOCK_POLICY_SOURCE,      /* failed logins from one address */
    LOCK_POLICY_HANDSHAKE,   /* refused handshakes from one address (alert only) */
};

struct lock_policy_rules {
    uint64_t window;         /* seconds a failure counts for */
    unsigned max_failures;   /* 1..LIMIT_MAX_FAILURES */
    uint64_t lockout;        /* the first lock's length in seconds */
    unsigned min_tags;       /* different failure tags a lock needs (0 or 1: none) */
};

struct lock_policy_verdict {
    int counted;             /* 0: the same answers again (or locked): not counted */
    unsigned failures;       /* failures counting now; at a lock, the ones that locked */
    int locked_now;          /* this failure started a lock */
    int64_t locked_until;    /* end of the lock, when locked_now */
    unsigned level;          /* 1 for a first lock, 2 for the next, ... */
};

/* One key's record without its answer hashes: what survives a restart. */
struct lock_policy_entry {
    char tunnel[LIMIT_TUNNEL_NAME + 1];
    enum lock_policy_kind kind;
    char key[LIMIT_IDENTITY + 1];
    unsigned level;
    int64_t locked_until;    /* 0: never locked or lifted */
    int64_t last_lock_end;   /* end of the latest lock, for the level's decay */
    unsigned count;          /* failures in times[] and tags[], oldest first */
    int64_t times[LIMIT_MAX_FAILURES];
    uint64_t tags[LIMIT_MAX_FAILURES];
};

struct lock_policy;

/* Returns an empty table, or NULL when out of memory. */
struct lock_policy *lock_policy_create(void);

/* Sets how many records TABLE may hold (lock_table_size; 0: LOCK_POLICY_MAX_RECORDS).
 * Records already held stay. */
void lock_policy_set_max_records(struct lock_policy *table, size_t max_records);

/* Frees TABLE (NULL is fine), wiping the answer hashes. */
void lock_policy_free(struct lock_policy *table);

/* Returns when KEY's lock of KIND on TUNNEL ends, or 0 when it is not locked at NOW. */
int64_t lock_policy_locked_until(const struct lock_policy *table, const char *tunnel,
                                 enum lock_policy_kind kind, const char *key, int64_t now);

/* Counts one failure of KEY (KIND, on TUNNEL) at NOW under RULES. HASH
 * (LOCK_POLICY_HASH_LEN bytes) identifies the answers given, or is NULL when there were
 * none; TAG says who failed (see min_tags). Fills *VERDICT. Returns 0, or -1 when the
 * table is full, a name is too long, or memory ran out (nothing counted). */
int lock_policy_record_failure(struct lock_policy *table, const struct lock_policy_rules *rules,
                               const char *tunnel, enum lock_policy_kind kind, const char *key,
                               const unsigned char *hash, uint64_t tag, int64_t now,
                               struct lock_policy_verdict *verdict);

/* A tag for NAME (FNV-1a), never 0. */
uint64_t lock_policy_tag(const char *name);

/* A successful login of KEY: its count and level go back to 0. Returns 1 when that
 * changed anything (so the state needs saving), else 0. */
int lock_policy_record_success(struct lock_policy *table, const char *tunnel,
                               enum lock_policy_kind kind, const char *key);

/* Lifts every lock of KEY (an identity or an address, on every tunnel) and clears
 * its failure counts; the doubling level stays. Returns how many records were locked
 * at NOW, or -1 when KEY has no record. */
int lock_policy_unlock(struct lock_policy *table, const char *key, int64_t now);

/* Writes one line per lock in force at NOW into BUF (CAP bytes, NUL-terminated):
 * "TUNNEL KIND KEY until EPOCH (level N)". Returns the number of locks. */
unsigned lock_policy_list(const struct lock_policy *table, int64_t now, char *buf, size_t cap);

/* Drops records that hold nothing any more at NOW (no lock, no failure younger than
 * MAX_WINDOW, no level that still counts). */
void lock_policy_prune(struct lock_policy *table, int64_t now, uint64_t max_window);

/* Returns the number of records in TABLE (for lock_policy_get). */
size_t lock_policy_count(const struct lock_policy *table);

/* Copies record INDEX (below lock_policy_count) of TABLE, without its answer hashes,
 * into *ENTRY. */
void lock_policy_get(const struct lock_policy *table, size_t index,
                     struct lock_policy_entry *entry);

/* Sets the record of ENTRY's tunnel, kind and key to ENTRY (adding it when missing);
 * the record has no answer hashes afterwards. Returns 0, or -1 when ENTRY is invalid
 * (a count above the limit), the table is full or memory ran out. */
int lock_policy_restore(struct lock_policy *table, const struct lock_policy_entry *entry);

/* Drops the record of KEY (KIND, on TUNNEL) whatever it holds. Returns 1 when there
 * was one, else 0. */
int lock_policy_forget(struct lock_policy *table, const char *tunnel, enum lock_policy_kind kind,
                       const char *key);

/* Returns "identity", "source" or "handshake". */
const char *lock_policy_kind_name(enum lock_policy_kind kind);

#endif
