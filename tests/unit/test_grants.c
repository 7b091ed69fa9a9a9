/* grants: the shared table of second-factor logins, as the helper writes it and the
 * workers read it (across fork, too). */
#include <stdarg.h>
#include <stddef.h>
#include <errno.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "proto/grants.h"

#define ALICE "3c6ecc03431219f870605e918df2b6f3631253653fffb05a8f6eea4bc3060789"
#define BOB "528ae869afaccdae143a070e3cfc549f5cef484f182f0a4c382987e06951b723"

static void test_put_check_expire(void **state)
{
    (void)state;
    struct grants *g = grants_create();
    assert_non_null(g);
    uint64_t expires = 0;
    assert_false(grants_check(g, "vpn", ALICE, NULL, 1000, NULL));
    assert_int_equal(grants_put(g, "vpn", ALICE, "alice", "192.0.2.7", 5000, 1000), 0);
    assert_true(grants_check(g, "vpn", ALICE, NULL, 1000, &expires));
    assert_int_equal(expires, 5000);
    assert_true(grants_check(g, "vpn", ALICE, NULL, 4999, NULL));
    assert_false(grants_check(g, "vpn", ALICE, NULL, 5000, NULL));
    /* Per tunnel and per certificate. */
    assert_false(grants_check(g, "other", ALICE, NULL, 1000, NULL));
    assert_false(grants_check(g, "vpn", BOB, NULL, 1000, NULL));
    assert_false(grants_check(g, "vpn", "short", NULL, 1000, NULL));
    grants_free(g);
}

static void test_bound_to_the_source(void **state)
{
    (void)state;
    struct grants *g = grants_create();
    grants_put(g, "vpn", ALICE, "alice", "192.0.2.7", 5000, 1000);
    assert_true(grants_check(g, "vpn", ALICE, "192.0.2.7", 2000, NULL));
    assert_false(grants_check(g, "vpn", ALICE, "192.0.2.8", 2000, NULL));
    /* A new login replaces the old grant: one per certificate and tunnel. */
    grants_put(g, "vpn", ALICE, "alice", "192.0.2.8", 9000, 2000);
    assert_false(grants_check(g, "vpn", ALICE, "192.0.2.7", 2000, NULL));
    assert_true(grants_check(g, "vpn", ALICE, "192.0.2.8", 8000, NULL));
    grants_free(g);
}

static void test_revoke_identity(void **state)
{
    (void)state;
    struct grants *g = grants_create();
    grants_put(g, "vpn", ALICE, "alice", "192.0.2.7", 5000, 1000);
    grants_put(g, "other", ALICE, "alice", "192.0.2.7", 5000, 1000);
    grants_put(g, "vpn", BOB, "bob", "192.0.2.9", 5000, 1000);
    assert_int_equal(grants_revoke_identity(g, "vpn", "alice", 2000), 1);
    assert_false(grants_check(g, "vpn", ALICE, NULL, 2000, NULL));
    assert_true(grants_check(g, "other", ALICE, NULL, 2000, NULL));
    assert_true(grants_check(g, "vpn", BOB, NULL, 2000, NULL));
    assert_int_equal(grants_revoke_identity(g, NULL, "alice", 2000), 1);
    assert_false(grants_check(g, "other", ALICE, NULL, 2000, NULL));
    assert_int_equal(grants_revoke_identity(g, NULL, "alice", 2000), 0);
    grants_free(g);
}

/* An administrator's revocation: by fingerprint or identity, per tunnel or all; the
 * workers can tell it from an end until a new login takes the slot. */
static void test_withdraw_by_admin(void **state)
{
    (void)state;
    struct grants *g = grants_create();
    grants_put(g, "vpn", ALICE, "alice", "192.0.2.7", 5000, 1000);
    grants_put(g, "other", ALICE, "alice", "192.0.2.7", 5000, 1000);
    grants_put(g, "vpn", BOB, "alice", "192.0.2.9", 5000, 1000);
    uint64_t seen = grants_withdrawals(g);
    assert_int_equal(grants_withdraw(g, "vpn", "ignored", ALICE, 1, 2000), 1);
    assert_true(grants_withdrawals(g) != seen);
    assert_false(grants_check(g, "vpn", ALICE, NULL, 2000, NULL));
    assert_true(grants_revoked_by_admin(g, "vpn", ALICE));
    assert_false(grants_revoked_by_admin(g, "other", ALICE));
    assert_true(grants_check(g, "other", ALICE, NULL, 2000, NULL));
    assert_true(grants_check(g, "vpn", BOB, NULL, 2000, NULL));   /* same name, other cert */
    /* A revoked slot holds no grant: it is not listed, and counts no more. */
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    grants_describe(g, 2000, out);
    fclose(out);
    unsigned lines = 0;
    for (const char *at = text; (at = strchr(at, '\n')) != NULL; at++)
        lines++;
    assert_int_equal(lines, 2);
    free(text);
    assert_int_equal(grants_withdraw(g, NULL, "alice", NULL, 1, 2000), 2);
    assert_false(grants_check(g, "other", ALICE, NULL, 2000, NULL));
    assert_false(grants_check(g, "vpn", BOB, NULL, 2000, NULL));
    assert_int_equal(grants_withdraw(g, NULL, "alice", NULL, 1, 2000), 0);
    /* A new login replaces the revocation. */
    grants_put(g, "vpn", ALICE, "alice", "192.0.2.7", 9000, 3000);
    assert_true(grants_check(g, "vpn", ALICE, NULL, 3000, NULL));
    assert_false(grants_revoked_by_admin(g, "vpn", ALICE));
    /* A lock's withdrawal is no revocation. */
    grants_revoke_identity(g, "vpn", "alice", 3000);
    assert_false(grants_revoked_by_admin(g, "vpn", ALICE));
    grants_free(g);
}

