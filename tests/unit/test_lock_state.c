/* lock_state: the lock table through its file and back (levels, locks, failure times
 * and tags, escaped keys), the exact file format, atomic replacement, and files that
 * are missing, foreign, unreadable or partly malformed. */
#include <dirent.h>
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
#include "helper/lock_state.h"

#define T0 1700000000
#define MINUTE 60
#define HOUR 3600

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

static int64_t lock_again(struct lock_policy *t, int64_t when, unsigned *level)
{
    struct lock_policy_verdict v;
    for (int i = 0; i < 3; i++)
        v = fail_at(t, "alice", i, when + i);
    assert_true(v.locked_now);
    *level = v.level;
    return v.locked_until - (when + 2);
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
    struct lock_policy *t = lock_policy_create();
    unsigned level;
    lock_again(t, T0, &level);                    /* alice locked, level 1 */
    struct lock_policy_verdict v;
    assert_int_equal(lock_policy_record_failure(t, &rules, "vpn", LOCK_POLICY_IDENTITY,
                                                "CN=Bob Builder, O=\"x\"%", hash_of(1), 0, T0 + 5,
                                                &v),
                     0);
    struct lock_policy_rules by_address = rules;
    by_address.min_tags = 2;
    assert_int_equal(lock_policy_record_failure(t, &by_address, "vpn", LOCK_POLICY_SOURCE,
                                                "2001:db8::7", hash_of(2), lock_policy_tag("bob"),
                                                T0 + 6, &v),
                     0);
    assert_int_equal(lock_state_save(t, state_path, err, sizeof(err)), 0);
    struct stat st;
    assert_int_equal(stat(state_path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);

    struct lock_policy *loaded = lock_policy_create();
    assert_int_equal(lock_state_load(loaded, state_path, err, sizeof(err)), 0);
    assert_int_equal(lock_policy_locked_until(loaded, "vpn", LOCK_POLICY_IDENTITY, "alice",
                                              T0 + 10),
                     T0 + 2 + 10 * MINUTE);
    /* The level came along: the next lock doubles. */
    assert_int_equal(lock_policy_unlock(loaded, "alice", T0 + 10), 1);
    assert_int_equal(lock_again(loaded, T0 + 20, &level), 20 * MINUTE);
    /* Failure counts and tags came along, names with blanks and quotes intact. */
    v = fail_at(loaded, "CN=Bob Builder, O=\"x\"%", 3, T0 + 30);
    assert_int_equal(v.failures, 2);
    assert_int_equal(lock_policy_record_failure(loaded, &by_address, "vpn", LOCK_POLICY_SOURCE,
                                                "2001:db8::7", hash_of(4), lock_policy_tag("bob"),
                                                T0 + 31, &v),
                     0);
    assert_int_equal(v.failures, 2);
    assert_false(v.locked_now);
    assert_int_equal(lock_policy_record_failure(loaded, &by_address, "vpn", LOCK_POLICY_SOURCE,
                                                "2001:db8::7", hash_of(5), lock_policy_tag("carol"),
                                                T0 + 32, &v),
                     0);
    assert_true(v.locked_now);
    char list[1024];
    assert_int_equal(lock_policy_list(loaded, T0 + 33, list, sizeof(list)), 2);
    assert_non_null(strstr(list, "vpn identity alice until"));
    assert_non_null(strstr(list, "vpn source 2001:db8::7 until"));
    lock_policy_free(loaded);
    lock_policy_free(t);
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
    struct lock_policy *t = lock_policy_create();
    assert_int_equal(lock_state_load(t, state_path, err, sizeof(err)), 0);   /* missing: empty */
    write_state("something else\n");
    assert_int_equal(lock_state_load(t, state_path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "is not a ktlstun lock state file"));
    write_state("# comment\nktlstun-lockout 1\n"
                "vpn identity alice 1 1700000600 1700000600 0\n"
                "vpn identity bad%zz 1 1 1 0\n"
                "vpn nonsense bob 1 1 1 0\n"
                "vpn identity carol 1 1 1 2 17\n"
                "vpn identity dave 1 1 1 1 -5\n"
                "vpn identity erin 1 1 1 1 1700000000:zz\n"
                "vpn identity frank 1 1 1 1 1700000000:0000000000000001\n");
    assert_int_equal(lock_state_load(t, state_path, err, sizeof(err)), 5);
    assert_non_null(strstr(err, "5 malformed line(s) skipped"));
    assert_int_equal(lock_policy_locked_until(t, "vpn", LOCK_POLICY_IDENTITY, "alice", 1700000000),
                     1700000600);
    assert_int_equal(lock_policy_unlock(t, "frank", 1700000000), 0);
    assert_int_equal(lock_policy_unlock(t, "dave", 0), -1);
    assert_int_equal(lock_state_save(t, "/nonexistent/dir/state", err, sizeof(err)), -1);
    assert_non_null(strstr(err, "/nonexistent/dir/state"));
    lock_policy_free(t);
    unlink(state_path);
}

static char *read_state(const char *path)
{
    static char content[4096];
    FILE *file = fopen(path, "r");
    assert_non_null(file);
    size_t got = fread(content, 1, sizeof(content) - 1, file);
    content[got] = '\0';
    fclose(file);
    return content;
}

static struct lock_policy_entry entry(const char *tunnel, enum lock_policy_kind kind,
                                      const char *key, unsigned level, int64_t locked_until,
                                      unsigned count)
{
    struct lock_policy_entry e;
    memset(&e, 0, sizeof(e));
    snprintf(e.tunnel, sizeof(e.tunnel), "%s", tunnel);
    e.kind = kind;
    snprintf(e.key, sizeof(e.key), "%s", key);
    e.level = level;
    e.locked_until = locked_until;
    e.last_lock_end = locked_until;
    e.count = count;
    for (unsigned i = 0; i < count; i++) {
        e.times[i] = T0 + 5 + i;
        e.tags[i] = i == 0 ? 1 : 0xfedcba9876543210ull;
    }
    return e;
}

static void test_state_file_format(void **state)
{
    (void)state;
    char err[512];
    temp_state_path();
    struct lock_policy *t = lock_policy_create();
    struct lock_policy_entry entries[] = {
        entry("vpn", LOCK_POLICY_IDENTITY, "alice", 2, 1700000600, 0),
        entry("vpn", LOCK_POLICY_SOURCE, "2001:db8::7", 0, 0, 2),
        entry("ssh", LOCK_POLICY_HANDSHAKE, "192.0.2.7", 1, 1700000700, 1),
        entry("vpn", LOCK_POLICY_IDENTITY, "CN=Bob Builder, O=\"x\"%", 0, 0, 0),
        entry("vpn", LOCK_POLICY_IDENTITY, "j\xc3\xb6rg", 0, 0, 0),
    };
    size_t count = sizeof(entries) / sizeof(entries[0]);
    for (size_t i = 0; i < count; i++)
        assert_int_equal(lock_policy_restore(t, &entries[i]), 0);
    assert_int_equal(lock_state_save(t, state_path, err, sizeof(err)), 0);
    assert_string_equal(read_state(state_path),
                        "# ktlstun second-factor lock state (written by ktlstund and `ktlstun "
                        "unlock`; do not edit while the daemon runs)\n"
                        "ktlstun-lockout 1\n"
                        "vpn identity alice 2 1700000600 1700000600 0\n"
                        "vpn source 2001:db8::7 0 0 0 2 1700000005:0000000000000001 "
                        "1700000006:fedcba9876543210\n"
                        "ssh handshake 192.0.2.7 1 1700000700 1700000700 1 "
                        "1700000005:0000000000000001\n"
                        "vpn identity CN=Bob%20Builder%2C%20O=%22x%22%25 0 0 0 0\n"
                        "vpn identity j%C3%B6rg 0 0 0 0\n");
    /* And every field comes back. */
    struct lock_policy *loaded = lock_policy_create();
    assert_int_equal(lock_state_load(loaded, state_path, err, sizeof(err)), 0);
    assert_int_equal(lock_policy_count(loaded), count);
    for (size_t i = 0; i < count; i++) {
        struct lock_policy_entry e;
        lock_policy_get(loaded, i, &e);
        assert_string_equal(e.tunnel, entries[i].tunnel);
        assert_int_equal(e.kind, entries[i].kind);
        assert_string_equal(e.key, entries[i].key);
        assert_int_equal(e.level, entries[i].level);
        assert_int_equal(e.locked_until, entries[i].locked_until);
        assert_int_equal(e.last_lock_end, entries[i].last_lock_end);
        assert_int_equal(e.count, entries[i].count);
        for (unsigned f = 0; f < e.count; f++) {
            assert_int_equal(e.times[f], entries[i].times[f]);
            assert_int_equal(e.tags[f], entries[i].tags[f]);
        }
    }
    lock_policy_free(loaded);
    lock_policy_free(t);
    unlink(state_path);
}

static void test_save_replaces_the_file_whole(void **state)
{
    (void)state;
    char err[512], dir[64], path[128];
    snprintf(dir, sizeof(dir), "/tmp/ktlstun-lock-state-test.XXXXXX");
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/lockout.state", dir);
    struct lock_policy *t = lock_policy_create();
    fail_at(t, "alice", 1, T0);
    assert_int_equal(lock_state_save(t, path, err, sizeof(err)), 0);
    assert_non_null(strstr(read_state(path), "vpn identity alice 0 0 0 1 1700000000:"));
    assert_int_equal(lock_policy_unlock(t, "alice", T0 + 1), 0);
    assert_int_equal(lock_state_save(t, path, err, sizeof(err)), 0);
    assert_non_null(strstr(read_state(path), "vpn identity alice 0 0 0 0\n"));
    assert_null(strstr(read_state(path), "1700000000:"));
    /* Only the file itself is left in the directory: no temporary survives. */
    DIR *listing = opendir(dir);
    assert_non_null(listing);
    unsigned files = 0;
    for (struct dirent *d = readdir(listing); d != NULL; d = readdir(listing)) {
        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
            continue;
        assert_string_equal(d->d_name, "lockout.state");
        files++;
    }
    closedir(listing);
    assert_int_equal(files, 1);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    lock_policy_free(t);
    unlink(path);
    rmdir(dir);
}

static void test_load_adds_to_the_table(void **state)
{
    (void)state;
    char err[512];
    temp_state_path();
    struct lock_policy *t = lock_policy_create();
    fail_at(t, "bob", 1, T0);
    fail_at(t, "alice", 1, T0);
    write_state("ktlstun-lockout 1\n"
                "vpn identity alice 3 1700000600 1700000600 0\n"
                "vpn identity carol 0 0 0 1 1700000001\n");
    assert_int_equal(lock_state_load(t, state_path, err, sizeof(err)), 0);
    assert_int_equal(lock_policy_count(t), 3);
    /* Bob stays; the file's line for Alice replaces her record; Carol is added, with a
     * failure whose tag was left out. */
    assert_int_equal(fail_at(t, "bob", 2, T0 + 1).failures, 2);
    assert_int_equal(lock_policy_locked_until(t, "vpn", LOCK_POLICY_IDENTITY, "alice", T0),
                     1700000600);
    struct lock_policy_entry carol;
    lock_policy_get(t, 2, &carol);
    assert_string_equal(carol.key, "carol");
    assert_int_equal(carol.count, 1);
    assert_int_equal(carol.times[0], 1700000001);
    assert_int_equal(carol.tags[0], 0);
    lock_policy_free(t);
    unlink(state_path);
}

static void test_unreadable_state_file(void **state)
{
    (void)state;
    char err[512], dir[64];
    snprintf(dir, sizeof(dir), "/tmp/ktlstun-lock-state-test.XXXXXX");
    assert_non_null(mkdtemp(dir));
    struct lock_policy *t = lock_policy_create();
    /* A directory opens, but cannot be read. */
    assert_int_equal(lock_state_load(t, dir, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot read"));
    assert_non_null(strstr(err, dir));
    lock_policy_free(t);
    rmdir(dir);
}

static void test_malformed_lines_leave_nothing_half_read(void **state)
{
    (void)state;
    char err[512];
    temp_state_path();
    struct lock_policy *t = lock_policy_create();
    write_state("ktlstun-lockout 1\n"
                "vpn identity alice 1 1700000600 1700000600 0\n"
                "vpn identity alice 1 1700000600 1700000600 1 1700000000:zz\n"
                "vpn identity nul%00byte 0 0 0 0\n"
                "vpn identity deep 65 0 0 0\n"
                "vpn identity bob 0 0 0 51\n"
                "toolongtunnelnametoolongtunnelnametoolongtunnelnametoolongtunnelname "
                "identity eve 0 0 0 0\n");
    assert_int_equal(lock_state_load(t, state_path, err, sizeof(err)), 5);
    assert_non_null(strstr(err, "5 malformed line(s) skipped"));
    /* A bad failure field takes the earlier line of the same key with it. */
    assert_int_equal(lock_policy_count(t), 0);
    lock_policy_free(t);
    unlink(state_path);
}

/* A line whose first word starts with '#' is a comment, indented or not: read as a
 * record, its tunnel "#..." would be saved as a comment and lost. */
static void test_indented_comments(void **state)
{
    (void)state;
    char err[512] = "";
    temp_state_path();
    struct lock_policy *t = lock_policy_create();
    write_state("  # indented, before the first line that counts\n"
                "ktlstun-lockout 1\n"
                "\t# indented\n"
                " #vpn identity alice 1 1700000600 1700000600 0\n"
                "vpn identity bob 1 1700000600 1700000600 0\n");
    assert_int_equal(lock_state_load(t, state_path, err, sizeof(err)), 0);
    assert_int_equal(lock_policy_count(t), 1);
    struct lock_policy_entry bob;
    lock_policy_get(t, 0, &bob);
    assert_string_equal(bob.key, "bob");
    lock_policy_free(t);
    unlink(state_path);
}

static void test_lines_past_a_full_table_are_skipped(void **state)
{
    (void)state;
    char err[512];
    temp_state_path();
    FILE *file = fopen(state_path, "w");
    assert_non_null(file);
    fputs("ktlstun-lockout 1\n", file);
    for (int i = 0; i <= LOCK_POLICY_MAX_RECORDS; i++)
        fprintf(file, "vpn identity user%d 1 1700000600 1700000600 0\n", i);
    fclose(file);
    struct lock_policy *t = lock_policy_create();
    assert_int_equal(lock_state_load(t, state_path, err, sizeof(err)), 1);
    assert_int_equal(lock_policy_count(t), LOCK_POLICY_MAX_RECORDS);
    lock_policy_free(t);
    unlink(state_path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_state_survives_a_round_trip),
        cmocka_unit_test(test_state_file_problems),
        cmocka_unit_test(test_state_file_format),
        cmocka_unit_test(test_save_replaces_the_file_whole),
        cmocka_unit_test(test_load_adds_to_the_table),
        cmocka_unit_test(test_unreadable_state_file),
        cmocka_unit_test(test_malformed_lines_leave_nothing_half_read),
        cmocka_unit_test(test_lines_past_a_full_table_are_skipped),
        cmocka_unit_test(test_indented_comments),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
