/* lock_policy: counting in the window, the same code once per time step, locks that
 * double up to 24 h, level resets, reservations of running attempts, success that lifts
 * nothing a concurrent failure imposed, unlock, address and user locks that need two
 * identities, budgets per kind in a full table, listing, pruning, and records handed
 * to and from lock_state. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "helper/lock_policy.h"

#define T0 1700000000
#define MINUTE ((int64_t)60)
#define HOUR ((int64_t)3600)

static const struct lock_policy_rules rules = { .window = 15 * MINUTE, .max_failures = 3,
                                               .lockout = 10 * MINUTE };

/* A distinct answer hash per CODE. */
static const unsigned char *hash_of(int code)
{
    static unsigned char hashes[16][LOCK_POLICY_HASH_LEN];
    unsigned char *h = hashes[code % 16];
    memset(h, 0, LOCK_POLICY_HASH_LEN);
    memcpy(h, &code, sizeof(code));
    return h;
}

static struct lock_policy_verdict fail_at(struct lock_policy *t, const char *key, int code,
                                          int64_t when)
{
    struct lock_policy_verdict v;
    assert_int_equal(lock_policy_record_failure(t, &rules, "vpn", LOCK_POLICY_IDENTITY, key,
                                                code < 0 ? NULL : hash_of(code), 0, when, &v),
                     0);
    return v;
}

/* An attempt of KEY starting at WHEN: its serial (it must get a reservation). */
static uint64_t reserve_at(struct lock_policy *t, const char *key, int64_t when)
{
    uint64_t serial;
    int64_t until;
    assert_int_equal(lock_policy_reserve(t, &rules, "vpn", LOCK_POLICY_IDENTITY, key, 0, when,
                                         &serial, &until),
                     LOCK_POLICY_RESERVED);
    assert_true(serial != 0);
    assert_int_equal(until, 0);
    return serial;
}

static struct lock_policy_verdict settle_at(struct lock_policy *t, const char *key,
                                            uint64_t serial, int code, int64_t when)
{
    struct lock_policy_verdict v;
    assert_int_equal(lock_policy_settle_failure(t, &rules, "vpn", LOCK_POLICY_IDENTITY, key,
                                                serial, code < 0 ? NULL : hash_of(code), 0,
                                                when, &v),
                     0);
    return v;
}

static void test_third_failure_locks_for_lockout(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    struct lock_policy_verdict v = fail_at(t, "alice", 1, T0);
    assert_true(v.counted);
    assert_int_equal(v.failures, 1);
    assert_false(v.locked_now);
    v = fail_at(t, "alice", 2, T0 + 10);
    assert_int_equal(v.failures, 2);
    assert_int_equal(lock_policy_locked_until(t, "vpn", LOCK_POLICY_IDENTITY, "alice", T0 + 10), 0);
    v = fail_at(t, "alice", 3, T0 + 20);
    assert_true(v.locked_now);
    assert_int_equal(v.failures, 3);
    assert_int_equal(v.level, 1);
    assert_int_equal(v.locked_until, T0 + 20 + 10 * MINUTE);
    assert_int_equal(lock_policy_locked_until(t, "vpn", LOCK_POLICY_IDENTITY, "alice", T0 + 21),
                     T0 + 20 + 10 * MINUTE);
    /* Another identity, another tunnel, another kind: untouched. */
    assert_int_equal(lock_policy_locked_until(t, "vpn", LOCK_POLICY_IDENTITY, "bob", T0 + 21), 0);
    assert_int_equal(lock_policy_locked_until(t, "other", LOCK_POLICY_IDENTITY, "alice", T0 + 21),
                     0);
    assert_int_equal(lock_policy_locked_until(t, "vpn", LOCK_POLICY_SOURCE, "alice", T0 + 21), 0);
    /* It ends on time. */
    assert_int_equal(lock_policy_locked_until(t, "vpn", LOCK_POLICY_IDENTITY, "alice",
                                              T0 + 20 + 10 * MINUTE),
                     0);
    lock_policy_free(t);
}

static void test_failures_outside_the_window_do_not_count(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    fail_at(t, "alice", 1, T0);
    fail_at(t, "alice", 2, T0 + 5 * MINUTE);
    /* The first has aged out when the third comes. */
    struct lock_policy_verdict v = fail_at(t, "alice", 3, T0 + 15 * MINUTE);
    assert_false(v.locked_now);
    assert_int_equal(v.failures, 2);
    v = fail_at(t, "alice", 4, T0 + 16 * MINUTE);
    assert_true(v.locked_now);
    lock_policy_free(t);
}

static void test_same_code_counts_once(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    assert_true(fail_at(t, "alice", 7, T0).counted);
    struct lock_policy_verdict v = fail_at(t, "alice", 7, T0 + 1);
    assert_false(v.counted);
    assert_int_equal(v.failures, 1);
    v = fail_at(t, "alice", 7, T0 + 2);
    assert_false(v.locked_now);
    /* Failures with no answers (none given) always count. */
    assert_true(fail_at(t, "alice", -1, T0 + 3).counted);
    v = fail_at(t, "alice", -1, T0 + 4);
    assert_true(v.locked_now);
    /* After the window the same code counts again. */
    struct lock_policy *u = lock_policy_create();
    fail_at(u, "bob", 7, T0);
    assert_true(fail_at(u, "bob", 7, T0 + 16 * MINUTE).counted);
    lock_policy_free(u);
    lock_policy_free(t);
}

static void test_locked_key_counts_nothing(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    for (int i = 0; i < 3; i++)
        fail_at(t, "alice", i, T0 + i);
    struct lock_policy_verdict v = fail_at(t, "alice", 9, T0 + 60);
    assert_false(v.counted);
    assert_false(v.locked_now);
    assert_int_equal(v.locked_until, T0 + 2 + 10 * MINUTE);
    lock_policy_free(t);
}

static int64_t lock_again(struct lock_policy *t, int64_t when, unsigned *level)
{
    struct lock_policy_verdict v;
    for (int i = 0; i < 3; i++)
        v = fail_at(t, "alice", i, when + i);
    assert_true(v.locked_now);
    *level = v.level;
    return v.locked_until - (when + 2);
}

