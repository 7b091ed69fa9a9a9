#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "core/log_limit.h"

#define T0 1000000u   /* a monotonic clock well past its start */

/* Offers COUNT lines "line N" at NOW_MS; returns how many were to be written. */
static unsigned offer(struct log_limit *limit, uint64_t now_ms, unsigned count, unsigned first)
{
    unsigned written = 0;
    for (unsigned i = 0; i < count; i++) {
        char line[32];
        snprintf(line, sizeof(line), "line %u", first + i);
        written += (unsigned)log_limit_admit(limit, now_ms, line);
    }
    return written;
}

static void test_a_few_lines_all_written(void **state)
{
    (void)state;
    struct log_limit limit = { 0 };
    assert_int_equal(offer(&limit, T0, LOG_LIMIT_BURST, 0), LOG_LIMIT_BURST);
    char out[512];
    assert_int_equal(log_limit_summary(&limit, T0 + LOG_LIMIT_WINDOW_MS, out, sizeof(out)), 0);
    /* Another window, another burst. */
    assert_int_equal(offer(&limit, T0 + LOG_LIMIT_WINDOW_MS, LOG_LIMIT_BURST, 0), LOG_LIMIT_BURST);
}

static void test_flood_summed_up_at_window_end(void **state)
{
    (void)state;
    struct log_limit limit = { 0 };
    assert_int_equal(offer(&limit, T0, 63, 0), LOG_LIMIT_BURST);
    char out[512];
    /* Nothing to say before the window ends. */
    assert_int_equal(log_limit_summary(&limit, T0 + LOG_LIMIT_WINDOW_MS - 1, out, sizeof(out)), 0);
    assert_int_equal(log_limit_summary(&limit, T0 + LOG_LIMIT_WINDOW_MS, out, sizeof(out)), 1);
    assert_string_equal(out, "line 62 (and 57 more like it in the last 10 s)");
    /* Said once. */
    assert_int_equal(log_limit_summary(&limit, T0 + 2 * LOG_LIMIT_WINDOW_MS, out, sizeof(out)), 0);
}

static void test_one_held_back_line_is_written_as_it_was(void **state)
{
    (void)state;
    struct log_limit limit = { 0 };
    assert_int_equal(offer(&limit, T0, LOG_LIMIT_BURST + 1, 0), LOG_LIMIT_BURST);
    char out[512];
    assert_int_equal(log_limit_summary(&limit, T0 + LOG_LIMIT_WINDOW_MS, out, sizeof(out)), 1);
    assert_string_equal(out, "line 5");
}

static void test_ongoing_flood_one_summary_per_window(void **state)
{
    (void)state;
    struct log_limit limit = { 0 };
    char out[512];
    offer(&limit, T0, 100, 0);
    assert_int_equal(log_limit_summary(&limit, T0 + LOG_LIMIT_WINDOW_MS, out, sizeof(out)), 1);
    /* The flood goes on: no new burst, only the next summary. */
    assert_int_equal(offer(&limit, T0 + LOG_LIMIT_WINDOW_MS + 1, 30, 100), 0);
    assert_int_equal(log_limit_summary(&limit, T0 + 2 * LOG_LIMIT_WINDOW_MS - 1, out, sizeof(out)), 0);
    assert_int_equal(log_limit_summary(&limit, T0 + 2 * LOG_LIMIT_WINDOW_MS, out, sizeof(out)), 1);
    assert_string_equal(out, "line 129 (and 29 more like it in the last 10 s)");
    /* After a quiet window the burst is back. */
    assert_int_equal(offer(&limit, T0 + 3 * LOG_LIMIT_WINDOW_MS, LOG_LIMIT_BURST, 0), LOG_LIMIT_BURST);
}

static void test_held_back_count_survives_a_late_summary(void **state)
{
    (void)state;
    struct log_limit limit = { 0 };
    char out[512];
    offer(&limit, T0, LOG_LIMIT_BURST + 3, 0);
    /* A line comes after the window ended but before anyone asked for the summary:
     * it is counted, not written, and nothing is lost. */
    assert_int_equal(offer(&limit, T0 + LOG_LIMIT_WINDOW_MS + 5, 1, 99), 0);
    assert_int_equal(log_limit_summary(&limit, T0 + LOG_LIMIT_WINDOW_MS + 5, out, sizeof(out)), 1);
    assert_string_equal(out, "line 99 (and 3 more like it in the last 10 s)");
}

static void test_long_line_cut(void **state)
{
    (void)state;
    struct log_limit limit = { 0 };
    char line[1000], out[2000];
    memset(line, 'x', sizeof(line) - 1);
    line[sizeof(line) - 1] = '\0';
    for (unsigned i = 0; i < LOG_LIMIT_BURST + 2; i++)
        log_limit_admit(&limit, T0, line);
    assert_int_equal(log_limit_summary(&limit, T0 + LOG_LIMIT_WINDOW_MS, out, sizeof(out)), 1);
    assert_int_equal(strspn(out, "x"), LOG_LIMIT_TEXT - 1);
    assert_string_equal(out + LOG_LIMIT_TEXT - 1, " (and 1 more like it in the last 10 s)");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_a_few_lines_all_written),
        cmocka_unit_test(test_flood_summed_up_at_window_end),
        cmocka_unit_test(test_one_held_back_line_is_written_as_it_was),
        cmocka_unit_test(test_ongoing_flood_one_summary_per_window),
        cmocka_unit_test(test_held_back_count_survives_a_late_summary),
        cmocka_unit_test(test_long_line_cut),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
