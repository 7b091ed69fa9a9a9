/* fuzz_lock_state — libFuzzer target for the lock state file (lock_state_load), which
 * ktlstund and `ktlstun unlock` read at start: the input is the file.
 *
 * Checked: the load returns what it promises (-1 only with a reason, else the
 * malformed lines it skipped); every record it keeps holds what the policy can hold
 * (names in bounds and terminated, a known kind, at most LIMIT_MAX_FAILURES failures,
 * a level the file allows); what it kept, saved and loaded again, comes back the same;
 * and the policy then works on the loaded table without overflowing: lookups, a
 * failure counted, the list of locks, pruning.
 *
 *   make fuzz FUZZ_RUN=lock_state
 * tests/unit/test_fuzz_corpus.c replays the corpus in `make check` without clang. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_check.h"
#include "fuzz_file.h"
#include "helper/lock_policy.h"
#include "helper/lock_state.h"

#define NOW 1700000000LL

/* A new directory for lock_state_save, on tmpfs where there is one (each save
 * fsyncs); the caller removes it. libFuzzer ends without running atexit handlers. */
static void make_save_dir(char *dir, size_t len)
{
    snprintf(dir, len, "/dev/shm/fuzz-lock-state-XXXXXX");
    if (mkdtemp(dir) == NULL) {
        snprintf(dir, len, "/tmp/fuzz-lock-state-XXXXXX");
        CHECK(mkdtemp(dir) != NULL);
    }
}

static void check_same_entry(const struct lock_policy_entry *a, const struct lock_policy_entry *b)
{
    CHECK(strcmp(a->tunnel, b->tunnel) == 0 && a->kind == b->kind && strcmp(a->key, b->key) == 0);
    CHECK(a->level == b->level && a->locked_until == b->locked_until &&
          a->last_lock_end == b->last_lock_end && a->count == b->count);
    for (unsigned f = 0; f < a->count; f++)
        CHECK(a->times[f] == b->times[f] && a->tags[f] == b->tags[f]);
}

/* Saved and loaded again, TABLE comes back record for record. */
static void check_round_trip(const struct lock_policy *table)
{
    char err[512] = "", dir[64], path[128];
    make_save_dir(dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/lockout.state", dir);
    CHECK(lock_state_save(table, path, err, sizeof(err)) == 0);
    struct lock_policy *again = lock_policy_create();
    CHECK(again != NULL);
    CHECK(lock_state_load(again, path, err, sizeof(err)) == 0);
    CHECK(lock_policy_count(again) == lock_policy_count(table));
    for (size_t i = 0; i < lock_policy_count(table); i++) {
        struct lock_policy_entry a, b;
        lock_policy_get(table, i, &a);
        lock_policy_get(again, i, &b);
        check_same_entry(&a, &b);
    }
    lock_policy_free(again);
    unlink(path);
    rmdir(dir);
}

static void check_entries(struct lock_policy *table)
{
    static const struct lock_policy_rules rules = {
        .window = 900, .max_failures = 3, .lockout = 60, .min_tags = 0,
    };
    size_t count = lock_policy_count(table);
    CHECK(count <= LOCK_POLICY_MAX_RECORDS);
    for (size_t i = 0; i < count && i < 64; i++) {
        struct lock_policy_entry entry;
        lock_policy_get(table, i, &entry);
        CHECK(memchr(entry.tunnel, '\0', sizeof(entry.tunnel)) != NULL);
        CHECK(memchr(entry.key, '\0', sizeof(entry.key)) != NULL && entry.key[0] != '\0');
        CHECK(entry.kind >= LOCK_POLICY_IDENTITY && entry.kind <= LOCK_POLICY_HANDSHAKE);
        CHECK(entry.count <= LIMIT_MAX_FAILURES && entry.level <= 64);
        CHECK(entry.locked_until >= 0 && entry.last_lock_end >= 0);
        for (unsigned f = 0; f < entry.count; f++)
            CHECK(entry.times[f] >= 0);
        int64_t until = lock_policy_locked_until(table, entry.tunnel, entry.kind, entry.key, NOW);
        CHECK(until == (entry.locked_until > NOW ? entry.locked_until : 0));
        struct lock_policy_verdict verdict;
        CHECK(lock_policy_record_failure(table, &rules, entry.tunnel, entry.kind, entry.key, NULL,
                                         lock_policy_tag(entry.key), NOW, &verdict) == 0);
        CHECK(verdict.failures <= LIMIT_MAX_FAILURES);
        if (verdict.locked_now)
            CHECK(verdict.locked_until > NOW && verdict.locked_until <= NOW + LIMIT_LOCK_SECONDS);
    }
    char list[2048];
    unsigned locks = lock_policy_list(table, NOW, list, sizeof(list));
    CHECK(locks <= count && strlen(list) < sizeof(list));
    lock_policy_prune(table, NOW, 3600);
    CHECK(lock_policy_count(table) <= count);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct lock_policy *table = lock_policy_create();
    CHECK(table != NULL);
    char err[512] = "";
    int skipped = lock_state_load(table, fuzz_file_path(data, size), err, sizeof(err));
    CHECK(skipped >= -1);
    CHECK(strlen(err) < sizeof(err));
    CHECK(skipped == 0 || err[0] != '\0');
    if (skipped < 0)
        CHECK(lock_policy_count(table) == 0);
    check_round_trip(table);
    check_entries(table);
    lock_policy_free(table);
    return 0;
}