static void test_repeat_locks_double_up_to_a_day(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    unsigned level;
    int64_t when = T0;
    static const int64_t expected[] = { 10 * MINUTE, 20 * MINUTE, 40 * MINUTE, 80 * MINUTE,
                                        160 * MINUTE, 320 * MINUTE, 640 * MINUTE, 1280 * MINUTE,
                                        24 * HOUR, 24 * HOUR };
    for (size_t i = 0; i < sizeof(expected) / sizeof(expected[0]); i++) {
        int64_t length = lock_again(t, when, &level);
        assert_int_equal(level, i + 1);
        assert_int_equal(length, expected[i]);
        when += 2 + length;   /* the next attempts come right after the lock ends */
    }
    /* Very many repeats stay capped (no overflow). */
    for (int i = 0; i < 70; i++) {
        int64_t length = lock_again(t, when, &level);
        assert_int_equal(length, 24 * HOUR);
        when += 2 + length;
    }
    lock_policy_free(t);
}

static void test_level_forgets_after_a_day_without_locks(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    unsigned level;
    int64_t first = lock_again(t, T0, &level);
    int64_t end = T0 + 2 + first;
    assert_int_equal(lock_again(t, end + HOUR, &level), 20 * MINUTE);
    end = end + HOUR + 2 + 20 * MINUTE;
    assert_int_equal(lock_again(t, end + 24 * HOUR + 1, &level), 10 * MINUTE);
    assert_int_equal(level, 1);
    lock_policy_free(t);
}

static void test_success_resets_count_and_level(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    unsigned level;
    int64_t length = lock_again(t, T0, &level);
    int64_t when = T0 + 2 + length;
    fail_at(t, "alice", 1, when);
    fail_at(t, "alice", 2, when + 1);
    uint64_t serial = reserve_at(t, "alice", when + 2);
    assert_int_equal(lock_policy_record_success(t, "vpn", LOCK_POLICY_IDENTITY, "alice", serial,
                                                when + 2),
                     1);
    assert_int_equal(lock_policy_record_success(t, "vpn", LOCK_POLICY_IDENTITY, "alice", serial,
                                                when + 2),
                     0);
    /* Two more failures no longer lock; and the next lock is a first one again. */
    assert_false(fail_at(t, "alice", 3, when + 2).locked_now);
    assert_false(fail_at(t, "alice", 4, when + 3).locked_now);
    struct lock_policy_verdict v = fail_at(t, "alice", 5, when + 4);
    assert_true(v.locked_now);
    assert_int_equal(v.level, 1);
    lock_policy_free(t);
}

static void test_unlock_lifts_but_keeps_the_level(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    unsigned level;
    lock_again(t, T0, &level);
    assert_int_equal(lock_policy_unlock(t, "nobody", T0 + 10), -1);
    assert_int_equal(lock_policy_unlock(t, "alice", T0 + 10), 1);
    assert_int_equal(lock_policy_locked_until(t, "vpn", LOCK_POLICY_IDENTITY, "alice", T0 + 10), 0);
    assert_int_equal(lock_policy_unlock(t, "alice", T0 + 11), 0);
    /* The attacker who resumes meets a doubled lock. */
    assert_int_equal(lock_again(t, T0 + 20, &level), 20 * MINUTE);
    assert_int_equal(level, 2);
    lock_policy_free(t);
}

static void test_source_lock_needs_two_identities(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    struct lock_policy_rules by_address = rules;
    by_address.min_tags = 2;
    struct lock_policy_verdict v;
    uint64_t alice = lock_policy_tag("alice"), bob = lock_policy_tag("bob");
    assert_true(alice != bob && alice != 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(lock_policy_record_failure(t, &by_address, "vpn", LOCK_POLICY_SOURCE,
                                                    "192.0.2.7", hash_of(i), alice, T0 + i, &v),
                         0);
        assert_false(v.locked_now);
    }
    assert_int_equal(lock_policy_record_failure(t, &by_address, "vpn", LOCK_POLICY_SOURCE,
                                                "192.0.2.7", hash_of(9), bob, T0 + 9, &v),
                     0);
    assert_true(v.locked_now);
    assert_int_equal(lock_policy_locked_until(t, "vpn", LOCK_POLICY_SOURCE, "192.0.2.7", T0 + 10),
                     T0 + 9 + 10 * MINUTE);
    lock_policy_free(t);
}

static void test_policy_limits_are_clamped(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    struct lock_policy_rules zero = { .window = MINUTE, .max_failures = 0, .lockout = MINUTE };
    struct lock_policy_verdict v;
    assert_int_equal(lock_policy_record_failure(t, &zero, "vpn", LOCK_POLICY_IDENTITY, "x", NULL,
                                                0, T0, &v),
                     0);
    assert_true(v.locked_now);
    struct lock_policy_rules huge = { .window = HOUR, .max_failures = 1000, .lockout = MINUTE };
    for (int i = 0; i < LIMIT_MAX_FAILURES; i++)
        assert_int_equal(lock_policy_record_failure(t, &huge, "vpn", LOCK_POLICY_IDENTITY, "y",
                                                    NULL, 0, T0 + i, &v),
                         0);
    assert_true(v.locked_now);
    /* Keys and tunnels too long for the state file are refused, not cut. */
    char long_key[LIMIT_IDENTITY + 2];
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    assert_int_equal(lock_policy_record_failure(t, &rules, "vpn", LOCK_POLICY_IDENTITY, long_key,
                                                NULL, 0, T0, &v),
                     -1);
    lock_policy_free(t);
}

static void test_prune_keeps_what_still_matters(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    unsigned level;
    lock_again(t, T0, &level);                            /* alice: lock then level */
    fail_at(t, "bob", 1, T0);                              /* bob: one failure */
    lock_policy_prune(t, T0 + 20 * MINUTE, 15 * MINUTE);  /* bob's failure aged out */
    char list[256];
    assert_int_equal(lock_policy_unlock(t, "bob", T0), -1);
    assert_int_equal(lock_policy_list(t, T0 + 5, list, sizeof(list)), 1);
    lock_policy_prune(t, T0 + 12 * HOUR, 15 * MINUTE);    /* alice's level still counts */
    assert_int_equal(lock_policy_unlock(t, "alice", T0 + 12 * HOUR), 0);
    lock_policy_prune(t, T0 + 12 * HOUR + 25 * HOUR, 15 * MINUTE);
    assert_int_equal(lock_policy_unlock(t, "alice", T0), -1);
    lock_policy_free(t);
}

