#include "worker/source_table.h"

#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <string.h>

enum entry_kind { ENTRY_FREE, ENTRY_COUNT, ENTRY_RATE };

struct entry {
    unsigned char key[16];
    uint16_t kind;
    uint16_t tunnel;
    uint16_t worker;              /* ENTRY_COUNT */
    uint32_t connections;         /* ENTRY_COUNT: that worker's */
    uint64_t millitokens;         /* ENTRY_RATE: tokens × 1000 at stamp_ms */
    uint64_t stamp_ms;
    uint64_t full_at_ms;          /* ENTRY_RATE: from then on the bucket is full again */
};

struct source_table {
    pthread_mutex_t lock;
    uint64_t seed;
    struct entry entries[SOURCE_TABLE_SLOTS];
};

size_t source_table_size(void)
{
    return sizeof(struct source_table);
}

struct source_table *source_table_init(void *memory, uint64_t seed)
{
    struct source_table *table = memory;
    pthread_mutexattr_t attr;
    if (pthread_mutexattr_init(&attr) != 0)
        return NULL;
    int failed = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED) != 0 ||
                 pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST) != 0 ||
                 pthread_mutex_init(&table->lock, &attr) != 0;
    pthread_mutexattr_destroy(&attr);
    if (failed)
        return NULL;
    table->seed = seed;
    return table;
}

int source_key_from_sockaddr(const struct sockaddr *addr, socklen_t len, struct source_key *key)
{
    static const unsigned char v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
    memset(key, 0, sizeof(*key));
    if (addr->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        memcpy(key->bytes, v4_mapped, sizeof(v4_mapped));
        memcpy(key->bytes + 12, &((const struct sockaddr_in *)addr)->sin_addr, 4);
        return 0;
    }
    if (addr->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const unsigned char *a = ((const struct sockaddr_in6 *)addr)->sin6_addr.s6_addr;
        /* An IPv4 client on a dual-stack listener is that IPv4 address. */
        memcpy(key->bytes, a, memcmp(a, v4_mapped, sizeof(v4_mapped)) == 0 ? 16 : 8);
        return 0;
    }
    return -1;
}

/* The first slot of the window of (TUNNEL, KEY), keyed so that no one outside can
 * aim many sources at one window. */
static size_t window_start(const struct source_table *table, int tunnel, const struct source_key *key)
{
    uint64_t h = table->seed ^ ((uint64_t)(unsigned)tunnel * 0x9e3779b97f4a7c15ULL);
    for (size_t i = 0; i < sizeof(key->bytes); i += 8) {
        uint64_t word;
        memcpy(&word, key->bytes + i, sizeof(word));
        h = (h ^ word) * 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 31;
        h *= 0x94d049bb133111ebULL;
        h ^= h >> 29;
    }
    return (size_t)(h % SOURCE_TABLE_SLOTS);
}

static struct entry *slot_at(struct source_table *table, size_t start, size_t i)
{
    return &table->entries[(start + i) % SOURCE_TABLE_SLOTS];
}

static int matches(const struct entry *e, int tunnel, const struct source_key *key)
{
    return e->kind != ENTRY_FREE && e->tunnel == (uint16_t)tunnel &&
           memcmp(e->key, key->bytes, sizeof(e->key)) == 0;
}

/* The bucket of E at NOW_MS under POLICY, in thousandths of a token. */
static uint64_t tokens_now(const struct entry *e, const struct source_policy *policy, uint64_t now_ms)
{
    uint64_t full = policy->burst * 1000u;
    uint64_t elapsed = now_ms > e->stamp_ms ? now_ms - e->stamp_ms : 0;
    /* rate tokens a second is rate thousandths a millisecond */
    uint64_t gained = policy->rate != 0 && elapsed > full / policy->rate ? full : elapsed * policy->rate;
    return e->millitokens + gained >= full ? full : e->millitokens + gained;
}

static void lock(struct source_table *table)
{
    if (pthread_mutex_lock(&table->lock) == EOWNERDEAD)
        pthread_mutex_consistent(&table->lock);
}

static void unlock(struct source_table *table)
{
    pthread_mutex_unlock(&table->lock);
}

