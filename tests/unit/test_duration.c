#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core/duration.h"

static void assert_duration(const char *text, uint64_t expected)
{
    uint64_t seconds = 12345;
    const char *reason = NULL;

    if (duration_parse(text, &seconds, &reason) != 0)
        fail_msg("'%s' rejected: %s", text, reason);
    if (seconds != expected)
        fail_msg("'%s' gave %llu, expected %llu", text, (unsigned long long)seconds,
                 (unsigned long long)expected);
}

static void assert_rejected(const char *text, const char *expected_reason)
{
    uint64_t seconds = 777;
    const char *reason = NULL;

    if (duration_parse(text, &seconds, &reason) == 0)
        fail_msg("'%s' accepted as %llu", text, (unsigned long long)seconds);
    assert_non_null(reason);
    if (strcmp(reason, expected_reason) != 0)
        fail_msg("'%s': reason '%s', expected '%s'", text, reason, expected_reason);
    assert_int_equal(seconds, 777);   /* untouched on error */
}

static void test_plain_seconds(void **state)
{
    (void)state;
    assert_duration("0", 0);
    assert_duration("30", 30);
    assert_duration("86400", 86400);
}

static void test_units(void **state)
{
    (void)state;
    assert_duration("30s", 30);
    assert_duration("5m", 300);
    assert_duration("8h", 8 * 3600);
    assert_duration("1d", 86400);
    assert_duration("0s", 0);
    assert_duration("2D", 2 * 86400);
    assert_duration("10sec", 10);
    assert_duration("3 minutes", 180);
    assert_duration("1hour", 3600);
    assert_duration("2days", 172800);
}

static void test_sums(void **state)
{
    (void)state;
    assert_duration("1h30m", 5400);
    assert_duration("1d2h3m4s", 86400 + 7200 + 180 + 4);
    assert_duration("1h 30m", 5400);
    assert_duration("30m1h", 5400);
    assert_duration("  90s ", 90);
}

static void test_rejects_garbage(void **state)
{
    (void)state;
    assert_rejected("", "empty");
    assert_rejected("   ", "empty");
    assert_rejected("-5", "negative durations are not allowed");
    assert_rejected("-5s", "negative durations are not allowed");
    assert_rejected("abc", "expected a number (e.g. 30s, 5m, 8h, 1d or 1h30m)");
    assert_rejected("+5", "expected a number (e.g. 30s, 5m, 8h, 1d or 1h30m)");
    assert_rejected("5m x", "expected a number (e.g. 30s, 5m, 8h, 1d or 1h30m)");
    assert_rejected("1.5h", "expected a unit (s, m, h or d) after the number");
    assert_rejected("5x", "unknown unit 'x' (use s, m, h or d)");
    assert_rejected("500ms", "unknown unit 'ms' (use s, m, h or d)");
    assert_rejected("1w", "unknown unit 'w' (use s, m, h or d)");
    assert_rejected("1h30", "a number without a unit must stand alone (write 1h30m, not 1h30)");
    assert_rejected("30 5", "a number without a unit must stand alone (write 1h30m, not 1h30)");
}

static void test_overflow(void **state)
{
    (void)state;
    assert_duration("18446744073709551615", UINT64_MAX);
    assert_rejected("18446744073709551616", "too large");
    assert_rejected("99999999999999999999999", "too large");
    /* Fits as a number, overflows once multiplied by the unit. */
    assert_rejected("213503982334602d", "too large");
    assert_duration("213503982334601d", 213503982334601ULL * 86400);
    /* Each part fits; the sum does not. */
    assert_rejected("18446744073709551615s1s", "too large");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_seconds),
        cmocka_unit_test(test_units),
        cmocka_unit_test(test_sums),
        cmocka_unit_test(test_rejects_garbage),
        cmocka_unit_test(test_overflow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