static void test_a_failure_counts_until_it_is_a_window_old(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    fail_at(t, "alice", 1, T0);
    fail_at(t, "alice", 2, T0 + 1);
    /* One second short of the window, the first still counts: the third locks. */
    struct lock_policy_verdict v = fail_at(t, "alice", 3, T0 + 15 * MINUTE - 1);
    assert_int_equal(v.failures, 3);
    assert_true(v.locked_now);
    lock_policy_free(t);
}

static void test_same_answer_counts_once_per_key_and_window(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    fail_at(t, "alice", 1, T0);
    fail_at(t, "alice", 2, T0 + 1);
    /* Any earlier answer of the window, not only the last one. */
    struct lock_policy_verdict v = fail_at(t, "alice", 1, T0 + 2);
    assert_false(v.counted);
    assert_int_equal(v.failures, 2);
    assert_false(v.locked_now);
    /* The same answer for another identity is that identity's own failure. */
    v = fail_at(t, "bob", 1, T0 + 3);
    assert_true(v.counted);
    assert_int_equal(v.failures, 1);
    /* Once the first failure aged out, its answer counts again, and locks. */
    v = fail_at(t, "alice", 1, T0 + 15 * MINUTE);
    assert_true(v.counted);
    assert_int_equal(v.failures, 2);
    v = fail_at(t, "alice", 1, T0 + 15 * MINUTE);
    assert_false(v.counted);
    v = fail_at(t, "alice", 3, T0 + 15 * MINUTE);
    assert_int_equal(v.failures, 3);
    assert_true(v.locked_now);
    lock_policy_free(t);
}

static void test_a_lock_clears_the_count_and_the_answers(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    unsigned level;
    int64_t length = lock_again(t, T0, &level);   /* codes 0, 1, 2 */
    int64_t end = T0 + 2 + length;
    assert_int_equal(lock_policy_locked_until(t, "vpn", LOCK_POLICY_IDENTITY, "alice", end - 1),
                     end);
    /* After the lock the count starts over, and the codes of before count again. */
    struct lock_policy_verdict v = fail_at(t, "alice", 0, end);
    assert_true(v.counted);
    assert_int_equal(v.failures, 1);
    assert_false(v.locked_now);
    assert_int_equal(v.level, 1);
    lock_policy_free(t);
}

static void test_a_lock_never_lasts_more_than_a_day(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    struct lock_policy_rules long_first = { .window = HOUR, .max_failures = 1,
                                            .lockout = 30 * HOUR };
    struct lock_policy_verdict v;
    assert_int_equal(lock_policy_record_failure(t, &long_first, "vpn", LOCK_POLICY_IDENTITY, "a",
                                                NULL, 0, T0, &v),
                     0);
    assert_true(v.locked_now);
    assert_int_equal(v.locked_until, T0 + LIMIT_LOCK_SECONDS);
    /* 13 h doubled is 26 h: cut to 24 h. */
    struct lock_policy_rules thirteen = { .window = HOUR, .max_failures = 1,
                                          .lockout = 13 * HOUR };
    int64_t when = T0;
    for (unsigned level = 1; level <= 2; level++) {
        assert_int_equal(lock_policy_record_failure(t, &thirteen, "vpn", LOCK_POLICY_IDENTITY, "b",
                                                    NULL, 0, when, &v),
                         0);
        assert_true(v.locked_now);
        assert_int_equal(v.level, level);
        assert_int_equal(v.locked_until - when, level == 1 ? 13 * HOUR : 24 * HOUR);
        when = v.locked_until;
    }
    lock_policy_free(t);
}

static void test_level_kept_for_exactly_a_day(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    unsigned level;
    int64_t end = T0 + 2 + lock_again(t, T0, &level);
    /* The locking failure comes 24 h to the second after the lock ended: still a repeat. */
    assert_int_equal(lock_again(t, end + 24 * HOUR - 2, &level), 20 * MINUTE);
    assert_int_equal(level, 2);
    lock_policy_free(t);
}

static void test_unlock_starts_the_day_of_memory(void **state)
{
    (void)state;
    unsigned level;
    int64_t unlocked = T0 + 10;
    /* Lifted early, the level is forgotten a day after the unlock, not after the lock's
     * planned end. */
    struct lock_policy *t = lock_policy_create();
    lock_again(t, T0, &level);
    assert_int_equal(lock_policy_unlock(t, "alice", unlocked), 1);
    assert_int_equal(lock_again(t, unlocked + 24 * HOUR + 1 - 2, &level), 10 * MINUTE);
    assert_int_equal(level, 1);
    lock_policy_free(t);
    /* A day to the second after it, the level still counts. */
    t = lock_policy_create();
    lock_again(t, T0, &level);
    assert_int_equal(lock_policy_unlock(t, "alice", unlocked), 1);
    assert_int_equal(lock_again(t, unlocked + 24 * HOUR - 2, &level), 20 * MINUTE);
    assert_int_equal(level, 2);
    lock_policy_free(t);
}

static void test_unlock_covers_every_tunnel_and_kind(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    struct lock_policy_rules once = { .window = HOUR, .max_failures = 1, .lockout = MINUTE };
    struct lock_policy_verdict v;
    assert_int_equal(lock_policy_record_failure(t, &once, "vpn", LOCK_POLICY_SOURCE, "192.0.2.7",
                                                NULL, 1, T0, &v),
                     0);
    assert_int_equal(lock_policy_record_failure(t, &once, "ssh", LOCK_POLICY_HANDSHAKE,
                                                "192.0.2.7", NULL, 0, T0, &v),
                     0);
    assert_int_equal(lock_policy_record_failure(t, &rules, "vpn", LOCK_POLICY_IDENTITY,
                                                "192.0.2.7", hash_of(1), 0, T0, &v),
                     0);
    assert_int_equal(lock_policy_unlock(t, "192.0.2.7", T0 + 1), 2);
    assert_int_equal(lock_policy_locked_until(t, "vpn", LOCK_POLICY_SOURCE, "192.0.2.7", T0 + 1),
                     0);
    assert_int_equal(lock_policy_locked_until(t, "ssh", LOCK_POLICY_HANDSHAKE, "192.0.2.7",
                                              T0 + 1),
                     0);
    /* The unlocked failure count starts over. */
    assert_int_equal(fail_at(t, "192.0.2.7", 1, T0 + 2).failures, 1);
    lock_policy_free(t);
}

