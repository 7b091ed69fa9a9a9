/* stats: a tunnel's last refusal, written by any worker and read by every other
 * through the shared mapping; the newest wins, a reset slot has none. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "worker/stats.h"

static struct stats_last_refusal refusal(int64_t at, const char *identity, const char *words)
{
    struct stats_last_refusal r;
    memset(&r, 0, sizeof(r));
    r.at = at;
    snprintf(r.identity, sizeof(r.identity), "%s", identity);
    snprintf(r.words, sizeof(r.words), "%s", words);
    return r;
}

static void test_none_until_noted(void **state)
{
    (void)state;
    struct stats *stats = stats_create();
    assert_non_null(stats);
    struct stats_last_refusal out;
    assert_int_equal(stats_last_refusal(stats, 3, &out), 0);
    struct stats_last_refusal r = refusal(1700000000, "CN=alice", "CN=alice not in allow_cn");
    stats_note_last_refusal(stats, 3, &r);
    assert_int_equal(stats_last_refusal(stats, 3, &out), 1);
    assert_int_equal(out.at, 1700000000);
    assert_string_equal(out.identity, "CN=alice");
    assert_string_equal(out.words, "CN=alice not in allow_cn");
    assert_int_equal(stats_last_refusal(stats, 4, &out), 0);
    stats_reset_tunnel(stats, 3);
    assert_int_equal(stats_last_refusal(stats, 3, &out), 0);
    stats_free(stats);
}

/* A worker is another process: what it notes, the status server of another reads. */
static void test_other_process_newest_wins(void **state)
{
    (void)state;
    struct stats *stats = stats_create();
    assert_non_null(stats);
    struct stats_last_refusal first = refusal(100, "", "first");
    stats_note_last_refusal(stats, 0, &first);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        struct stats_last_refusal second = refusal(200, "", "second, from another worker");
        stats_note_last_refusal(stats, 0, &second);
        _exit(0);
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    struct stats_last_refusal out;
    assert_int_equal(stats_last_refusal(stats, 0, &out), 1);
    assert_string_equal(out.words, "second, from another worker");
    /* The child left: its pen is free again, for this process too. */
    struct stats_last_refusal third = refusal(300, "", "third");
    stats_note_last_refusal(stats, 0, &third);
    assert_int_equal(stats_last_refusal(stats, 0, &out), 1);
    assert_string_equal(out.words, "third");
    stats_free(stats);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_none_until_noted),
        cmocka_unit_test(test_other_process_newest_wins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
