/* lockout: counting in the window, the same code once, locks that double up to 24 h,
 * success, unlock, address locks that need two identities, and the state file. */
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

#include "helper/lockout.h"

#define T0 1700000000
#define MINUTE 60
#define HOUR 3600

static const struct lockout_policy policy = { .window = 15 * MINUTE, .max_failures = 3,
                                              .lockout = 10 * MINUTE };

/* A distinct answer hash per CODE. */
static const unsigned char *hash_of(int code)
{
    static unsigned char hashes[16][LOCKOUT_HASH_LEN];
    unsigned char *h = hashes[code % 16];
    memset(h, 0, LOCKOUT_HASH_LEN);
    memcpy(h, &code, sizeof(code));
    return h;
}

static struct lockout_verdict fail_at(struct lockout *t, const char *key, int code, int64_t when)
{
    struct lockout_verdict v;
    assert_int_equal(lockout_record_failure(t, &policy, "vpn", LOCKOUT_IDENTITY, key,
                                            code < 0 ? NULL : hash_of(code), 0, when, &v),
                     0);
    return v;
}

static void test_third_failure_locks_for_lockout(void **state)
{
    (void)state;
    struct lockout *t = lockout_create();
    struct lockout_verdict v = fail_at(t, "alice", 1, T0);
    assert_true(v.counted);
    assert_int_equal(v.failures, 1);
    assert_false(v.locked_now);
    v = fail_at(t, "alice", 2, T0 + 10);
    assert_int_equal(v.failures, 2);
    assert_int_equal(lockout_locked_until(t, "vpn", LOCKOUT_IDENTITY, "alice", T0 + 10), 0);
    v = fail_at(t, "alice", 3, T0 + 20);
    assert_true(v.locked_now);
    assert_int_equal(v.failures, 3);
    assert_int_equal(v.level, 1);
    assert_int_equal(v.locked_until, T0 + 20 + 10 * MINUTE);
    assert_int_equal(lockout_locked_until(t, "vpn", LOCKOUT_IDENTITY, "alice", T0 + 21),
                     T0 + 20 + 10 * MINUTE);
    /* Another identity, another tunnel, another kind: untouched. */
    assert_int_equal(lockout_locked_until(t, "vpn", LOCKOUT_IDENTITY, "bob", T0 + 21), 0);
    assert_int_equal(lockout_locked_until(t, "other", LOCKOUT_IDENTITY, "alice", T0 + 21), 0);
    assert_int_equal(lockout_locked_until(t, "vpn", LOCKOUT_SOURCE, "alice", T0 + 21), 0);
    /* It ends on time. */
    assert_int_equal(lockout_locked_until(t, "vpn", LOCKOUT_IDENTITY, "alice", T0 + 20 + 10 * MINUTE), 0);
    lockout_free(t);
}

static void test_failures_outside_the_window_do_not_count(void **state)
{
    (void)state;
    struct lockout *t = lockout_create();
    fail_at(t, "alice", 1, T0);
    fail_at(t, "alice", 2, T0 + 5 * MINUTE);
    /* The first has aged out when the third comes. */
    struct lockout_verdict v = fail_at(t, "alice", 3, T0 + 15 * MINUTE);
    assert_false(v.locked_now);
    assert_int_equal(v.failures, 2);
    v = fail_at(t, "alice", 4, T0 + 16 * MINUTE);
    assert_true(v.locked_now);
    lockout_free(t);
}

static void test_same_code_counts_once(void **state)
{
    (void)state;
    struct lockout *t = lockout_create();
    assert_true(fail_at(t, "alice", 7, T0).counted);
    struct lockout_verdict v = fail_at(t, "alice", 7, T0 + 1);
    assert_false(v.counted);
    assert_int_equal(v.failures, 1);
    v = fail_at(t, "alice", 7, T0 + 2);
    assert_false(v.locked_now);
    /* Failures with no answers (none given) always count. */
    assert_true(fail_at(t, "alice", -1, T0 + 3).counted);
    v = fail_at(t, "alice", -1, T0 + 4);
    assert_true(v.locked_now);
    /* After the window the same code counts again. */
    struct lockout *u = lockout_create();
    fail_at(u, "bob", 7, T0);
    assert_true(fail_at(u, "bob", 7, T0 + 16 * MINUTE).counted);
    lockout_free(u);
    lockout_free(t);
}

