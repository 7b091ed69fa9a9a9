/* stats: each refusal reason's fixed phrasing lands in its metric class. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "worker/stats.h"

static void expect_class(const char *reason, const char *class_name)
{
    const char *got = stats_refusal_name(stats_classify_refusal(reason));
    if (strcmp(got, class_name) != 0)
        fail_msg("\"%s\" counted as %s, expected %s", reason, got, class_name);
}

static void test_certificate_reasons(void **state)
{
    (void)state;
    expect_class("certificate expired on 2026-11-21 12:00:00 UTC (CN=bob)", "expired");
    expect_class("unknown CA: issuer CN=Other Root is not trusted", "unknown_ca");
    expect_class("certificate not allowed for client authentication: extendedKeyUsage lacks clientAuth "
                 "(CN=bob)",
                 "purpose");
    expect_class("certificate purpose not allowed (extendedKeyUsage) (CN=bob)", "purpose");
    expect_class("CN=mallory not in allow_cn", "allow_rule");
    expect_class("something nobody phrased yet", "other");
}

static void test_ca_certificate_as_leaf_is_a_purpose_refusal(void **state)
{
    (void)state;
    expect_class("certificate is a CA certificate (basicConstraints CA:TRUE), not a leaf (CN=Issuing CA)",
                 "purpose");
}

static void test_several_common_names_is_other(void **state)
{
    (void)state;
    /* Not an allow rule: the certificate is refused before any rule is read. */
    expect_class("certificate has 2 commonName attributes; ktlstun accepts one (CN=mallory,CN=alice)",
                 "other");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_certificate_reasons),
        cmocka_unit_test(test_ca_certificate_as_leaf_is_a_purpose_refusal),
        cmocka_unit_test(test_several_common_names_is_other),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
