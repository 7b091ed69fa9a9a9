/* lock_policy — failed second-factor attempts counted per key (a certificate identity,
 * a local user, a source address), and locks that double on each repeat. Pure: no I/O
 * and no clock; the caller passes the time, and lock_state keeps the table in a file.
 *
 * Rules (times are seconds since the epoch, so locks survive a restart or reboot):
 *   - a failure counts while it is younger than the policy's window;
 *   - an attempt reserves a failure of its key when it starts (lock_policy_reserve)
 *     and holds it until it ends: it is settled as a failure
 *     (lock_policy_settle_failure), dropped when no guess was made
 *     (lock_policy_release), or dropped by the attempt's success. A reservation is
 *     saved like a failure and never ages out; while a key's failures and reservations
 *     reach max_failures, a key without min_tags takes no further reservation (its
 *     budget is held by the attempts already running);
 *   - the same answers (compared as a salted hash the caller computes, never as the
 *     code) given again within LOCK_POLICY_SAME_ANSWER_SECONDS of a failure that gave
 *     them count once: a retyped code is no new guess. Later they count again;
 *   - the failure that brings the settled failures to max_failures locks the key for
 *     lockout * 2^(level-1), at most 24 h, and clears those failures (reservations stay:
 *     their attempts settle later); level goes up by one per lock and back to 0 on
 *     success or when the previous lock ended more than 24 h before this one (an
 *     administrator's unlock keeps it: an attacker who resumes after an unlock meets a
 *     longer lock);
 *   - a locked key counts nothing and takes no reservation until the lock ends;
 *   - with min_tags, the failures must also carry that many different tags: an address
 *     or a user is tagged with the identity that failed, so one certificate's failures
 *     lock that identity, never everyone behind the same address or every certificate
 *     of the same user;
 *   - a success (lock_policy_record_success, given the serial of the attempt's start)
 *     clears the failures settled before the attempt started and resets the level,
 *     unless a lock was imposed after the attempt started: then level and lock stay.
 *     A success never lifts a lock in force, nor clears failures settled after its
 *     attempt started or other attempts' reservations;
 *   - the table holds at most max_records keys (lock_table_size), in budgets per kind:
 *     half for identities and users together, a quarter for source addresses, the rest
 *     for refused-handshake addresses. A full identity/user budget refuses a new key
 *     (-1: the caller must refuse the login, never let it go uncounted); a full address
 *     budget makes room by dropping its least recently changed record that holds no
 *     reservation. Addresses (cheap for an attacker) never crowd out identities.
 * Answer hashes live in memory only; a lock_policy_entry (what the state file keeps)
 * holds keys, levels, lock ends, failure times and tags. */
#ifndef KTLSTUN_LOCK_POLICY_H
#define KTLSTUN_LOCK_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include "core/limits.h"

#define LOCK_POLICY_HASH_LEN 32
#define LOCK_POLICY_MAX_RECORDS LIMIT_LOCK_TABLE_DEFAULT
#define LOCK_POLICY_SAME_ANSWER_SECONDS 30   /* one TOTP time step */

enum lock_policy_kind {
    LOCK_POLICY_IDENTITY,    /* failed logins of one certificate identity */
    LOCK_POLICY_SOURCE,      /* failed logins from one address */
    LOCK_POLICY_HANDSHAKE,   /* refused handshakes from one address (alert only) */
    LOCK_POLICY_USER,        /* failed logins of one local user, whatever certificate */
};
#define LOCK_POLICY_KINDS 4

struct lock_policy_rules {
    uint64_t window;         /* seconds a failure counts for */
    unsigned max_failures;   /* 1..LIMIT_MAX_FAILURES */
    uint64_t lockout;        /* the first lock's length in seconds */
    unsigned min_tags;       /* different failure tags a lock needs (0 or 1: none) */
};

struct lock_policy_verdict {
    int counted;             /* 0: the same answers again (or locked): not counted */
    unsigned failures;       /* settled failures now; at a lock, the ones that locked */
    int locked_now;          /* this failure started a lock */
    int64_t locked_until;    /* end of the lock, when locked_now or already locked */
    unsigned level;          /* 1 for a first lock, 2 for the next, ... */
};

enum lock_policy_reservation {
    LOCK_POLICY_RESERVED,    /* the attempt may run; its serial is set */
    LOCK_POLICY_LOCKED,      /* the key is locked: nothing reserved */
    LOCK_POLICY_BUSY,        /* running attempts hold the rest of the key's budget */
    LOCK_POLICY_NO_ROOM,     /* the failure could not be recorded: refuse the attempt */
};

/* One key's record without its answer hashes: what survives a restart. Reservations
 * are in it as failures (at the time they were made). */
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

/* Returns an empty table of LOCK_POLICY_MAX_RECORDS records, or NULL when out of
 * memory. */
struct lock_policy *lock_policy_create(void);

/* Sets how many records TABLE may hold (lock_table_size; 0: LOCK_POLICY_MAX_RECORDS),
 * and so the budget of each kind. Records already held stay. */
void lock_policy_set_max_records(struct lock_policy *table, size_t max_records);

/* Frees TABLE (NULL is fine), wiping the answer hashes. */
void lock_policy_free(struct lock_policy *table);