static void test_locked_key_counts_nothing(void **state)
{
    (void)state;
    struct lockout *t = lockout_create();
    for (int i = 0; i < 3; i++)
        fail_at(t, "alice", i, T0 + i);
    struct lockout_verdict v = fail_at(t, "alice", 9, T0 + 60);
    assert_false(v.counted);
    assert_false(v.locked_now);
    assert_int_equal(v.locked_until, T0 + 2 + 10 * MINUTE);
    lockout_free(t);
}

static int64_t lock_again(struct lockout *t, int64_t when, unsigned *level)
{
    struct lockout_verdict v;
    for (int i = 0; i < 3; i++)
        v = fail_at(t, "alice", i, when + i);
    assert_true(v.locked_now);
    *level = v.level;
    return v.locked_until - (when + 2);
}

static void test_repeat_locks_double_up_to_a_day(void **state)
{
    (void)state;
    struct lockout *t = lockout_create();
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
    lockout_free(t);
}

static void test_level_forgets_after_a_day_without_locks(void **state)
{
    (void)state;
    struct lockout *t = lockout_create();
    unsigned level;
    int64_t first = lock_again(t, T0, &level);
    int64_t end = T0 + 2 + first;
    assert_int_equal(lock_again(t, end + HOUR, &level), 20 * MINUTE);
    end = end + HOUR + 2 + 20 * MINUTE;
    assert_int_equal(lock_again(t, end + 24 * HOUR + 1, &level), 10 * MINUTE);
    assert_int_equal(level, 1);
    lockout_free(t);
}

static void test_success_resets_count_and_level(void **state)
{
    (void)state;
    struct lockout *t = lockout_create();
    unsigned level;
    int64_t length = lock_again(t, T0, &level);
    int64_t when = T0 + 2 + length;
    fail_at(t, "alice", 1, when);
    fail_at(t, "alice", 2, when + 1);
    assert_int_equal(lockout_record_success(t, "vpn", LOCKOUT_IDENTITY, "alice"), 1);
    assert_int_equal(lockout_record_success(t, "vpn", LOCKOUT_IDENTITY, "alice"), 0);
    /* Two more failures no longer lock; and the next lock is a first one again. */
    assert_false(fail_at(t, "alice", 3, when + 2).locked_now);
    assert_false(fail_at(t, "alice", 4, when + 3).locked_now);
    struct lockout_verdict v = fail_at(t, "alice", 5, when + 4);
    assert_true(v.locked_now);
    assert_int_equal(v.level, 1);
    lockout_free(t);
}

static void test_unlock_lifts_but_keeps_the_level(void **state)
{
    (void)state;
    struct lockout *t = lockout_create();
    unsigned level;
    lock_again(t, T0, &level);
    assert_int_equal(lockout_unlock(t, "nobody", T0 + 10), -1);
    assert_int_equal(lockout_unlock(t, "alice", T0 + 10), 1);
    assert_int_equal(lockout_locked_until(t, "vpn", LOCKOUT_IDENTITY, "alice", T0 + 10), 0);
    assert_int_equal(lockout_unlock(t, "alice", T0 + 11), 0);
    /* The attacker who resumes meets a doubled lock. */
    assert_int_equal(lock_again(t, T0 + 20, &level), 20 * MINUTE);
    assert_int_equal(level, 2);
    lockout_free(t);
}

