#include "helper/lock_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define LEVEL_DECAY (24LL * 3600)

/* One failure, or the reservation of an attempt still running. */
struct failure {
    int64_t time;
    uint64_t tag;
    uint64_t serial;          /* table-wide order of failures, reservations and locks */
    int reserved;
    int hashed;
    unsigned char hash[LOCK_POLICY_HASH_LEN];
};

struct record {
    char tunnel[LIMIT_TUNNEL_NAME + 1];
    enum lock_policy_kind kind;
    char key[LIMIT_IDENTITY + 1];
    unsigned level;
    int64_t locked_until;     /* 0: never locked or lifted */
    int64_t last_lock_end;    /* end of the latest lock, for the level's decay */
    uint64_t lock_serial;     /* serial of the latest lock, 0: none */
    int64_t touched;          /* latest failure, reservation or lock: eviction order */
    unsigned count;           /* failures[], oldest first */
    struct failure failures[LIMIT_MAX_FAILURES];
};

struct lock_policy {
    size_t count;
    size_t capacity;
    size_t max_records;
    uint64_t last_serial;
    struct record *records;
};

const char *lock_policy_kind_name(enum lock_policy_kind kind)
{
    switch (kind) {
    case LOCK_POLICY_SOURCE:
        return "source";
    case LOCK_POLICY_HANDSHAKE:
        return "handshake";
    case LOCK_POLICY_USER:
        return "user";
    case LOCK_POLICY_IDENTITY:
    default:
        return "identity";
    }
}

struct lock_policy *lock_policy_create(void)
{
    struct lock_policy *table = calloc(1, sizeof(struct lock_policy));
    if (table != NULL)
        table->max_records = LOCK_POLICY_MAX_RECORDS;
    return table;
}

void lock_policy_set_max_records(struct lock_policy *table, size_t max_records)
{
    table->max_records = max_records > 0 ? max_records : LOCK_POLICY_MAX_RECORDS;
}

void lock_policy_free(struct lock_policy *table)
{
    if (table == NULL)
        return;
    if (table->records != NULL)
        OPENSSL_cleanse(table->records, table->capacity * sizeof(*table->records));
    free(table->records);
    free(table);
}

static int is_address(enum lock_policy_kind kind)
{
    return kind == LOCK_POLICY_SOURCE || kind == LOCK_POLICY_HANDSHAKE;
}

/* Identities and users share half the table; each address kind has its own share. */
static int same_budget(enum lock_policy_kind a, enum lock_policy_kind b)
{
    return a == b || (!is_address(a) && !is_address(b));
}

static size_t budget(const struct lock_policy *table, enum lock_policy_kind kind)
{
    size_t max = table->max_records;
    switch (kind) {
    case LOCK_POLICY_SOURCE:
        return max / 4;
    case LOCK_POLICY_HANDSHAKE:
        return max - max / 2 - max / 4;
    case LOCK_POLICY_IDENTITY:
    case LOCK_POLICY_USER:
    default:
        return max / 2;
    }
}

static struct record *find(const struct lock_policy *table, const char *tunnel,
                           enum lock_policy_kind kind, const char *key)
{
    for (size_t i = 0; i < table->count; i++) {
        struct record *r = &table->records[i];
        if (r->kind == kind && strcmp(r->key, key) == 0 && strcmp(r->tunnel, tunnel) == 0)
            return r;
    }
    return NULL;
}

static void remove_record(struct lock_policy *table, struct record *r)
{
    size_t index = (size_t)(r - table->records);
    OPENSSL_cleanse(r, sizeof(*r));
    if (index + 1 < table->count)
        memmove(r, r + 1, (table->count - index - 1) * sizeof(*r));
    table->count--;
}

static unsigned reservations(const struct record *r)
{
    unsigned n = 0;
    for (unsigned i = 0; i < r->count; i++)
        n += r->failures[i].reserved != 0;
    return n;
}

