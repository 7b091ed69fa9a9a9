/* lockout — failed second-factor attempts counted per identity and per source
 * address, locks that double on each repeat, and their state file.
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
 *     address (LOCKOUT_SOURCE) is tagged with the identity that failed, so one
 *     person's failures lock that identity, never everyone behind the same address.
 * Answer hashes live in memory only; the state file keeps keys, levels, lock ends,
 * failure times and tags. */
#ifndef KTLSTUN_LOCKOUT_H
#define KTLSTUN_LOCKOUT_H

#include <stddef.h>
#include <stdint.h>

#define LOCKOUT_MAX_FAILURES_LIMIT 50
#define LOCKOUT_MAX_DURATION (24 * 3600)
#define LOCKOUT_KEY_MAX 256
#define LOCKOUT_TUNNEL_MAX 64
#define LOCKOUT_HASH_LEN 32
#define LOCKOUT_MAX_RECORDS 4096

enum lockout_kind {
    LOCKOUT_IDENTITY,    /* failed logins of one certificate identity */
    LOCKOUT_SOURCE,      /* failed logins from one address */
    LOCKOUT_HANDSHAKE,   /* refused handshakes from one address (alert only) */
};

struct lockout_policy {
    uint64_t window;         /* seconds a failure counts for */
    unsigned max_failures;   /* 1..LOCKOUT_MAX_FAILURES_LIMIT */
    uint64_t lockout;        /* the first lock's length in seconds */
    unsigned min_tags;       /* different failure tags a lock needs (0 or 1: none) */
};

struct lockout_verdict {
    int counted;             /* 0: the same answers again (or locked): not counted */
    unsigned failures;       /* failures counting now; at a lock, the ones that locked */
    int locked_now;          /* this failure started a lock */
    int64_t locked_until;    /* end of the lock, when locked_now */
    unsigned level;          /* 1 for a first lock, 2 for the next, ... */
};

struct lockout;

/* Returns an empty table, or NULL when out of memory. */
struct lockout *lockout_create(void);

/* Frees TABLE (NULL is fine), wiping the answer hashes. */
void lockout_free(struct lockout *table);

/* Returns when KEY's lock of KIND on TUNNEL ends, or 0 when it is not locked at NOW. */
int64_t lockout_locked_until(const struct lockout *table, const char *tunnel,
                             enum lockout_kind kind, const char *key, int64_t now);

/* Counts one failure of KEY (KIND, on TUNNEL) at NOW under POLICY. HASH
 * (LOCKOUT_HASH_LEN bytes) identifies the answers given, or is NULL when there were
 * none; TAG says who failed (see min_tags). Fills *VERDICT. Returns 0, or -1 when the
 * table is full or memory ran out (nothing counted). */
int lockout_record_failure(struct lockout *table, const struct lockout_policy *policy,
                           const char *tunnel, enum lockout_kind kind, const char *key,
                           const unsigned char *hash, uint64_t tag, int64_t now,
                           struct lockout_verdict *verdict);

/* A tag for NAME (FNV-1a), never 0. */
uint64_t lockout_tag(const char *name);

/* A successful login of KEY: its count and level go back to 0. Returns 1 when that
 * changed anything (so the state needs saving), else 0. */
int lockout_record_success(struct lockout *table, const char *tunnel, enum lockout_kind kind,
                           const char *key);

/* Lifts every lock of KEY (an identity or an address, on every tunnel) and clears
 * its failure counts; the doubling level stays. Returns how many records were locked
 * at NOW, or -1 when KEY has no record. */
int lockout_unlock(struct lockout *table, const char *key, int64_t now);

/* Writes one line per lock in force at NOW into BUF (CAP bytes, NUL-terminated):
 * "TUNNEL KIND KEY until EPOCH (level N)". Returns the number of locks. */
unsigned lockout_list(const struct lockout *table, int64_t now, char *buf, size_t cap);

/* Drops records that hold nothing any more at NOW (no lock, no failure younger than
 * MAX_WINDOW, no level that still counts). */
void lockout_prune(struct lockout *table, int64_t now, uint64_t max_window);

/* Writes TABLE to PATH atomically (temporary file in the same directory, fsync,
 * rename, fsync of the directory), mode 0600. Returns 0, or -1 with the reason in
 * ERR. */
int lockout_save(const struct lockout *table, const char *path, char *err, size_t errlen);

/* Adds the records of PATH to TABLE. A missing file is an empty table. Returns the
 * number of malformed lines skipped (0 normally), or -1 with the reason in ERR when
 * the file cannot be read. */
int lockout_load(struct lockout *table, const char *path, char *err, size_t errlen);

/* Returns "identity", "source" or "handshake". */
const char *lockout_kind_name(enum lockout_kind kind);

#endif