static void test_source_lock_needs_two_identities(void **state)
{
    (void)state;
    struct lockout *t = lockout_create();
    struct lockout_policy by_address = policy;
    by_address.min_tags = 2;
    struct lockout_verdict v;
    uint64_t alice = lockout_tag("alice"), bob = lockout_tag("bob");
    assert_true(alice != bob && alice != 0);
    for (int i = 0; i < 5; i++) {
        assert_int_equal(lockout_record_failure(t, &by_address, "vpn", LOCKOUT_SOURCE, "192.0.2.7",
                                                hash_of(i), alice, T0 + i, &v),
                         0);
        assert_false(v.locked_now);
    }
    assert_int_equal(lockout_record_failure(t, &by_address, "vpn", LOCKOUT_SOURCE, "192.0.2.7",
                                            hash_of(9), bob, T0 + 9, &v),
                     0);
    assert_true(v.locked_now);
    assert_int_equal(lockout_locked_until(t, "vpn", LOCKOUT_SOURCE, "192.0.2.7", T0 + 10),
                     T0 + 9 + 10 * MINUTE);
    lockout_free(t);
}

static void test_policy_limits_are_clamped(void **state)
{
    (void)state;
    struct lockout *t = lockout_create();
    struct lockout_policy zero = { .window = MINUTE, .max_failures = 0, .lockout = MINUTE };
    struct lockout_verdict v;
    assert_int_equal(lockout_record_failure(t, &zero, "vpn", LOCKOUT_IDENTITY, "x", NULL, 0, T0, &v), 0);
    assert_true(v.locked_now);
    struct lockout_policy huge = { .window = HOUR, .max_failures = 1000, .lockout = MINUTE };
    for (int i = 0; i < LOCKOUT_MAX_FAILURES_LIMIT; i++)
        assert_int_equal(lockout_record_failure(t, &huge, "vpn", LOCKOUT_IDENTITY, "y", NULL, 0,
                                                T0 + i, &v),
                         0);
    assert_true(v.locked_now);
    /* Keys and tunnels too long for the state file are refused, not cut. */
    char long_key[LOCKOUT_KEY_MAX + 2];
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    assert_int_equal(lockout_record_failure(t, &policy, "vpn", LOCKOUT_IDENTITY, long_key, NULL, 0,
                                            T0, &v),
                     -1);
    lockout_free(t);
}

static char state_path[128];

static void temp_state_path(void)
{
    snprintf(state_path, sizeof(state_path), "/tmp/ktlstun-lockout-test.XXXXXX");
    int fd = mkstemp(state_path);
    assert_true(fd >= 0);
    close(fd);
    unlink(state_path);
}