static void test_arguments_too_long_are_refused(void **state)
{
    (void)state;
    struct grants *g = grants_create();
    char long_name[400];
    memset(long_name, 'x', sizeof(long_name) - 1);
    long_name[sizeof(long_name) - 1] = '\0';
    assert_int_equal(grants_put(g, long_name, ALICE, "alice", "192.0.2.7", 5000, 1000), -1);
    assert_int_equal(grants_put(g, "vpn", ALICE, long_name, "192.0.2.7", 5000, 1000), -1);
    assert_int_equal(grants_put(g, "vpn", ALICE, "alice", long_name, 5000, 1000), -1);
    assert_int_equal(grants_put(g, "vpn", "abc", "alice", "192.0.2.7", 5000, 1000), -1);
    grants_free(g);
}

static void fingerprint(unsigned n, char out[65])
{
    snprintf(out, 65, "%016x%048x", n + 1, 0);
}

static void test_full_table_gives_way_to_the_soonest_expiry(void **state)
{
    (void)state;
    struct grants *g = grants_create();
    char fp[65];
    for (unsigned i = 0; i < GRANTS_CAPACITY; i++) {
        fingerprint(i, fp);
        assert_int_equal(grants_put(g, "vpn", fp, "u", "192.0.2.1", 10000 + i, 1000), 0);
    }
    fingerprint(GRANTS_CAPACITY, fp);
    assert_int_equal(grants_put(g, "vpn", fp, "u", "192.0.2.1", 99999, 1000), 0);
    assert_true(grants_check(g, "vpn", fp, NULL, 2000, NULL));
    fingerprint(0, fp);
    assert_false(grants_check(g, "vpn", fp, NULL, 2000, NULL));   /* expired first: evicted */
    fingerprint(1, fp);
    assert_true(grants_check(g, "vpn", fp, NULL, 2000, NULL));
    grants_free(g);
}

/* Workers keep a connection's grant until grants_withdrawals moves: it must move on
 * every write that can end a live grant early, and only then. */
static void test_withdrawals_count_what_ends_a_grant_early(void **state)
{
    (void)state;
    struct grants *g = grants_create();
    assert_non_null(g);
    uint64_t seen = grants_withdrawals(g);
    grants_put(g, "vpn", ALICE, "alice", "192.0.2.7", 5000, 1000);
    grants_put(g, "vpn", BOB, "bob", "192.0.2.9", 5000, 1000);
    assert_int_equal(grants_withdrawals(g), seen);                 /* new grants */
    grants_put(g, "vpn", ALICE, "alice", "192.0.2.7", 8000, 2000);
    assert_int_equal(grants_withdrawals(g), seen);                 /* renewed, same address */
    grants_put(g, "vpn", ALICE, "alice", "192.0.2.7", 6000, 2000);
    assert_int_equal(grants_withdrawals(g), seen + 1);             /* shortened */
    grants_put(g, "vpn", ALICE, "alice", "192.0.2.8", 9000, 2000);
    assert_int_equal(grants_withdrawals(g), seen + 2);             /* moved to another address */
    grants_put(g, "vpn", BOB, "bob", "192.0.2.7", 9000, 6000);
    assert_int_equal(grants_withdrawals(g), seen + 2);             /* the old one had expired */
    assert_int_equal(grants_revoke_identity(g, "vpn", "alice", 3000), 1);
    assert_int_equal(grants_withdrawals(g), seen + 3);             /* withdrawn */
    grants_free(g);

    g = grants_create();
    char fp[65];
    for (unsigned i = 0; i < GRANTS_CAPACITY; i++) {
        fingerprint(i, fp);
        grants_put(g, "vpn", fp, "u", "192.0.2.1", 10000 + i, 1000);
    }
    seen = grants_withdrawals(g);
    fingerprint(GRANTS_CAPACITY, fp);
    grants_put(g, "vpn", fp, "u", "192.0.2.1", 99999, 1000);
    assert_int_equal(grants_withdrawals(g), seen + 1);             /* a live grant evicted */
    grants_free(g);
}

