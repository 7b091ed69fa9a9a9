#include "proto/grants.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "core/limits.h"
#include "core/log.h"
#include "core/seqlock.h"
#include "proto/status_record.h"

struct grant_fields {
    char tunnel[LIMIT_TUNNEL_NAME + 1];
    char sha256[LIMIT_SHA256_HEX + 1];
    char source[LIMIT_SOURCE_ADDRESS + 1];
    char identity[LIMIT_IDENTITY + 1];
    uint64_t expires_ms;      /* 0: free slot; REVOKED_MS: an administrator revoked it */
};

/* Past for any monotonic clock reading, so the slot is free for grants_put and no
 * grant for grants_check, yet not 0: the workers' sweep can still tell why the grant
 * it admitted a connection with is gone (grants_revoked_by_admin). */
#define REVOKED_MS 1u

struct grant_slot {
    struct seqlock lock;
    _Atomic uint64_t tag;        /* first 8 fingerprint digits, 0 when free: lets a
                                    reader skip most slots without copying them */
    struct grant_fields fields;
};

struct store_status {
    uint32_t state;                 /* enum grants_store_state */
    char text[GRANTS_STORE_TEXT];
};

/* The shared memory itself. */
struct grants_map {
    _Atomic uint64_t withdrawals;   /* +1 after each write that may end a live grant */
    struct seqlock store_lock;
    struct store_status store;      /* the shared state store, as the helper sees it */
    struct grant_slot slots[GRANTS_CAPACITY];
};

/* Each process's handle: its view of the map, and the memfd behind it until a worker
 * trades its view for a read-only one. */
struct grants {
    struct grants_map *map;
    int fd;
};

struct grants *grants_create(void)
{
    struct grants *table = calloc(1, sizeof(*table));
    if (table == NULL) {
        log_error("second-factor grants: out of memory");
        return NULL;
    }
    table->map = MAP_FAILED;
    /* A memfd rather than anonymous memory: a worker can then map it again through
     * a read-only descriptor, a view that mprotect() cannot make writable. */
    table->fd = memfd_create("ktlstun-grants", MFD_CLOEXEC);
    if (table->fd < 0 || ftruncate(table->fd, sizeof(struct grants_map)) < 0 ||
        (table->map = mmap(NULL, sizeof(struct grants_map), PROT_READ | PROT_WRITE, MAP_SHARED,
                           table->fd, 0)) == MAP_FAILED) {
        log_error("second-factor grants: cannot map the table: %s", strerror(errno));
        grants_free(table);
        return NULL;
    }
    return table;
}

int grants_make_read_only(struct grants *table)
{
    int result = -1;
    int ro_fd = -1;
    char path[64];
    if (table->fd < 0) {
        log_error("second-factor grants: the table's memfd is already closed");
        return -1;
    }
    snprintf(path, sizeof(path), "/proc/self/fd/%d", table->fd);
    ro_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (ro_fd < 0) {
        log_error("second-factor grants: cannot reopen the table read-only (%s): %s", path,
                  strerror(errno));
        goto out;
    }
    void *view = mmap(NULL, sizeof(struct grants_map), PROT_READ, MAP_SHARED, ro_fd, 0);
    if (view == MAP_FAILED) {
        log_error("second-factor grants: cannot map the table read-only: %s", strerror(errno));
        goto out;
    }
    munmap(table->map, sizeof(struct grants_map));
    table->map = view;
    close(table->fd);
    table->fd = -1;
    result = 0;
out:
    if (ro_fd >= 0)
        close(ro_fd);
    return result;
}

void grants_free(struct grants *table)
{
    if (table == NULL)
        return;
    if (table->map != MAP_FAILED)
        munmap(table->map, sizeof(struct grants_map));
    if (table->fd >= 0)
        close(table->fd);
    free(table);
}

/* A consistent copy of SLOT (the writer may be rewriting it concurrently). Returns
 * 0, or -1 when the slot was left half-written by a helper that died: no grant. */
static int read_slot(const struct grant_slot *slot, struct grant_fields *copy)
{
    return seqlock_read(&slot->lock, &slot->fields, copy, sizeof(*copy));
}