static void test_state_survives_a_round_trip(void **state)
{
    (void)state;
    char err[512];
    temp_state_path();
    struct lockout *t = lockout_create();
    unsigned level;
    lock_again(t, T0, &level);                    /* alice locked, level 1 */
    struct lockout_verdict v;
    assert_int_equal(lockout_record_failure(t, &policy, "vpn", LOCKOUT_IDENTITY, "CN=Bob Builder, O=\"x\"%",
                                            hash_of(1), 0, T0 + 5, &v),
                     0);
    struct lockout_policy by_address = policy;
    by_address.min_tags = 2;
    assert_int_equal(lockout_record_failure(t, &by_address, "vpn", LOCKOUT_SOURCE, "2001:db8::7",
                                            hash_of(2), lockout_tag("bob"), T0 + 6, &v),
                     0);
    assert_int_equal(lockout_save(t, state_path, err, sizeof(err)), 0);
    struct stat st;
    assert_int_equal(stat(state_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    struct lockout *loaded = lockout_create();
    assert_int_equal(lockout_load(loaded, state_path, err, sizeof(err)), 0);
    assert_int_equal(lockout_locked_until(loaded, "vpn", LOCKOUT_IDENTITY, "alice", T0 + 10),
                     T0 + 2 + 10 * MINUTE);
    /* The level came along: the next lock doubles. */
    assert_int_equal(lockout_unlock(loaded, "alice", T0 + 10), 1);
    assert_int_equal(lock_again(loaded, T0 + 20, &level), 20 * MINUTE);
    /* Failure counts and tags came along, names with blanks and quotes intact. */
    v = fail_at(loaded, "CN=Bob Builder, O=\"x\"%", 3, T0 + 30);
    assert_int_equal(v.failures, 2);
    assert_int_equal(lockout_record_failure(loaded, &by_address, "vpn", LOCKOUT_SOURCE, "2001:db8::7",
                                            hash_of(4), lockout_tag("bob"), T0 + 31, &v),
                     0);
    assert_int_equal(v.failures, 2);
    assert_false(v.locked_now);
    assert_int_equal(lockout_record_failure(loaded, &by_address, "vpn", LOCKOUT_SOURCE, "2001:db8::7",
                                            hash_of(5), lockout_tag("carol"), T0 + 32, &v),
                     0);
    assert_true(v.locked_now);
    char list[1024];
    assert_int_equal(lockout_list(loaded, T0 + 33, list, sizeof(list)), 2);
    assert_non_null(strstr(list, "vpn identity alice until"));
    assert_non_null(strstr(list, "vpn source 2001:db8::7 until"));
    lockout_free(loaded);
    lockout_free(t);
    unlink(state_path);
}

static void write_state(const char *content)
{
    FILE *file = fopen(state_path, "w");
    assert_non_null(file);
    fputs(content, file);
    fclose(file);
}

static void test_state_file_problems(void **state)
{
    (void)state;
    char err[512];
    temp_state_path();
    struct lockout *t = lockout_create();
    assert_int_equal(lockout_load(t, state_path, err, sizeof(err)), 0);   /* missing: empty */
    write_state("something else\n");
    assert_int_equal(lockout_load(t, state_path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "is not a ktlstun lock state file"));
    write_state("# comment\nktlstun-lockout 1\n"
                "vpn identity alice 1 1700000600 1700000600 0\n"
                "vpn identity bad%zz 1 1 1 0\n"
                "vpn nonsense bob 1 1 1 0\n"
                "vpn identity carol 1 1 1 2 17\n"
                "vpn identity dave 1 1 1 1 -5\n"
                "vpn identity erin 1 1 1 1 1700000000:zz\n"
                "vpn identity frank 1 1 1 1 1700000000:0000000000000001\n");
    assert_int_equal(lockout_load(t, state_path, err, sizeof(err)), 5);
    assert_non_null(strstr(err, "5 malformed line(s) skipped"));
    assert_int_equal(lockout_locked_until(t, "vpn", LOCKOUT_IDENTITY, "alice", 1700000000), 1700000600);
    assert_int_equal(lockout_unlock(t, "frank", 1700000000), 0);
    assert_int_equal(lockout_unlock(t, "dave", 0), -1);
    assert_int_equal(lockout_save(t, "/nonexistent/dir/state", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/nonexistent/dir/state"));
    lockout_free(t);
    unlink(state_path);
}

static void test_prune_keeps_what_still_matters(void **state)
{
    (void)state;
    struct lockout *t = lockout_create();
    unsigned level;
    lock_again(t, T0, &level);                      /* alice: lock then level */
    fail_at(t, "bob", 1, T0);                        /* bob: one failure */
    lockout_prune(t, T0 + 20 * MINUTE, 15 * MINUTE); /* bob's failure aged out */
    char list[256];
    assert_int_equal(lockout_unlock(t, "bob", T0), -1);
    assert_int_equal(lockout_list(t, T0 + 5, list, sizeof(list)), 1);
    lockout_prune(t, T0 + 12 * HOUR, 15 * MINUTE);   /* alice's level still counts */
    assert_int_equal(lockout_unlock(t, "alice", T0 + 12 * HOUR), 0);
    lockout_prune(t, T0 + 12 * HOUR + 25 * HOUR, 15 * MINUTE);
    assert_int_equal(lockout_unlock(t, "alice", T0), -1);
    lockout_free(t);
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
        cmocka_unit_test(test_state_survives_a_round_trip),
        cmocka_unit_test(test_state_file_problems),
        cmocka_unit_test(test_prune_keeps_what_still_matters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