enum source_verdict source_table_acquire(struct source_table *table, int worker_slot, int tunnel_slot,
                                         const struct source_key *key,
                                         const struct source_policy *policy, uint64_t now_ms)
{
    size_t start = window_start(table, tunnel_slot, key);
    struct entry *mine = NULL, *bucket = NULL, *spare[2] = { NULL, NULL };
    uint64_t connections = 0;
    enum source_verdict verdict = SOURCE_ADMITTED;
    lock(table);
    for (size_t i = 0; i < SOURCE_TABLE_WINDOW; i++) {
        struct entry *e = slot_at(table, start, i);
        if (matches(e, tunnel_slot, key) && e->kind == ENTRY_COUNT) {
            connections += e->connections;
            if (e->worker == (uint16_t)worker_slot)
                mine = e;
        } else if (matches(e, tunnel_slot, key) && e->kind == ENTRY_RATE) {
            bucket = e;
        } else if (spare[1] == NULL && (e->kind == ENTRY_FREE ||
                                        (e->kind == ENTRY_RATE && now_ms >= e->full_at_ms))) {
            /* A bucket that filled up again says nothing a fresh one would not. */
            spare[spare[0] != NULL] = e;
        }
    }
    if (policy->max_connections != 0 && connections >= policy->max_connections) {
        verdict = SOURCE_TOO_MANY;
        goto out;
    }
    /* Room first: a refusal for want of room must not cost the source a token. */
    int need = (mine == NULL) + (policy->rate != 0 && bucket == NULL);
    if ((need >= 1 && spare[0] == NULL) || (need == 2 && spare[1] == NULL)) {
        verdict = SOURCE_TABLE_FULL;
        goto out;
    }
    if (policy->rate != 0) {
        uint64_t tokens = policy->burst * 1000u;
        if (bucket != NULL)
            tokens = tokens_now(bucket, policy, now_ms);
        if (tokens < 1000) {
            verdict = SOURCE_TOO_FAST;
            goto out;
        }
        if (bucket == NULL) {
            bucket = mine == NULL ? spare[1] : spare[0];
            memcpy(bucket->key, key->bytes, sizeof(bucket->key));
            bucket->kind = ENTRY_RATE;
            bucket->tunnel = (uint16_t)tunnel_slot;
        }
        bucket->millitokens = tokens - 1000;
        bucket->stamp_ms = now_ms;
        bucket->full_at_ms = now_ms + (policy->burst * 1000u - bucket->millitokens + policy->rate - 1) /
                                          policy->rate;
    }
    if (mine == NULL) {
        mine = spare[0];
        memcpy(mine->key, key->bytes, sizeof(mine->key));
        mine->kind = ENTRY_COUNT;
        mine->tunnel = (uint16_t)tunnel_slot;
        mine->worker = (uint16_t)worker_slot;
        mine->connections = 0;
    }
    mine->connections++;
out:
    unlock(table);
    return verdict;
}

void source_table_release(struct source_table *table, int worker_slot, int tunnel_slot,
                          const struct source_key *key)
{
    size_t start = window_start(table, tunnel_slot, key);
    lock(table);
    for (size_t i = 0; i < SOURCE_TABLE_WINDOW; i++) {
        struct entry *e = slot_at(table, start, i);
        if (matches(e, tunnel_slot, key) && e->kind == ENTRY_COUNT && e->worker == (uint16_t)worker_slot) {
            if (e->connections > 0)
                e->connections--;
            if (e->connections == 0)
                e->kind = ENTRY_FREE;
            break;
        }
    }
    unlock(table);
}

void source_table_forget_worker(struct source_table *table, int worker_slot)
{
    lock(table);
    for (size_t i = 0; i < SOURCE_TABLE_SLOTS; i++) {
        struct entry *e = &table->entries[i];
        if (e->kind == ENTRY_COUNT && e->worker == (uint16_t)worker_slot)
            e->kind = ENTRY_FREE;
    }
    unlock(table);
}

uint64_t source_table_connections(struct source_table *table, int tunnel_slot,
                                  const struct source_key *key)
{
    size_t start = window_start(table, tunnel_slot, key);
    uint64_t connections = 0;
    lock(table);
    for (size_t i = 0; i < SOURCE_TABLE_WINDOW; i++) {
        const struct entry *e = slot_at(table, start, i);
        if (matches(e, tunnel_slot, key) && e->kind == ENTRY_COUNT)
            connections += e->connections;
    }
    unlock(table);
    return connections;
}
