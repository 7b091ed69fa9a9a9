#include "helper/lock_policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#define LEVEL_DECAY (24LL * 3600)

struct record {
    char tunnel[LIMIT_TUNNEL_NAME + 1];
    enum lock_policy_kind kind;
    char key[LIMIT_IDENTITY + 1];
    unsigned level;
    int64_t locked_until;     /* 0: never locked or lifted */
    int64_t last_lock_end;    /* end of the latest lock, for the level's decay */
    unsigned count;
    int64_t times[LIMIT_MAX_FAILURES];
    uint64_t tags[LIMIT_MAX_FAILURES];
    unsigned char hashes[LIMIT_MAX_FAILURES][LOCK_POLICY_HASH_LEN];
    unsigned char hashed[LIMIT_MAX_FAILURES];
};

struct lock_policy {
    size_t count;
    size_t capacity;
    size_t max_records;
    struct record *records;
};

const char *lock_policy_kind_name(enum lock_policy_kind kind)
{
    switch (kind) {
    case LOCK_POLICY_SOURCE:
        return "source";
    case LOCK_POLICY_HANDSHAKE:
        return "handshake";
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

static struct record *add(struct lock_policy *table, const char *tunnel,
                          enum lock_policy_kind kind, const char *key)
{
    if (strlen(tunnel) > LIMIT_TUNNEL_NAME || strlen(key) > LIMIT_IDENTITY ||
        table->count >= table->max_records)
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

static void remove_record(struct lock_policy *table, struct record *r)
{
    size_t index = (size_t)(r - table->records);
    OPENSSL_cleanse(r, sizeof(*r));
    if (index + 1 < table->count)
        memmove(r, r + 1, (table->count - index - 1) * sizeof(*r));
    table->count--;
}

/* Keeps only the failures younger than WINDOW, oldest first. */
static void drop_old_failures(struct record *r, int64_t now, uint64_t window)
{
    unsigned kept = 0;
    for (unsigned i = 0; i < r->count; i++) {
        if ((uint64_t)(now - r->times[i]) >= window && now >= r->times[i])
            continue;
        if (kept != i) {
            r->times[kept] = r->times[i];
            r->tags[kept] = r->tags[i];
            memcpy(r->hashes[kept], r->hashes[i], LOCK_POLICY_HASH_LEN);
            r->hashed[kept] = r->hashed[i];
        }
        kept++;
    }
    for (unsigned i = kept; i < r->count; i++) {
        OPENSSL_cleanse(r->hashes[i], LOCK_POLICY_HASH_LEN);
        r->hashed[i] = 0;
    }
    r->count = kept;
}

static void clear_failures(struct record *r)
{
    OPENSSL_cleanse(r->hashes, sizeof(r->hashes));
    memset(r->hashed, 0, sizeof(r->hashed));
    memset(r->times, 0, sizeof(r->times));
    memset(r->tags, 0, sizeof(r->tags));
    r->count = 0;
}

/* lockout * 2^(level-1), capped, without overflowing on large levels. */
static uint64_t lock_duration(uint64_t lockout, unsigned level)
{
    uint64_t duration = lockout;
    for (unsigned i = 1; i < level && duration < LIMIT_LOCK_SECONDS; i++)
        duration *= 2;
    return duration > LIMIT_LOCK_SECONDS ? LIMIT_LOCK_SECONDS : duration;
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
        unsigned seen = 0;
        for (unsigned j = 0; j < i && !seen; j++)
            seen = r->tags[j] == r->tags[i];
        distinct += !seen;
    }
    return distinct;
}

int64_t lock_policy_locked_until(const struct lock_policy *table, const char *tunnel,
                                 enum lock_policy_kind kind, const char *key, int64_t now)
{
    const struct record *r = find(table, tunnel, kind, key);
    return r != NULL && r->locked_until > now ? r->locked_until : 0;
}

int lock_policy_record_failure(struct lock_policy *table, const struct lock_policy_rules *rules,
                               const char *tunnel, enum lock_policy_kind kind, const char *key,
                               const unsigned char *hash, uint64_t tag, int64_t now,
                               struct lock_policy_verdict *verdict)
{
    memset(verdict, 0, sizeof(*verdict));
    struct record *r = find(table, tunnel, kind, key);
    if (r == NULL && (r = add(table, tunnel, kind, key)) == NULL)
        return -1;
    unsigned max = rules->max_failures;
    if (max < 1)
        max = 1;
    if (max > LIMIT_MAX_FAILURES)
        max = LIMIT_MAX_FAILURES;
    verdict->level = r->level;
    if (r->locked_until > now) {
        verdict->locked_until = r->locked_until;
        return 0;
    }
    drop_old_failures(r, now, rules->window);
    verdict->failures = r->count;
    if (hash != NULL) {
        for (unsigned i = 0; i < r->count; i++)
            if (r->hashed[i] && CRYPTO_memcmp(r->hashes[i], hash, LOCK_POLICY_HASH_LEN) == 0)
                return 0;
    }
    if (r->count >= LIMIT_MAX_FAILURES) {
        /* Cannot happen with max <= the limit, but never write past the arrays. */
        return 0;
    }
    r->times[r->count] = now;
    r->tags[r->count] = tag;
    if (hash != NULL) {
        memcpy(r->hashes[r->count], hash, LOCK_POLICY_HASH_LEN);
        r->hashed[r->count] = 1;
    }
    r->count++;
    verdict->counted = 1;
    verdict->failures = r->count;
    if (r->count < max || distinct_tags(r) < rules->min_tags)
        return 0;
    if (r->level > 0 && r->last_lock_end > 0 && now - r->last_lock_end > LEVEL_DECAY)
        r->level = 0;
    r->level++;
    r->locked_until = now + (int64_t)lock_duration(rules->lockout, r->level);
    r->last_lock_end = r->locked_until;
    clear_failures(r);
    verdict->locked_now = 1;
    verdict->locked_until = r->locked_until;
    verdict->level = r->level;
    return 0;
}

int lock_policy_record_success(struct lock_policy *table, const char *tunnel,
                               enum lock_policy_kind kind, const char *key)
{
    return lock_policy_forget(table, tunnel, kind, key);
}

int lock_policy_unlock(struct lock_policy *table, const char *key, int64_t now)
{
    int found = 0, lifted = 0;
    for (size_t i = 0; i < table->count;) {
        struct record *r = &table->records[i];
        if (strcmp(r->key, key) != 0) {
            i++;
            continue;
        }
        found = 1;
        if (r->locked_until > now) {
            lifted++;
            r->locked_until = 0;
            /* The lock ended now: the level's 24-hour memory starts here. */
            r->last_lock_end = now;
        }
        clear_failures(r);
        i++;
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
    memcpy(entry->times, r->times, r->count * sizeof(r->times[0]));
    memcpy(entry->tags, r->tags, r->count * sizeof(r->tags[0]));
}

int lock_policy_restore(struct lock_policy *table, const struct lock_policy_entry *entry)
{
    if (entry->count > LIMIT_MAX_FAILURES)
        return -1;
    struct record *r = find(table, entry->tunnel, entry->kind, entry->key);
    if (r == NULL && (r = add(table, entry->tunnel, entry->kind, entry->key)) == NULL)
        return -1;
    r->level = entry->level;
    r->locked_until = entry->locked_until;
    r->last_lock_end = entry->last_lock_end;
    clear_failures(r);
    memcpy(r->times, entry->times, entry->count * sizeof(r->times[0]));
    memcpy(r->tags, entry->tags, entry->count * sizeof(r->tags[0]));
    r->count = entry->count;
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
