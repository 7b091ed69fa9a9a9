#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "core/ip_prefix.h"

static struct ip_prefix parsed(const char *text)
{
    struct ip_prefix p;
    const char *reason = NULL;
    if (ip_prefix_parse(text, &p, &reason) != 0)
        fail_msg("'%s' rejected: %s", text, reason);
    return p;
}

static void assert_round_trip(const char *text, const char *expected)
{
    char buf[IP_PREFIX_TEXT_MAX];
    struct ip_prefix p = parsed(text);
    assert_string_equal(ip_prefix_format(&p, buf, sizeof(buf)), expected);
}

static void assert_rejected(const char *text, const char *expected_reason)
{
    struct ip_prefix p;
    const char *reason = NULL;
    memset(&p, 0x5a, sizeof(p));
    if (ip_prefix_parse(text, &p, &reason) == 0)
        fail_msg("'%s' accepted", text);
    assert_string_equal(reason, expected_reason);
    assert_int_equal(p.len, 0x5a);   /* untouched on error */
}

static void test_parse_and_format(void **state)
{
    (void)state;
    assert_round_trip("10.8.0.2/24", "10.8.0.2/24");
    assert_round_trip("10.8.0.2", "10.8.0.2/32");
    assert_round_trip("0.0.0.0/0", "0.0.0.0/0");
    assert_round_trip("fd00:8::1/64", "fd00:8::1/64");
    assert_round_trip("::1", "::1/128");
    assert_round_trip("2001:db8::/32", "2001:db8::/32");
    assert_int_equal(parsed("10.0.0.0/8").family, AF_INET);
    assert_int_equal(parsed("fd00::/8").family, AF_INET6);
}

static void test_rejects(void **state)
{
    (void)state;
    assert_rejected("", "not an IP address");
    assert_rejected("/24", "not an IP address");
    assert_rejected("10.0.0/24", "not an IP address");
    assert_rejected("host.example/24", "not an IP address");
    assert_rejected("10.0.0.1/33", "prefix length above 32");
    assert_rejected("fd00::/129", "prefix length above 128");
    assert_rejected("10.0.0.1/", "prefix length is not a number");
    assert_rejected("10.0.0.1/-1", "prefix length is not a number");
    assert_rejected("10.0.0.1/ 8", "prefix length is not a number");
    assert_rejected("10.0.0.1/8x", "prefix length is not a number");
    assert_rejected("10.0.0.1/0008", "prefix length is not a number");
    assert_rejected("10.0.0.1/24/1", "prefix length is not a number");
}

static void test_contains(void **state)
{
    (void)state;
    uint8_t a4[4], a6[16];
    struct ip_prefix net = parsed("192.168.10.0/23");

    inet_pton(AF_INET, "192.168.11.254", a4);
    assert_true(ip_prefix_contains(&net, AF_INET, a4));
    inet_pton(AF_INET, "192.168.12.1", a4);
    assert_false(ip_prefix_contains(&net, AF_INET, a4));
    inet_pton(AF_INET, "192.168.9.255", a4);
    assert_false(ip_prefix_contains(&net, AF_INET, a4));

    struct ip_prefix all = parsed("0.0.0.0/0");
    assert_true(ip_prefix_contains(&all, AF_INET, a4));
    struct ip_prefix host = parsed("192.168.9.255");
    assert_true(ip_prefix_contains(&host, AF_INET, a4));
    a4[3] = 254;
    assert_false(ip_prefix_contains(&host, AF_INET, a4));

    struct ip_prefix net6 = parsed("fd00:8::/61");
    inet_pton(AF_INET6, "fd00:8:0:7:ffff::1", a6);
    assert_true(ip_prefix_contains(&net6, AF_INET6, a6));
    inet_pton(AF_INET6, "fd00:8:0:8::1", a6);
    assert_false(ip_prefix_contains(&net6, AF_INET6, a6));
    /* Another family never matches, whatever its bytes. */
    assert_false(ip_prefix_contains(&net6, AF_INET, a6));
    assert_false(ip_prefix_contains(&all, AF_INET6, a6));
}

static void test_network(void **state)
{
    (void)state;
    char buf[IP_PREFIX_TEXT_MAX];
    struct ip_prefix p = parsed("10.8.3.77/22");
    assert_false(ip_prefix_is_network(&p));
    struct ip_prefix net = ip_prefix_network(&p);
    assert_string_equal(ip_prefix_format(&net, buf, sizeof(buf)), "10.8.0.0/22");
    assert_true(ip_prefix_is_network(&net));
    struct ip_prefix p6 = parsed("fd00:8:ab:cdef::1/52");
    struct ip_prefix net6 = ip_prefix_network(&p6);
    assert_string_equal(ip_prefix_format(&net6, buf, sizeof(buf)), "fd00:8:ab:c000::/52");
    struct ip_prefix zero = parsed("1.2.3.4/0");
    struct ip_prefix net0 = ip_prefix_network(&zero);
    assert_string_equal(ip_prefix_format(&net0, buf, sizeof(buf)), "0.0.0.0/0");
    struct ip_prefix full = parsed("fd00::1");
    assert_true(ip_prefix_is_network(&full));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_format),
        cmocka_unit_test(test_rejects),
        cmocka_unit_test(test_contains),
        cmocka_unit_test(test_network),
    };
    return cmocka_run_group_tests_name("ip_prefix", tests, NULL, NULL);
}