/* Makes room in KIND's budget: 0 when there is room, -1 when there cannot be. Only
 * address records give way, the least recently changed first, never one whose attempt
 * is still running. */
static int make_room(struct lock_policy *table, enum lock_policy_kind kind)
{
    size_t held = 0;
    struct record *oldest = NULL;
    for (size_t i = 0; i < table->count; i++) {
        struct record *r = &table->records[i];
        if (!same_budget(r->kind, kind))
            continue;
        held++;
        if (r->kind == kind && reservations(r) == 0 &&
            (oldest == NULL || r->touched < oldest->touched))
            oldest = r;
    }
    if (held < budget(table, kind))
        return 0;
    if (!is_address(kind) || oldest == NULL)
        return -1;
    remove_record(table, oldest);
    return 0;
}

/* Adds an empty record; BUDGETED: within KIND's budget, else within max_records. */
static struct record *add(struct lock_policy *table, const char *tunnel,
                          enum lock_policy_kind kind, const char *key, int budgeted)
{
    if (strlen(tunnel) > LIMIT_TUNNEL_NAME || strlen(key) > LIMIT_IDENTITY)
        return NULL;
    if (budgeted ? make_room(table, kind) < 0 : table->count >= table->max_records)
        return NULL;
    if (table->count == table->capacity) {
        size_t capacity = table->capacity ? table->capacity * 2 : 16;
        struct record *grown = calloc(capacity, sizeof(*grown));
        if (grown == NULL)
            return NULL;
        if (table->count > 0)
            memcpy(grown, table->records, table->count * sizeof(*grown));
        if (table->records != NULL)
            OPENSSL_cleanse(table->records, table->capacity * sizeof(*table->records));
        free(table->records);
        table->records = grown;
        table->capacity = capacity;
    }
    struct record *r = &table->records[table->count++];
    memset(r, 0, sizeof(*r));
    snprintf(r->tunnel, sizeof(r->tunnel), "%s", tunnel);
    snprintf(r->key, sizeof(r->key), "%s", key);
    r->kind = kind;
    return r;
}

static struct record *find_or_add(struct lock_policy *table, const char *tunnel,
                                  enum lock_policy_kind kind, const char *key)
{
    struct record *r = find(table, tunnel, kind, key);
    return r != NULL ? r : add(table, tunnel, kind, key, 1);
}

static void remove_failure(struct record *r, unsigned index)
{
    OPENSSL_cleanse(&r->failures[index], sizeof(r->failures[index]));
    if (index + 1 < r->count)
        memmove(&r->failures[index], &r->failures[index + 1],
                (r->count - index - 1) * sizeof(r->failures[0]));
    r->count--;
    OPENSSL_cleanse(&r->failures[r->count], sizeof(r->failures[0]));
}

/* Drops the settled failures that KEEP says no to; reservations always stay. */
static void drop_failures(struct record *r, int (*keep)(const struct failure *, const void *),
                          const void *arg)
{
    for (unsigned i = 0; i < r->count;) {
        if (!r->failures[i].reserved && !keep(&r->failures[i], arg))
            remove_failure(r, i);
        else
            i++;
    }
}

struct age_limit {
    int64_t now;
    uint64_t window;
};

static int young(const struct failure *f, const void *arg)
{
    const struct age_limit *limit = arg;
    return (uint64_t)(limit->now - f->time) < limit->window || limit->now < f->time;
}

static int keep_none(const struct failure *f, const void *arg)
{
    (void)f;
    (void)arg;
    return 0;
}

static int settled_after(const struct failure *f, const void *arg)
{
    return f->serial > *(const uint64_t *)arg;
}

/* Keeps only the failures younger than WINDOW (and every reservation). */
static void drop_old_failures(struct record *r, int64_t now, uint64_t window)
{
    struct age_limit limit = { .now = now, .window = window };
    drop_failures(r, young, &limit);
}

static unsigned settled(const struct record *r)
{
    return r->count - reservations(r);
}