void grants_describe(const struct grants *table, uint64_t now_ms, FILE *out)
{
    for (size_t i = 0; i < GRANTS_CAPACITY; i++) {
        if (atomic_load_explicit(&table->map->slots[i].tag, memory_order_relaxed) == 0)
            continue;
        struct grant_fields copy;
        if (read_slot(&table->map->slots[i], &copy) < 0 || copy.expires_ms <= now_ms)
            continue;
        status_record_begin(out, "grant");
        status_record_text(out, "tunnel", copy.tunnel);
        status_record_text(out, "identity", copy.identity);
        status_record_text(out, "sha256", copy.sha256);
        status_record_text(out, "source", copy.source);
        status_record_number(out, "expires_in", (copy.expires_ms - now_ms) / 1000);
        status_record_end(out);
    }
}

static uint64_t tag_of(const char *sha256)
{
    uint64_t tag;
    memcpy(&tag, sha256, sizeof(tag));
    return tag;
}

uint64_t grants_withdrawals(const struct grants *table)
{
    return atomic_load_explicit(&table->map->withdrawals, memory_order_acquire);
}

/* WITHDRAWS: the write may end a grant before its time (see grants_withdrawals). */
static void write_slot(struct grants *table, struct grant_slot *slot,
                       const struct grant_fields *fields, int withdraws)
{
    seqlock_write_begin(&slot->lock);
    memcpy((void *)&slot->fields, fields, sizeof(*fields));
    atomic_store_explicit(&slot->tag, fields->expires_ms != 0 ? tag_of(fields->sha256) : 0,
                          memory_order_relaxed);
    seqlock_write_end(&slot->lock);
    if (withdraws)
        atomic_fetch_add_explicit(&table->map->withdrawals, 1, memory_order_release);
}

unsigned grants_recover(struct grants *table)
{
    unsigned cleared = 0;
    struct grant_fields empty;
    memset(&empty, 0, sizeof(empty));
    for (size_t i = 0; i < GRANTS_CAPACITY; i++) {
        if (!seqlock_was_abandoned(&table->map->slots[i].lock))
            continue;
        /* A half-written slot may have held a grant: clearing it withdraws that. */
        write_slot(table, &table->map->slots[i], &empty, 1);
        cleared++;
    }
    return cleared;
}

int grants_put(struct grants *table, const char *tunnel, const char *sha256,
               const char *identity, const char *source, uint64_t expires_ms, uint64_t now_ms)
{
    struct grant_fields fields;
    if (strlen(tunnel) > LIMIT_TUNNEL_NAME || strlen(sha256) != LIMIT_SHA256_HEX ||
        strlen(source) > LIMIT_SOURCE_ADDRESS || strlen(identity) > LIMIT_IDENTITY)
        return -1;
    memset(&fields, 0, sizeof(fields));
    memcpy(fields.tunnel, tunnel, strlen(tunnel));
    memcpy(fields.sha256, sha256, LIMIT_SHA256_HEX);
    memcpy(fields.source, source, strlen(source));
    memcpy(fields.identity, identity, strlen(identity));
    fields.expires_ms = expires_ms;

    /* The helper is the only writer, so it may read slots without the protocol. */
    struct grant_slot *same = NULL, *free_slot = NULL, *soonest = NULL;
    for (size_t i = 0; i < GRANTS_CAPACITY && same == NULL; i++) {
        struct grant_slot *slot = &table->map->slots[i];
        const struct grant_fields *f = &slot->fields;
        if (f->expires_ms != 0 && strcmp(f->sha256, sha256) == 0 && strcmp(f->tunnel, tunnel) == 0)
            same = slot;
        else if (free_slot == NULL && f->expires_ms <= now_ms)
            free_slot = slot;
        else if (soonest == NULL || f->expires_ms < soonest->fields.expires_ms)
            soonest = slot;
    }
    struct grant_slot *target = same != NULL ? same : free_slot != NULL ? free_slot : soonest;
    if (target == NULL)
        return -1;
    /* Renewing a grant from the same address for as long or longer ends nothing; an
     * eviction, a move to another address or a shorter grant may. */
    const struct grant_fields *old = &target->fields;
    int withdraws = old->expires_ms > now_ms &&
                    !(target == same && strcmp(old->source, source) == 0 && expires_ms >= old->expires_ms);
    write_slot(table, target, &fields, withdraws);
    return 0;
}