/* What the daemon relies on: a grant written after fork is seen by the other process. */
static void test_shared_across_fork(void **state)
{
    (void)state;
    struct grants *g = grants_create();
    int to_child[2];
    assert_int_equal(pipe(to_child), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char go;
        close(to_child[1]);
        if (read(to_child[0], &go, 1) != 1)
            _exit(2);
        _exit(grants_check(g, "vpn", ALICE, "192.0.2.7", 2000, NULL) ? 0 : 1);
    }
    close(to_child[0]);
    grants_put(g, "vpn", ALICE, "alice", "192.0.2.7", 5000, 1000);
    assert_int_equal(write(to_child[1], "g", 1), 1);
    close(to_child[1]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    grants_free(g);
}

/* The grants mappings of this process, from /proc/self/maps: how many, and the
 * permissions and start of the last. */
static int grants_mappings(char perms[5], void **start)
{
    FILE *maps = fopen("/proc/self/maps", "re");
    char line[512];
    int count = 0;
    if (maps == NULL)
        return -1;
    while (fgets(line, sizeof(line), maps) != NULL) {
        char *end;
        if (strstr(line, "memfd:ktlstun-grants") == NULL)
            continue;
        uintptr_t from = (uintptr_t)strtoull(line, &end, 16);
        char *space = strchr(end, ' ');
        if (*end != '-' || space == NULL || strlen(space) < 5)
            continue;
        count++;
        memcpy(perms, space + 1, 4);
        perms[4] = '\0';
        /* The address as the kernel printed it: a pointer by way of its bytes. */
        memcpy(start, &from, sizeof(*start));
    }
    fclose(maps);
    return count;
}

/* What a compromised worker would try: make its view of the table writable again,
 * or reach the memfd behind it. */
static int worker_view_is_read_only(struct grants *g)
{
    char perms[5] = "";
    void *start = NULL;
    if (grants_make_read_only(g) < 0)
        return 10;
    if (grants_mappings(perms, &start) != 1 || strcmp(perms, "r--s") != 0)
        return 11;
    errno = 0;
    if (mprotect(start, 4096, PROT_READ | PROT_WRITE) == 0 || errno != EACCES)
        return 12;
    char link[256], path[64];
    for (int fd = 0; fd < 1024; fd++) {
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        ssize_t len = readlink(path, link, sizeof(link) - 1);
        if (len > 0 && (link[len] = '\0', strstr(link, "ktlstun-grants") != NULL))
            return 13;
    }
    return 0;
}

static void test_worker_view_cannot_be_made_writable(void **state)
{
    (void)state;
    struct grants *g = grants_create();
    char perms[5] = "";
    void *start = NULL;
    assert_int_equal(grants_mappings(perms, &start), 1);
    assert_string_equal(perms, "rw-s");
    int to_child[2];
    assert_int_equal(pipe(to_child), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        char go;
        close(to_child[1]);
        /* Then still the same table: what the writer puts there next is seen. */
        int verdict = worker_view_is_read_only(g);
        if (verdict != 0)
            _exit(verdict);
        if (read(to_child[0], &go, 1) != 1)
            _exit(2);
        _exit(grants_check(g, "vpn", ALICE, NULL, 2000, NULL) ? 0 : 1);
    }
    close(to_child[0]);
    grants_put(g, "vpn", ALICE, "alice", "192.0.2.7", 5000, 1000);
    assert_int_equal(write(to_child[1], "g", 1), 1);
    close(to_child[1]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    /* The writer's own view stays writable. */
    assert_int_equal(grants_mappings(perms, &start), 1);
    assert_string_equal(perms, "rw-s");
    grants_free(g);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_check_expire),
        cmocka_unit_test(test_bound_to_the_source),
        cmocka_unit_test(test_revoke_identity),
        cmocka_unit_test(test_withdraw_by_admin),
        cmocka_unit_test(test_arguments_too_long_are_refused),
        cmocka_unit_test(test_full_table_gives_way_to_the_soonest_expiry),
        cmocka_unit_test(test_withdrawals_count_what_ends_a_grant_early),
        cmocka_unit_test(test_shared_across_fork),
        cmocka_unit_test(test_worker_view_cannot_be_made_writable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