static void test_source_tags_count_within_the_window(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    struct lock_policy_rules by_address = rules;
    by_address.min_tags = 2;
    struct lock_policy_verdict v;
    uint64_t alice = lock_policy_tag("alice"), bob = lock_policy_tag("bob");
    assert_int_equal(lock_policy_record_failure(t, &by_address, "vpn", LOCK_POLICY_SOURCE,
                                                "192.0.2.7", hash_of(1), bob, T0, &v),
                     0);
    /* Bob's failure has aged out: three of Alice's alone do not lock the address. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(lock_policy_record_failure(t, &by_address, "vpn", LOCK_POLICY_SOURCE,
                                                    "192.0.2.7", hash_of(2 + i), alice,
                                                    T0 + 15 * MINUTE + i, &v),
                         0);
        assert_false(v.locked_now);
    }
    assert_int_equal(v.failures, 3);
    /* Without min_tags, one identity is enough. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(lock_policy_record_failure(t, &rules, "vpn", LOCK_POLICY_SOURCE,
                                                    "192.0.2.8", hash_of(i), alice, T0 + i, &v),
                         0);
    assert_true(v.locked_now);
    assert_int_equal(lock_policy_tag(""), lock_policy_tag(""));
    assert_true(lock_policy_tag("") != 0);
    lock_policy_free(t);
}

static void test_full_table_refuses_new_keys(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    char key[32];
    /* Identities and users share half the table. */
    const int people = LOCK_POLICY_MAX_RECORDS / 2;
    for (int i = 0; i < people; i++) {
        snprintf(key, sizeof(key), "user%d", i);
        assert_true(fail_at(t, key, 1, T0).counted);
    }
    assert_int_equal(lock_policy_count(t), people);
    struct lock_policy_verdict v;
    assert_int_equal(lock_policy_record_failure(t, &rules, "vpn", LOCK_POLICY_IDENTITY, "newcomer",
                                                hash_of(1), 0, T0 + 1, &v),
                     -1);
    assert_false(v.counted);
    assert_false(v.locked_now);
    assert_int_equal(v.failures, 0);
    assert_int_equal(lock_policy_record_failure(t, &rules, "vpn", LOCK_POLICY_USER, "newcomer",
                                                hash_of(1), 0, T0 + 1, &v),
                     -1);
    uint64_t serial;
    int64_t until;
    assert_int_equal(lock_policy_reserve(t, &rules, "vpn", LOCK_POLICY_IDENTITY, "newcomer", 0,
                                         T0 + 1, &serial, &until),
                     LOCK_POLICY_NO_ROOM);
    assert_int_equal(serial, 0);
    /* Keys already in the table still count. */
    v = fail_at(t, "user0", 2, T0 + 2);
    assert_int_equal(v.failures, 2);
    /* Addresses have budgets of their own. */
    assert_int_equal(lock_policy_record_failure(t, &rules, "vpn", LOCK_POLICY_SOURCE, "192.0.2.7",
                                                NULL, 1, T0 + 2, &v),
                     0);
    assert_int_equal(lock_policy_record_failure(t, &rules, "vpn", LOCK_POLICY_HANDSHAKE,
                                                "192.0.2.7", NULL, 0, T0 + 2, &v),
                     0);
    /* Once pruned, there is room again. */
    lock_policy_prune(t, T0 + HOUR, 15 * MINUTE);
    assert_int_equal(lock_policy_count(t), 0);
    assert_true(fail_at(t, "newcomer", 1, T0 + HOUR).counted);
    lock_policy_free(t);
}

static void test_table_size_is_configurable(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    char key[32];
    /* 16 records: 8 for identities and users, 4 per address kind. */
    lock_policy_set_max_records(t, 16);
    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof(key), "user%d", i);
        assert_true(fail_at(t, key, 1, T0).counted);
    }
    struct lock_policy_verdict v;
    assert_int_equal(lock_policy_record_failure(t, &rules, "vpn", LOCK_POLICY_IDENTITY, "newcomer",
                                                hash_of(1), 0, T0 + 1, &v),
                     -1);
    /* 0 is the default size. */
    lock_policy_set_max_records(t, 0);
    assert_true(fail_at(t, "newcomer", 1, T0 + 1).counted);
    lock_policy_free(t);
}

static void test_reservations_hold_the_budget_of_running_attempts(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    /* Twenty attempts at once: max_failures (3) of them may run, the others wait. */
    uint64_t running[3];
    for (int i = 0; i < 3; i++)
        running[i] = reserve_at(t, "alice", T0);
    for (int i = 3; i < 20; i++) {
        uint64_t serial = 77;
        int64_t until = 77;
        assert_int_equal(lock_policy_reserve(t, &rules, "vpn", LOCK_POLICY_IDENTITY, "alice", 0,
                                             T0, &serial, &until),
                         LOCK_POLICY_BUSY);
        assert_int_equal(serial, 0);
        assert_int_equal(until, 0);
    }
    /* Two wrong codes settle; the third attempt's right code leaves them counted. */
    struct lock_policy_verdict v = settle_at(t, "alice", running[0], 1, T0 + 1);
    assert_true(v.counted);
    assert_int_equal(v.failures, 1);
    v = settle_at(t, "alice", running[1], 2, T0 + 1);
    assert_int_equal(v.failures, 2);
    assert_false(v.locked_now);
    assert_int_equal(lock_policy_record_success(t, "vpn", LOCK_POLICY_IDENTITY, "alice",
                                                running[2], T0 + 2),
                     1);
    v = fail_at(t, "alice", 3, T0 + 3);
    assert_true(v.locked_now);
    assert_int_equal(v.failures, 3);
    /* A locked key takes no reservation. */
    uint64_t serial;
    int64_t until;
    assert_int_equal(lock_policy_reserve(t, &rules, "vpn", LOCK_POLICY_IDENTITY, "alice", 0,
                                         T0 + 4, &serial, &until),
                     LOCK_POLICY_LOCKED);
    assert_int_equal(serial, 0);
    assert_int_equal(until, T0 + 3 + 10 * MINUTE);
    lock_policy_free(t);
}