/* Room for one more entry: the oldest settled failure goes when the array is full
 * (the newest ones decide). Returns -1 when every entry is a reservation. */
static int free_slot(struct record *r)
{
    if (r->count < LIMIT_MAX_FAILURES)
        return 0;
    for (unsigned i = 0; i < r->count; i++) {
        if (!r->failures[i].reserved) {
            remove_failure(r, i);
            return 0;
        }
    }
    return -1;
}

static int drop_reservation(struct record *r, uint64_t serial)
{
    for (unsigned i = 0; serial != 0 && i < r->count; i++) {
        if (r->failures[i].reserved && r->failures[i].serial == serial) {
            remove_failure(r, i);
            return 1;
        }
    }
    return 0;
}

/* lockout * 2^(level-1), capped, without overflowing on large levels. */
static uint64_t lock_duration(uint64_t lockout, unsigned level)
{
    uint64_t duration = lockout;
    for (unsigned i = 1; i < level && duration < LIMIT_LOCK_SECONDS; i++)
        duration *= 2;
    return duration > LIMIT_LOCK_SECONDS ? LIMIT_LOCK_SECONDS : duration;
}

static unsigned clamp_max(const struct lock_policy_rules *rules)
{
    unsigned max = rules->max_failures;
    if (max < 1)
        max = 1;
    return max > LIMIT_MAX_FAILURES ? LIMIT_MAX_FAILURES : max;
}

uint64_t lock_policy_tag(const char *name)
{
    uint64_t hash = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
        hash ^= *p;
        hash *= 0x100000001b3ull;
    }
    return hash != 0 ? hash : 1;
}

static unsigned distinct_tags(const struct record *r)
{
    unsigned distinct = 0;
    for (unsigned i = 0; i < r->count; i++) {
        if (r->failures[i].reserved)
            continue;
        unsigned seen = 0;
        for (unsigned j = 0; j < i && !seen; j++)
            seen = !r->failures[j].reserved && r->failures[j].tag == r->failures[i].tag;
        distinct += !seen;
    }
    return distinct;
}

static int repeats_an_answer(const struct record *r, const unsigned char *hash, int64_t now)
{
    for (unsigned i = 0; hash != NULL && i < r->count; i++) {
        const struct failure *f = &r->failures[i];
        if (!f->reserved && f->hashed && now - f->time < LOCK_POLICY_SAME_ANSWER_SECONDS &&
            CRYPTO_memcmp(f->hash, hash, LOCK_POLICY_HASH_LEN) == 0)
            return 1;
    }
    return 0;
}

int64_t lock_policy_locked_until(const struct lock_policy *table, const char *tunnel,
                                 enum lock_policy_kind kind, const char *key, int64_t now)
{
    const struct record *r = find(table, tunnel, kind, key);
    return r != NULL && r->locked_until > now ? r->locked_until : 0;
}

uint64_t lock_policy_serial(struct lock_policy *table)
{
    return ++table->last_serial;
}

enum lock_policy_reservation lock_policy_reserve(struct lock_policy *table,
                                                 const struct lock_policy_rules *rules,
                                                 const char *tunnel, enum lock_policy_kind kind,
                                                 const char *key, uint64_t tag, int64_t now,
                                                 uint64_t *serial, int64_t *locked_until)
{
    *serial = 0;
    *locked_until = 0;
    struct record *r = find_or_add(table, tunnel, kind, key);
    if (r == NULL)
        return LOCK_POLICY_NO_ROOM;
    if (r->locked_until > now) {
        *locked_until = r->locked_until;
        return LOCK_POLICY_LOCKED;
    }
    drop_old_failures(r, now, rules->window);
    /* Failures alone at the limit (reservations saved before a restart) let one more
     * attempt in: its failure locks. */
    if (rules->min_tags < 2 && reservations(r) > 0 && r->count >= clamp_max(rules))
        return LOCK_POLICY_BUSY;
    if (free_slot(r) < 0)
        return LOCK_POLICY_BUSY;
    struct failure *f = &r->failures[r->count++];
    memset(f, 0, sizeof(*f));
    f->time = now;
    f->tag = tag;
    f->serial = *serial = ++table->last_serial;
    f->reserved = 1;
    r->touched = now;
    return LOCK_POLICY_RESERVED;
}

