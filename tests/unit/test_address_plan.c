#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "addrplan/address_plan.h"

static char err[512];

static struct ip_prefix parsed(const char *text)
{
    struct ip_prefix p;
    const char *reason = NULL;
    if (ip_prefix_parse(text, &p, &reason) != 0)
        fail_msg("'%s' rejected: %s", text, reason);
    return p;
}

/* A hub tunnel "hub" of /etc/k.ini whose address key is on line 5. */
static struct tunnel_config hub(const char *pool4, const char *pool6)
{
    struct tunnel_config t;
    memset(&t, 0, sizeof(t));
    t.name = "hub";
    t.line = 1;
    t.source = "/etc/k.ini";
    t.mode = TUNNEL_MODE_SERVER;
    t.type = TUNNEL_TYPE_NETWORK;
    t.key_lines[t.key_line_count++] = (struct config_key_line){ "address", 5 };
    if (pool4 != NULL)
        t.network.hub_addresses[t.network.hub_address_count++] = parsed(pool4);
    if (pool6 != NULL)
        t.network.hub_addresses[t.network.hub_address_count++] = parsed(pool6);
    return t;
}

static struct network_client_entry entry(const char *identity, const char *prefix, int line)
{
    return (struct network_client_entry){ (char *)identity, parsed(prefix), line };
}

static void said(const char *words)
{
    if (strstr(err, words) == NULL)
        fail_msg("'%s' does not say '%s'", err, words);
}

static void test_pools_fixed_and_networks(void **state)
{
    (void)state;
    struct tunnel_config t = hub("10.8.0.1/24", "fd00:8::1/64");
    struct network_client_entry fixed[] = { entry("site-b", "10.8.0.2", 7),
                                            entry("bob", "fd00:8::7", 7) };
    struct network_client_entry networks[] = { entry("site-b", "192.168.2.0/24", 8) };
    t.network.fixed = fixed;
    t.network.fixed_count = 2;
    t.network.client_networks = networks;
    t.network.client_network_count = 1;
    struct address_lease *al = address_plan_build(&t, err, sizeof(err));
    assert_non_null(al);

    struct address_lease_grant g;
    assert_int_equal(address_lease_take(al, "site-b", &g, err, sizeof(err)), 0);
    assert_int_equal(g.count, 2);
    char buf[IP_PREFIX_TEXT_MAX];
    assert_string_equal(ip_prefix_format(&g.addresses[0], buf, sizeof(buf)), "10.8.0.2/32");
    struct ip_prefix out[2];
    assert_int_equal(address_lease_networks(al, "site-b", out, 2), 1);
    assert_string_equal(ip_prefix_format(&out[0], buf, sizeof(buf)), "192.168.2.0/24");
    assert_int_equal(address_lease_take(al, "bob", &g, err, sizeof(err)), 0);
    assert_int_equal(g.count, 2);
    assert_string_equal(ip_prefix_format(&g.addresses[1], buf, sizeof(buf)), "fd00:8::7/128");
    address_lease_free(al);
}

static void test_pool_error_names_address_line(void **state)
{
    (void)state;
    struct tunnel_config t = hub("10.8.0.1/31", NULL);
    assert_null(address_plan_build(&t, err, sizeof(err)));
    said("/etc/k.ini:5: [hub] address: pool 10.8.0.1/31");
}

static void test_two_pools_of_one_family(void **state)
{
    (void)state;
    struct tunnel_config t = hub("10.8.0.1/24", "10.9.0.1/24");
    assert_null(address_plan_build(&t, err, sizeof(err)));
    said("/etc/k.ini:5: [hub] address: ");
    said("a pool of this family already");
}

static void test_network_overlapping_pool(void **state)
{
    (void)state;
    struct tunnel_config t = hub("10.8.0.1/24", NULL);
    struct network_client_entry networks[] = { entry("a", "10.8.0.0/25", 9) };
    t.network.client_networks = networks;
    t.network.client_network_count = 1;
    assert_null(address_plan_build(&t, err, sizeof(err)));
    said("/etc/k.ini:9: [hub] client_networks: network 10.8.0.0/25 behind a overlaps the pool");
}

static void test_networks_overlap_each_other(void **state)
{
    (void)state;
    struct tunnel_config t = hub("10.8.0.1/24", NULL);
    struct network_client_entry networks[] = { entry("a", "192.168.0.0/16", 9),
                                               entry("b", "192.168.2.0/24", 10) };
    t.network.client_networks = networks;
    t.network.client_network_count = 2;
    assert_null(address_plan_build(&t, err, sizeof(err)));
    said("/etc/k.ini:10: [hub] client_networks: network 192.168.2.0/24 behind b overlaps");
}

static void test_fixed_conflicts(void **state)
{
    (void)state;
    struct tunnel_config t = hub("10.8.0.1/24", NULL);
    struct network_client_entry twice[] = { entry("a", "10.8.0.5", 11),
                                            entry("b", "10.8.0.5", 12) };
    t.network.fixed = twice;
    t.network.fixed_count = 2;
    assert_null(address_plan_build(&t, err, sizeof(err)));
    said("/etc/k.ini:12: [hub] client_address: fixed address 10.8.0.5");

    struct network_client_entry hub_address[] = { entry("a", "10.8.0.1", 13) };
    t.network.fixed = hub_address;
    t.network.fixed_count = 1;
    assert_null(address_plan_build(&t, err, sizeof(err)));
    said("/etc/k.ini:13: [hub] client_address: ");

    struct network_client_entry inside[] = { entry("a", "192.168.2.9", 14) };
    struct network_client_entry networks[] = { entry("b", "192.168.2.0/24", 9) };
    t.network.fixed = inside;
    t.network.client_networks = networks;
    t.network.client_network_count = 1;
    assert_null(address_plan_build(&t, err, sizeof(err)));
    said("/etc/k.ini:14: [hub] client_address: fixed address 192.168.2.9/32 of a lies in "
         "network 192.168.2.0/24 behind b");
}

static void test_fixed_outside_any_pool(void **state)
{
    (void)state;
    struct tunnel_config t = hub("10.8.0.1/24", NULL);
    struct network_client_entry fixed[] = { entry("a", "172.16.0.9", 11) };
    t.network.fixed = fixed;
    t.network.fixed_count = 1;
    struct address_lease *al = address_plan_build(&t, err, sizeof(err));
    assert_non_null(al);
    address_lease_free(al);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pools_fixed_and_networks),
        cmocka_unit_test(test_pool_error_names_address_line),
        cmocka_unit_test(test_two_pools_of_one_family),
        cmocka_unit_test(test_network_overlapping_pool),
        cmocka_unit_test(test_networks_overlap_each_other),
        cmocka_unit_test(test_fixed_conflicts),
        cmocka_unit_test(test_fixed_outside_any_pool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