static void test_success_lifts_nothing_a_concurrent_failure_imposed(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    fail_at(t, "alice", 1, T0);
    fail_at(t, "alice", 2, T0 + 1);
    uint64_t mine = reserve_at(t, "alice", T0 + 2);
    /* Another attempt's failure (one that held no reservation) locks while mine runs. */
    struct lock_policy_verdict v = fail_at(t, "alice", 3, T0 + 3);
    assert_true(v.locked_now);
    assert_int_equal(v.level, 1);
    /* My right code: the reservation goes, the lock and its level stay. */
    assert_int_equal(lock_policy_record_success(t, "vpn", LOCK_POLICY_IDENTITY, "alice", mine,
                                                T0 + 4),
                     1);
    assert_int_equal(lock_policy_locked_until(t, "vpn", LOCK_POLICY_IDENTITY, "alice", T0 + 4),
                     T0 + 3 + 10 * MINUTE);
    unsigned level;
    assert_int_equal(lock_again(t, T0 + 3 + 10 * MINUTE, &level), 20 * MINUTE);
    assert_int_equal(level, 2);

    /* An address: erin's attempt starts; carol's and dave's failures lock the address. */
    struct lock_policy_rules by_address = rules;
    by_address.min_tags = 2;
    uint64_t carol = lock_policy_tag("carol"), dave = lock_policy_tag("dave");
    assert_int_equal(lock_policy_record_failure(t, &by_address, "vpn", LOCK_POLICY_SOURCE,
                                                "192.0.2.7", hash_of(1), carol, T0, &v),
                     0);
    uint64_t erin = lock_policy_serial(t);
    assert_int_equal(lock_policy_record_failure(t, &by_address, "vpn", LOCK_POLICY_SOURCE,
                                                "192.0.2.7", hash_of(2), carol, T0 + 1, &v),
                     0);
    assert_int_equal(lock_policy_record_failure(t, &by_address, "vpn", LOCK_POLICY_SOURCE,
                                                "192.0.2.7", hash_of(3), dave, T0 + 2, &v),
                     0);
    assert_true(v.locked_now);
    lock_policy_record_success(t, "vpn", LOCK_POLICY_SOURCE, "192.0.2.7", erin, T0 + 3);
    assert_int_equal(lock_policy_locked_until(t, "vpn", LOCK_POLICY_SOURCE, "192.0.2.7", T0 + 3),
                     T0 + 2 + 10 * MINUTE);
    struct lock_policy_entry entry;
    memset(&entry, 0, sizeof(entry));
    for (size_t i = 0; i < lock_policy_count(t); i++) {
        lock_policy_get(t, i, &entry);
        if (entry.kind == LOCK_POLICY_SOURCE)
            break;
    }
    assert_int_equal(entry.kind, LOCK_POLICY_SOURCE);
    assert_int_equal(entry.level, 1);
    lock_policy_free(t);
}

static void test_success_clears_only_what_came_before_it(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    struct lock_policy_rules by_address = rules;
    by_address.min_tags = 2;
    struct lock_policy_verdict v;
    uint64_t carol = lock_policy_tag("carol"), dave = lock_policy_tag("dave");
    assert_int_equal(lock_policy_record_failure(t, &by_address, "vpn", LOCK_POLICY_SOURCE,
                                                "192.0.2.7", hash_of(1), carol, T0, &v),
                     0);
    uint64_t erin = lock_policy_serial(t);
    assert_int_equal(lock_policy_record_failure(t, &by_address, "vpn", LOCK_POLICY_SOURCE,
                                                "192.0.2.7", hash_of(2), dave, T0 + 1, &v),
                     0);
    /* Carol's failure came before erin's attempt started: cleared. Dave's stays. */
    assert_int_equal(lock_policy_record_success(t, "vpn", LOCK_POLICY_SOURCE, "192.0.2.7", erin,
                                                T0 + 2),
                     1);
    assert_int_equal(lock_policy_record_failure(t, &by_address, "vpn", LOCK_POLICY_SOURCE,
                                                "192.0.2.7", hash_of(3), carol, T0 + 3, &v),
                     0);
    assert_int_equal(v.failures, 2);
    assert_false(v.locked_now);
    assert_int_equal(lock_policy_record_failure(t, &by_address, "vpn", LOCK_POLICY_SOURCE,
                                                "192.0.2.7", hash_of(4), carol, T0 + 4, &v),
                     0);
    assert_true(v.locked_now);
    /* No serial, no success. */
    assert_int_equal(lock_policy_record_success(t, "vpn", LOCK_POLICY_SOURCE, "192.0.2.7", 0,
                                                T0 + 5),
                     0);
    assert_int_equal(lock_policy_record_success(t, "vpn", LOCK_POLICY_SOURCE, "192.0.2.8", erin,
                                                T0 + 5),
                     0);
    lock_policy_free(t);
}

static void test_release_drops_only_the_reservation(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    uint64_t serial = reserve_at(t, "alice", T0);
    fail_at(t, "alice", 1, T0 + 1);
    assert_int_equal(lock_policy_release(t, "vpn", LOCK_POLICY_IDENTITY, "alice", serial), 1);
    assert_int_equal(lock_policy_release(t, "vpn", LOCK_POLICY_IDENTITY, "alice", serial), 0);
    assert_int_equal(lock_policy_release(t, "vpn", LOCK_POLICY_IDENTITY, "bob", serial), 0);
    struct lock_policy_entry entry;
    lock_policy_get(t, 0, &entry);
    assert_int_equal(entry.count, 1);
    assert_int_equal(entry.times[0], T0 + 1);
    /* Settling a reservation that is gone counts a new failure. */
    struct lock_policy_verdict v = settle_at(t, "alice", serial, 2, T0 + 2);
    assert_true(v.counted);
    assert_int_equal(v.failures, 2);
    lock_policy_free(t);
}