static int count_failure(struct lock_policy *table, struct record *r,
                         const struct lock_policy_rules *rules, const unsigned char *hash,
                         uint64_t tag, int64_t now, struct lock_policy_verdict *verdict)
{
    unsigned max = clamp_max(rules);
    verdict->level = r->level;
    if (r->locked_until > now) {
        verdict->locked_until = r->locked_until;
        return 0;
    }
    drop_old_failures(r, now, rules->window);
    verdict->failures = settled(r);
    if (repeats_an_answer(r, hash, now))
        return 0;
    if (free_slot(r) < 0)
        return -1;
    struct failure *f = &r->failures[r->count++];
    memset(f, 0, sizeof(*f));
    f->time = now;
    f->tag = tag;
    f->serial = ++table->last_serial;
    if (hash != NULL) {
        memcpy(f->hash, hash, LOCK_POLICY_HASH_LEN);
        f->hashed = 1;
    }
    r->touched = now;
    verdict->counted = 1;
    verdict->failures = settled(r);
    if (verdict->failures < max || distinct_tags(r) < rules->min_tags)
        return 0;
    if (r->level > 0 && r->last_lock_end > 0 && now - r->last_lock_end > LEVEL_DECAY)
        r->level = 0;
    r->level++;
    r->locked_until = now + (int64_t)lock_duration(rules->lockout, r->level);
    r->last_lock_end = r->locked_until;
    r->lock_serial = ++table->last_serial;
    drop_failures(r, keep_none, NULL);
    verdict->locked_now = 1;
    verdict->locked_until = r->locked_until;
    verdict->level = r->level;
    return 0;
}

int lock_policy_settle_failure(struct lock_policy *table, const struct lock_policy_rules *rules,
                               const char *tunnel, enum lock_policy_kind kind, const char *key,
                               uint64_t serial, const unsigned char *hash, uint64_t tag,
                               int64_t now, struct lock_policy_verdict *verdict)
{
    memset(verdict, 0, sizeof(*verdict));
    struct record *r = find_or_add(table, tunnel, kind, key);
    if (r == NULL)
        return -1;
    drop_reservation(r, serial);
    return count_failure(table, r, rules, hash, tag, now, verdict);
}

int lock_policy_record_failure(struct lock_policy *table, const struct lock_policy_rules *rules,
                               const char *tunnel, enum lock_policy_kind kind, const char *key,
                               const unsigned char *hash, uint64_t tag, int64_t now,
                               struct lock_policy_verdict *verdict)
{
    return lock_policy_settle_failure(table, rules, tunnel, kind, key, 0, hash, tag, now,
                                      verdict);
}

int lock_policy_release(struct lock_policy *table, const char *tunnel, enum lock_policy_kind kind,
                        const char *key, uint64_t serial)
{
    struct record *r = find(table, tunnel, kind, key);
    return r != NULL && drop_reservation(r, serial);
}

int lock_policy_record_success(struct lock_policy *table, const char *tunnel,
                               enum lock_policy_kind kind, const char *key, uint64_t serial,
                               int64_t now)
{
    struct record *r = find(table, tunnel, kind, key);
    if (r == NULL || serial == 0)
        return 0;
    unsigned before = r->count;
    int changed = drop_reservation(r, serial);
    drop_failures(r, settled_after, &serial);
    changed |= r->count != before;
    /* A lock imposed while this attempt ran, by another one's failure, keeps its
     * level: the success proves nothing about those guesses. */
    if (r->level != 0 && r->lock_serial < serial && r->locked_until <= now) {
        r->level = 0;
        changed = 1;
    }
    return changed;
}