/* Returns when KEY's lock of KIND on TUNNEL ends, or 0 when it is not locked at NOW. */
int64_t lock_policy_locked_until(const struct lock_policy *table, const char *tunnel,
                                 enum lock_policy_kind kind, const char *key, int64_t now);

/* An attempt of KEY (KIND, on TUNNEL) starts at NOW under RULES: reserves one failure
 * tagged TAG and sets *SERIAL to the attempt's serial (0 when nothing was reserved),
 * and *LOCKED_UNTIL to the lock's end when the key is locked. Returns what happened;
 * LOCK_POLICY_NO_ROOM also when a name is too long or memory ran out. */
enum lock_policy_reservation lock_policy_reserve(struct lock_policy *table,
                                                 const struct lock_policy_rules *rules,
                                                 const char *tunnel, enum lock_policy_kind kind,
                                                 const char *key, uint64_t tag, int64_t now,
                                                 uint64_t *serial, int64_t *locked_until);

/* Returns a serial for an attempt that reserves nothing (an address, whose lock needs
 * other identities' failures): lock_policy_record_success then knows what came
 * before it. */
uint64_t lock_policy_serial(struct lock_policy *table);

/* The attempt SERIAL of KEY (KIND, on TUNNEL) failed at NOW under RULES: its
 * reservation becomes a failure, counted as lock_policy_record_failure counts one
 * (HASH, TAG). A reservation no longer there (SERIAL 0, a restart, an unlock) counts
 * as a new failure. Fills *VERDICT. Returns 0, or -1 when the failure could not be
 * recorded (nothing counted). */
int lock_policy_settle_failure(struct lock_policy *table, const struct lock_policy_rules *rules,
                               const char *tunnel, enum lock_policy_kind kind, const char *key,
                               uint64_t serial, const unsigned char *hash, uint64_t tag,
                               int64_t now, struct lock_policy_verdict *verdict);

/* Counts one failure of KEY (KIND, on TUNNEL) at NOW under RULES. HASH
 * (LOCK_POLICY_HASH_LEN bytes) identifies the answers given, or is NULL when there were
 * none; TAG says who failed (see min_tags). Fills *VERDICT. Returns 0, or -1 when the
 * identity/user budget is full, a name is too long, or memory ran out (nothing
 * counted). */
int lock_policy_record_failure(struct lock_policy *table, const struct lock_policy_rules *rules,
                               const char *tunnel, enum lock_policy_kind kind, const char *key,
                               const unsigned char *hash, uint64_t tag, int64_t now,
                               struct lock_policy_verdict *verdict);

/* The attempt SERIAL of KEY made no guess (no answer given, no enrolment, PAM's own
 * failure): drops its reservation. Returns 1 when there was one, else 0. */
int lock_policy_release(struct lock_policy *table, const char *tunnel, enum lock_policy_kind kind,
                        const char *key, uint64_t serial);

/* The attempt SERIAL of KEY succeeded at NOW: drops its reservation, clears the
 * failures settled before SERIAL and, unless a lock was imposed after SERIAL or one is
 * in force, resets the level to 0. Returns 1 when that changed anything (so the state
 * needs saving), else 0. */
int lock_policy_record_success(struct lock_policy *table, const char *tunnel,
                               enum lock_policy_kind kind, const char *key, uint64_t serial,
                               int64_t now);

/* A tag for NAME (FNV-1a), never 0. */
uint64_t lock_policy_tag(const char *name);

/* Lifts every lock of KEY (an identity, a user or an address, on every tunnel) and
 * clears its failure counts; the doubling level and running attempts' reservations
 * stay. Returns how many records were locked at NOW, or -1 when KEY has no record. */
int lock_policy_unlock(struct lock_policy *table, const char *key, int64_t now);

/* Writes one line per lock in force at NOW into BUF (CAP bytes, NUL-terminated):
 * "TUNNEL KIND KEY until EPOCH (level N)". Returns the number of locks. */
unsigned lock_policy_list(const struct lock_policy *table, int64_t now, char *buf, size_t cap);

/* Drops records that hold nothing any more at NOW (no lock, no reservation, no failure
 * younger than MAX_WINDOW, no level that still counts). */
void lock_policy_prune(struct lock_policy *table, int64_t now, uint64_t max_window);

/* Returns the number of records in TABLE (for lock_policy_get). */
size_t lock_policy_count(const struct lock_policy *table);

/* Copies record INDEX (below lock_policy_count) of TABLE, without its answer hashes,
 * into *ENTRY. */
void lock_policy_get(const struct lock_policy *table, size_t index,
                     struct lock_policy_entry *entry);

/* Sets the record of ENTRY's tunnel, kind and key to ENTRY (adding it when missing,
 * outside the kinds' budgets: the file was written within them); the record has no
 * answer hashes and no reservations afterwards. Returns 0, or -1 when ENTRY is invalid
 * (a count above the limit), the table holds max_records records or memory ran out. */
int lock_policy_restore(struct lock_policy *table, const struct lock_policy_entry *entry);

/* Drops the record of KEY (KIND, on TUNNEL) whatever it holds. Returns 1 when there
 * was one, else 0. */
int lock_policy_forget(struct lock_policy *table, const char *tunnel, enum lock_policy_kind kind,
                       const char *key);

/* Returns "identity", "source", "handshake" or "user". */
const char *lock_policy_kind_name(enum lock_policy_kind kind);

#endif