static void test_reservations_are_kept_and_saved(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    uint64_t serial = reserve_at(t, "alice", T0);
    /* Saved as a failure at the attempt's start. */
    struct lock_policy_entry entry;
    lock_policy_get(t, 0, &entry);
    assert_int_equal(entry.count, 1);
    assert_int_equal(entry.times[0], T0);
    /* It never ages out, and an unlock leaves it to its attempt. */
    lock_policy_prune(t, T0 + 2 * HOUR, 15 * MINUTE);
    assert_int_equal(lock_policy_count(t), 1);
    assert_int_equal(lock_policy_unlock(t, "alice", T0 + 2 * HOUR), 0);
    lock_policy_get(t, 0, &entry);
    assert_int_equal(entry.count, 1);
    /* The attempt fails: the reservation is the failure, counted once. */
    struct lock_policy_verdict v = settle_at(t, "alice", serial, 1, T0 + 2 * HOUR);
    assert_true(v.counted);
    assert_int_equal(v.failures, 1);
    lock_policy_get(t, 0, &entry);
    assert_int_equal(entry.count, 1);
    assert_int_equal(entry.times[0], T0 + 2 * HOUR);
    /* After a restart it is a failure like the others. */
    struct lock_policy *copy = lock_policy_create();
    assert_int_equal(lock_policy_restore(copy, &entry), 0);
    assert_int_equal(fail_at(copy, "alice", 2, T0 + 2 * HOUR + 1).failures, 2);
    lock_policy_free(copy);
    lock_policy_free(t);
}

static void test_restored_failures_at_the_limit_let_one_attempt_in(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    /* Two failures and a running attempt's reservation, saved before a restart. */
    struct lock_policy_entry entry = { .tunnel = "vpn", .kind = LOCK_POLICY_IDENTITY,
                                       .key = "alice", .count = 3,
                                       .times = { T0, T0 + 1, T0 + 2 } };
    assert_int_equal(lock_policy_restore(t, &entry), 0);
    uint64_t serial = reserve_at(t, "alice", T0 + 10);
    struct lock_policy_verdict v = settle_at(t, "alice", serial, 9, T0 + 11);
    assert_true(v.locked_now);
    assert_int_equal(v.level, 1);
    lock_policy_free(t);
}

static void test_same_answer_counts_once_per_time_step(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    assert_true(fail_at(t, "alice", 7, T0).counted);
    assert_false(fail_at(t, "alice", 7, T0 + LOCK_POLICY_SAME_ANSWER_SECONDS - 1).counted);
    struct lock_policy_verdict v = fail_at(t, "alice", 7, T0 + LOCK_POLICY_SAME_ANSWER_SECONDS);
    assert_true(v.counted);
    assert_int_equal(v.failures, 2);
    /* A rotating set of four wrong codes reaches five failures. */
    struct lock_policy_rules five = { .window = 15 * MINUTE, .max_failures = 5,
                                      .lockout = 10 * MINUTE };
    int64_t when = T0;
    for (int round = 0; round < 2 && !v.locked_now; round++) {
        for (int code = 1; code <= 4 && !v.locked_now; code++) {
            assert_int_equal(lock_policy_record_failure(t, &five, "vpn", LOCK_POLICY_IDENTITY,
                                                        "bob", hash_of(code), 0, when, &v),
                             0);
            assert_true(v.counted);
            when += 10;
        }
    }
    assert_true(v.locked_now);
    assert_int_equal(v.failures, 5);
    lock_policy_free(t);
}

static void test_user_locks_need_two_identities(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    struct lock_policy_rules by_user = rules;
    by_user.min_tags = 2;
    struct lock_policy_verdict v;
    uint64_t laptop = lock_policy_tag("laptop"), phone = lock_policy_tag("phone");
    /* One certificate's failures lock that certificate, not its user. */
    for (int i = 0; i < 3; i++) {
        assert_int_equal(lock_policy_record_failure(t, &by_user, "vpn", LOCK_POLICY_USER, "bob",
                                                    hash_of(i), laptop, T0 + i, &v),
                         0);
        assert_false(v.locked_now);
    }
    assert_int_equal(lock_policy_record_failure(t, &by_user, "vpn", LOCK_POLICY_USER, "bob",
                                                hash_of(5), phone, T0 + 5, &v),
                     0);
    assert_true(v.locked_now);
    assert_int_equal(v.failures, 4);
    assert_int_equal(lock_policy_locked_until(t, "vpn", LOCK_POLICY_USER, "bob", T0 + 6),
                     T0 + 5 + 10 * MINUTE);
    assert_int_equal(lock_policy_locked_until(t, "vpn", LOCK_POLICY_IDENTITY, "bob", T0 + 6), 0);
    char list[256];
    assert_int_equal(lock_policy_list(t, T0 + 6, list, sizeof(list)), 1);
    assert_string_equal(list, "vpn user bob until 1700000605 (level 1)\n");
    assert_string_equal(lock_policy_kind_name(LOCK_POLICY_USER), "user");
    assert_int_equal(lock_policy_unlock(t, "bob", T0 + 7), 1);
    lock_policy_free(t);
}