int lock_policy_unlock(struct lock_policy *table, const char *key, int64_t now)
{
    int found = 0, lifted = 0;
    for (size_t i = 0; i < table->count; i++) {
        struct record *r = &table->records[i];
        if (strcmp(r->key, key) != 0)
            continue;
        found = 1;
        if (r->locked_until > now) {
            lifted++;
            r->locked_until = 0;
            /* The lock ended now: the level's 24-hour memory starts here. */
            r->last_lock_end = now;
        }
        drop_failures(r, keep_none, NULL);
    }
    return found ? lifted : -1;
}

unsigned lock_policy_list(const struct lock_policy *table, int64_t now, char *buf, size_t cap)
{
    unsigned locks = 0;
    size_t used = 0;
    if (cap > 0)
        buf[0] = '\0';
    for (size_t i = 0; i < table->count; i++) {
        const struct record *r = &table->records[i];
        if (r->locked_until <= now)
            continue;
        locks++;
        if (used >= cap)
            continue;
        int n = snprintf(buf + used, cap - used, "%s %s %s until %lld (level %u)\n", r->tunnel,
                         lock_policy_kind_name(r->kind), r->key, (long long)r->locked_until,
                         r->level);
        if (n > 0)
            used = (size_t)n < cap - used ? used + (size_t)n : cap;
    }
    return locks;
}

void lock_policy_prune(struct lock_policy *table, int64_t now, uint64_t max_window)
{
    for (size_t i = 0; i < table->count;) {
        struct record *r = &table->records[i];
        drop_old_failures(r, now, max_window);
        int level_counts = r->level > 0 && now - r->last_lock_end <= LEVEL_DECAY;
        if (r->locked_until <= now && r->count == 0 && !level_counts)
            remove_record(table, r);
        else
            i++;
    }
}

size_t lock_policy_count(const struct lock_policy *table)
{
    return table->count;
}

void lock_policy_get(const struct lock_policy *table, size_t index,
                     struct lock_policy_entry *entry)
{
    const struct record *r = &table->records[index];
    memset(entry, 0, sizeof(*entry));
    memcpy(entry->tunnel, r->tunnel, sizeof(entry->tunnel));
    entry->kind = r->kind;
    memcpy(entry->key, r->key, sizeof(entry->key));
    entry->level = r->level;
    entry->locked_until = r->locked_until;
    entry->last_lock_end = r->last_lock_end;
    entry->count = r->count;
    for (unsigned i = 0; i < r->count; i++) {
        entry->times[i] = r->failures[i].time;
        entry->tags[i] = r->failures[i].tag;
    }
}

int lock_policy_restore(struct lock_policy *table, const struct lock_policy_entry *entry)
{
    if (entry->count > LIMIT_MAX_FAILURES)
        return -1;
    struct record *r = find(table, entry->tunnel, entry->kind, entry->key);
    if (r == NULL && (r = add(table, entry->tunnel, entry->kind, entry->key, 0)) == NULL)
        return -1;
    r->level = entry->level;
    r->locked_until = entry->locked_until;
    r->last_lock_end = entry->last_lock_end;
    OPENSSL_cleanse(r->failures, sizeof(r->failures));
    r->count = entry->count;
    r->touched = 0;
    for (unsigned i = 0; i < entry->count; i++) {
        r->failures[i].time = entry->times[i];
        r->failures[i].tag = entry->tags[i];
        r->failures[i].serial = ++table->last_serial;
        if (entry->times[i] > r->touched)
            r->touched = entry->times[i];
    }
    return 0;
}

int lock_policy_forget(struct lock_policy *table, const char *tunnel, enum lock_policy_kind kind,
                       const char *key)
{
    struct record *r = find(table, tunnel, kind, key);
    if (r == NULL)
        return 0;
    remove_record(table, r);
    return 1;
}