/* What a slot of the certificate and tunnel asked for must also be. */
struct slot_test {
    int revoked;                /* revoked by an administrator, else live at NOW_MS */
    uint64_t now_ms;
    const char *source;         /* live: bound to this source (NULL: any) */
};

static int passes(const struct grant_fields *f, const struct slot_test *test)
{
    if (test->revoked)
        return f->expires_ms == REVOKED_MS;
    return f->expires_ms > test->now_ms &&
           (test->source == NULL || strcmp(f->source, test->source) == 0);
}

/* Finds a slot of certificate SHA256 on TUNNEL that passes TEST, copying it into
 * FOUND. Returns 1, or 0 when none does. */
static int find_slot(const struct grants *table, const char *tunnel, const char *sha256,
                     const struct slot_test *test, struct grant_fields *found)
{
    if (strlen(sha256) != LIMIT_SHA256_HEX)
        return 0;
    uint64_t tag = tag_of(sha256);
    for (size_t i = 0; i < GRANTS_CAPACITY; i++) {
        const struct grant_slot *slot = &table->map->slots[i];
        /* Cheap peek to skip other certificates; the real test is on a consistent copy. */
        if (atomic_load_explicit(&slot->tag, memory_order_relaxed) != tag)
            continue;
        if (read_slot(slot, found) == 0 && strcmp(found->sha256, sha256) == 0 &&
            strcmp(found->tunnel, tunnel) == 0 && passes(found, test))
            return 1;
    }
    return 0;
}

int grants_check(const struct grants *table, const char *tunnel, const char *sha256,
                 const char *source, uint64_t now_ms, uint64_t *expires_ms)
{
    const struct slot_test live = { .now_ms = now_ms, .source = source };
    struct grant_fields copy;
    if (!find_slot(table, tunnel, sha256, &live, &copy))
        return 0;
    if (expires_ms != NULL)
        *expires_ms = copy.expires_ms;
    return 1;
}

unsigned grants_withdraw(struct grants *table, const char *tunnel, const char *identity,
                         const char *sha256, int by_admin, uint64_t now_ms)
{
    unsigned live = 0;
    for (size_t i = 0; i < GRANTS_CAPACITY; i++) {
        struct grant_slot *slot = &table->map->slots[i];
        const struct grant_fields *f = &slot->fields;
        if (f->expires_ms == 0 || (tunnel != NULL && strcmp(f->tunnel, tunnel) != 0))
            continue;
        if (sha256 != NULL ? strcmp(f->sha256, sha256) != 0 : strcmp(f->identity, identity) != 0)
            continue;
        if (f->expires_ms > now_ms)
            live++;
        struct grant_fields cleared;
        memset(&cleared, 0, sizeof(cleared));
        if (by_admin) {
            cleared = *f;
            cleared.expires_ms = REVOKED_MS;
        }
        write_slot(table, slot, &cleared, 1);
    }
    return live;
}

unsigned grants_revoke_identity(struct grants *table, const char *tunnel, const char *identity,
                                uint64_t now_ms)
{
    return grants_withdraw(table, tunnel, identity, NULL, 0, now_ms);
}

int grants_revoked_by_admin(const struct grants *table, const char *tunnel, const char *sha256)
{
    const struct slot_test revoked = { .revoked = 1 };
    struct grant_fields copy;
    return find_slot(table, tunnel, sha256, &revoked, &copy);
}

void grants_set_store_state(struct grants *table, enum grants_store_state state, const char *text)
{
    struct store_status *status = &table->map->store;
    seqlock_write_begin(&table->map->store_lock);
    status->state = state;
    snprintf(status->text, sizeof(status->text), "%s", text);
    seqlock_write_end(&table->map->store_lock);
}

enum grants_store_state grants_store_state(const struct grants *table, char *text, size_t len)
{
    struct store_status copy;
    if (seqlock_read(&table->map->store_lock, &table->map->store, &copy, sizeof(copy)) < 0) {
        snprintf(text, len, "the login service is restarting");
        return GRANTS_STORE_DOWN;
    }
    copy.text[sizeof(copy.text) - 1] = '\0';
    snprintf(text, len, "%s", copy.text);
    return (enum grants_store_state)copy.state;
}