static void test_address_records_make_room_oldest_first(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    lock_policy_set_max_records(t, 16);   /* 8 identities and users, 4 + 4 addresses */
    struct lock_policy_rules once_a_minute = { .window = HOUR, .max_failures = 20,
                                               .lockout = MINUTE };
    struct lock_policy_verdict v;
    char address[32];
    for (int i = 0; i < 8; i++) {
        snprintf(address, sizeof(address), "user%d", i);
        assert_true(fail_at(t, address, 1, T0).counted);
    }
    /* Forty addresses: every refused handshake is recorded, the oldest make room. */
    for (int i = 0; i < 40; i++) {
        snprintf(address, sizeof(address), "10.0.0.%d", i);
        assert_int_equal(lock_policy_record_failure(t, &once_a_minute, "vpn",
                                                    LOCK_POLICY_HANDSHAKE, address, NULL, 0,
                                                    T0 + i, &v),
                         0);
        assert_true(v.counted);
    }
    assert_int_equal(lock_policy_count(t), 8 + 4);
    assert_int_equal(lock_policy_record_failure(t, &once_a_minute, "vpn", LOCK_POLICY_HANDSHAKE,
                                                "10.0.0.39", NULL, 0, T0 + 41, &v),
                     0);
    assert_int_equal(v.failures, 2);
    assert_int_equal(lock_policy_record_failure(t, &once_a_minute, "vpn", LOCK_POLICY_HANDSHAKE,
                                                "10.0.0.0", NULL, 0, T0 + 42, &v),
                     0);
    assert_int_equal(v.failures, 1);
    /* The identities are all still there and count. */
    for (int i = 0; i < 8; i++) {
        snprintf(address, sizeof(address), "user%d", i);
        assert_int_equal(fail_at(t, address, 2, T0 + 50).failures, 2);
    }
    /* An address whose attempt is running is never dropped; when all are, no room. */
    struct lock_policy_rules by_address = rules;
    by_address.min_tags = 2;
    uint64_t serials[4], serial;
    int64_t until;
    for (int i = 0; i < 4; i++) {
        snprintf(address, sizeof(address), "192.0.2.%d", i);
        assert_int_equal(lock_policy_reserve(t, &by_address, "vpn", LOCK_POLICY_SOURCE, address,
                                             1, T0 + i, &serials[i], &until),
                         LOCK_POLICY_RESERVED);
    }
    assert_int_equal(lock_policy_reserve(t, &by_address, "vpn", LOCK_POLICY_SOURCE,
                                         "192.0.2.99", 1, T0 + 60, &serial, &until),
                     LOCK_POLICY_NO_ROOM);
    assert_int_equal(lock_policy_record_failure(t, &by_address, "vpn", LOCK_POLICY_SOURCE,
                                                "192.0.2.99", NULL, 1, T0 + 60, &v),
                     -1);
    /* 192.0.2.2's attempt fails: it holds no reservation any more and gives way. */
    assert_int_equal(lock_policy_settle_failure(t, &by_address, "vpn", LOCK_POLICY_SOURCE,
                                                "192.0.2.2", serials[2], NULL, 1, T0 + 61, &v),
                     0);
    assert_int_equal(lock_policy_record_failure(t, &by_address, "vpn", LOCK_POLICY_SOURCE,
                                                "192.0.2.99", NULL, 1, T0 + 62, &v),
                     0);
    assert_int_equal(lock_policy_release(t, "vpn", LOCK_POLICY_SOURCE, "192.0.2.2", serials[2]), 0);
    for (int i = 0; i < 4; i++) {
        snprintf(address, sizeof(address), "192.0.2.%d", i);
        assert_int_equal(lock_policy_release(t, "vpn", LOCK_POLICY_SOURCE, address, serials[i]),
                         i != 2);
    }
    lock_policy_free(t);
}

static void test_list_shows_the_locks_in_force(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    unsigned level;
    char list[256];
    assert_int_equal(lock_policy_list(t, T0, list, sizeof(list)), 0);
    assert_string_equal(list, "");
    lock_again(t, T0, &level);
    struct lock_policy_rules once = { .window = HOUR, .max_failures = 1, .lockout = HOUR };
    struct lock_policy_verdict v;
    assert_int_equal(lock_policy_record_failure(t, &once, "ssh", LOCK_POLICY_SOURCE, "192.0.2.7",
                                                NULL, 1, T0, &v),
                     0);
    fail_at(t, "bob", 1, T0);   /* failures without a lock are not listed */
    assert_int_equal(lock_policy_list(t, T0 + 3, list, sizeof(list)), 2);
    assert_string_equal(list, "vpn identity alice until 1700000602 (level 1)\n"
                              "ssh source 192.0.2.7 until 1700003600 (level 1)\n");
    /* An ended lock is not in force. */
    assert_int_equal(lock_policy_list(t, T0 + 2 + 10 * MINUTE, list, sizeof(list)), 1);
    assert_string_equal(list, "ssh source 192.0.2.7 until 1700003600 (level 1)\n");
    /* A short buffer is cut, terminated, and every lock is still counted. */
    char small[20];
    assert_int_equal(lock_policy_list(t, T0 + 3, small, sizeof(small)), 2);
    assert_int_equal(strlen(small), sizeof(small) - 1);
    assert_string_equal(lock_policy_kind_name(LOCK_POLICY_IDENTITY), "identity");
    assert_string_equal(lock_policy_kind_name(LOCK_POLICY_SOURCE), "source");
    assert_string_equal(lock_policy_kind_name(LOCK_POLICY_HANDSHAKE), "handshake");
    lock_policy_free(t);
}

static void test_prune_keeps_locks_and_young_failures(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    unsigned level;
    lock_again(t, T0, &level);
    fail_at(t, "bob", 1, T0);
    /* Alice is locked, Bob's failure is 10 minutes old: both stay. */
    lock_policy_prune(t, T0 + 10 * MINUTE, 15 * MINUTE);
    assert_int_equal(lock_policy_count(t), 2);
    assert_int_equal(fail_at(t, "bob", 2, T0 + 10 * MINUTE).failures, 2);
    assert_int_equal(lock_policy_locked_until(t, "vpn", LOCK_POLICY_IDENTITY, "alice",
                                              T0 + 10 * MINUTE),
                     T0 + 2 + 10 * MINUTE);
    lock_policy_free(t);
}

static void assert_entries_equal(const struct lock_policy_entry *a,
                                 const struct lock_policy_entry *b)
{
    assert_string_equal(a->tunnel, b->tunnel);
    assert_int_equal(a->kind, b->kind);
    assert_string_equal(a->key, b->key);
    assert_int_equal(a->level, b->level);
    assert_int_equal(a->locked_until, b->locked_until);
    assert_int_equal(a->last_lock_end, b->last_lock_end);
    assert_int_equal(a->count, b->count);
    for (unsigned i = 0; i < a->count; i++) {
        assert_int_equal(a->times[i], b->times[i]);
        assert_int_equal(a->tags[i], b->tags[i]);
    }
}

static void test_entries_carry_everything_but_the_answers(void **state)
{
    (void)state;
    struct lock_policy *t = lock_policy_create();
    unsigned level;
    lock_again(t, T0, &level);
    struct lock_policy_rules by_address = rules;
    by_address.min_tags = 2;
    struct lock_policy_verdict v;
    assert_int_equal(lock_policy_record_failure(t, &by_address, "vpn", LOCK_POLICY_SOURCE,
                                                "2001:db8::7", hash_of(1), 77, T0 + 5, &v),
                     0);
    assert_int_equal(lock_policy_record_failure(t, &by_address, "vpn", LOCK_POLICY_SOURCE,
                                                "2001:db8::7", hash_of(2), 78, T0 + 6, &v),
                     0);
    assert_int_equal(lock_policy_count(t), 2);
    struct lock_policy_entry alice, source;
    lock_policy_get(t, 0, &alice);
    lock_policy_get(t, 1, &source);
    assert_string_equal(alice.key, "alice");
    assert_int_equal(alice.level, 1);
    assert_int_equal(alice.locked_until, T0 + 2 + 10 * MINUTE);
    assert_int_equal(alice.last_lock_end, T0 + 2 + 10 * MINUTE);
    assert_int_equal(alice.count, 0);
    assert_int_equal(source.kind, LOCK_POLICY_SOURCE);
    assert_int_equal(source.count, 2);
    assert_int_equal(source.times[0], T0 + 5);
    assert_int_equal(source.tags[1], 78);

    struct lock_policy *copy = lock_policy_create();
    assert_int_equal(lock_policy_restore(copy, &alice), 0);
    assert_int_equal(lock_policy_restore(copy, &source), 0);
    struct lock_policy_entry again;
    lock_policy_get(copy, 0, &again);
    assert_entries_equal(&again, &alice);
    lock_policy_get(copy, 1, &again);
    assert_entries_equal(&again, &source);
    /* No answers came along: code 1 counts again in the copy, never in the original. */
    assert_int_equal(lock_policy_record_failure(copy, &by_address, "vpn", LOCK_POLICY_SOURCE,
                                                "2001:db8::7", hash_of(1), 77, T0 + 7, &v),
                     0);
    assert_true(v.counted);
    assert_int_equal(lock_policy_record_failure(t, &by_address, "vpn", LOCK_POLICY_SOURCE,
                                                "2001:db8::7", hash_of(1), 77, T0 + 7, &v),
                     0);
    assert_false(v.counted);
    /* Restored over a live record, the answers it held are gone too. */
    assert_int_equal(lock_policy_restore(t, &source), 0);
    assert_int_equal(lock_policy_record_failure(t, &by_address, "vpn", LOCK_POLICY_SOURCE,
                                                "2001:db8::7", hash_of(2), 78, T0 + 8, &v),
                     0);
    assert_true(v.counted);

    /* Restoring a key replaces its record; a count past the limit is refused. */
    alice.level = 5;
    assert_int_equal(lock_policy_restore(copy, &alice), 0);
    assert_int_equal(lock_policy_count(copy), 2);
    lock_policy_get(copy, 0, &again);
    assert_int_equal(again.level, 5);
    source.count = LIMIT_MAX_FAILURES + 1;
    assert_int_equal(lock_policy_restore(copy, &source), -1);
    /* Forgetting drops a record whatever it holds. */
    assert_int_equal(lock_policy_forget(copy, "vpn", LOCK_POLICY_IDENTITY, "alice"), 1);
    assert_int_equal(lock_policy_forget(copy, "vpn", LOCK_POLICY_IDENTITY, "alice"), 0);
    assert_int_equal(lock_policy_locked_until(copy, "vpn", LOCK_POLICY_IDENTITY, "alice", T0 + 10),
                     0);
    lock_policy_free(copy);
    lock_policy_free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_third_failure_locks_for_lockout),
        cmocka_unit_test(test_failures_outside_the_window_do_not_count),
        cmocka_unit_test(test_same_code_counts_once),
        cmocka_unit_test(test_locked_key_counts_nothing),
        cmocka_unit_test(test_repeat_locks_double_up_to_a_day),
        cmocka_unit_test(test_level_forgets_after_a_day_without_locks),
        cmocka_unit_test(test_success_resets_count_and_level),
        cmocka_unit_test(test_unlock_lifts_but_keeps_the_level),
        cmocka_unit_test(test_source_lock_needs_two_identities),
        cmocka_unit_test(test_policy_limits_are_clamped),
        cmocka_unit_test(test_prune_keeps_what_still_matters),
        cmocka_unit_test(test_a_failure_counts_until_it_is_a_window_old),
        cmocka_unit_test(test_same_answer_counts_once_per_key_and_window),
        cmocka_unit_test(test_a_lock_clears_the_count_and_the_answers),
        cmocka_unit_test(test_a_lock_never_lasts_more_than_a_day),
        cmocka_unit_test(test_level_kept_for_exactly_a_day),
        cmocka_unit_test(test_unlock_starts_the_day_of_memory),
        cmocka_unit_test(test_unlock_covers_every_tunnel_and_kind),
        cmocka_unit_test(test_source_tags_count_within_the_window),
        cmocka_unit_test(test_full_table_refuses_new_keys),
        cmocka_unit_test(test_table_size_is_configurable),
        cmocka_unit_test(test_reservations_hold_the_budget_of_running_attempts),
        cmocka_unit_test(test_success_lifts_nothing_a_concurrent_failure_imposed),
        cmocka_unit_test(test_success_clears_only_what_came_before_it),
        cmocka_unit_test(test_release_drops_only_the_reservation),
        cmocka_unit_test(test_reservations_are_kept_and_saved),
        cmocka_unit_test(test_restored_failures_at_the_limit_let_one_attempt_in),
        cmocka_unit_test(test_same_answer_counts_once_per_time_step),
        cmocka_unit_test(test_user_locks_need_two_identities),
        cmocka_unit_test(test_address_records_make_room_oldest_first),
        cmocka_unit_test(test_list_shows_the_locks_in_force),
        cmocka_unit_test(test_prune_keeps_locks_and_young_failures),
        cmocka_unit_test(test_entries_carry_everything_but_the_answers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
