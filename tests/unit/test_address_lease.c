#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "addrplan/address_lease.h"

static char err[256];

static struct ip_prefix parsed(const char *text)
{
    struct ip_prefix p;
    const char *reason = NULL;
    if (ip_prefix_parse(text, &p, &reason) != 0)
        fail_msg("'%s' rejected: %s", text, reason);
    return p;
}

static const char *fmt(const struct ip_prefix *p)
{
    static char buf[4][IP_PREFIX_TEXT_MAX];
    static int next;
    next = (next + 1) % 4;
    return ip_prefix_format(p, buf[next], sizeof(buf[next]));
}

static struct address_lease *plan(size_t capacity, size_t sticky, const char *pool4,
                                  const char *pool6)
{
    struct address_lease *al = address_lease_new(capacity, sticky);
    assert_non_null(al);
    if (pool4 != NULL) {
        struct ip_prefix p = parsed(pool4);
        assert_int_equal(address_lease_add_pool(al, &p, err, sizeof(err)), 0);
    }
    if (pool6 != NULL) {
        struct ip_prefix p = parsed(pool6);
        assert_int_equal(address_lease_add_pool(al, &p, err, sizeof(err)), 0);
    }
    return al;
}

/* IDENTITY's first address as text, failing the test when the take fails. */
static const char *take(struct address_lease *al, const char *identity)
{
    struct address_lease_grant g;
    if (address_lease_take(al, identity, &g, err, sizeof(err)) != 0)
        fail_msg("take %s: %s", identity, err);
    assert_true(g.count >= 1);
    return fmt(&g.addresses[0]);
}

static void refused(struct address_lease *al, const char *identity, const char *words)
{
    struct address_lease_grant g;
    err[0] = '\0';
    assert_int_equal(address_lease_take(al, identity, &g, err, sizeof(err)), -1);
    if (strstr(err, words) == NULL)
        fail_msg("'%s' does not say '%s'", err, words);
}

static void test_pool_skips_hub_and_edges(void **state)
{
    (void)state;
    struct address_lease *al = plan(16, 4, "10.8.0.1/29", NULL);   /* .0 .. .7 */
    char seen[8] = { 0 };
    const char *names[] = { "a", "b", "c", "d", "e" };
    for (int i = 0; i < 5; i++) {
        const char *got = take(al, names[i]);
        assert_int_equal(strncmp(got, "10.8.0.", 7), 0);
        unsigned long last = strtoul(got + 7, NULL, 10);
        assert_true(last >= 2 && last <= 6);
        assert_int_equal(seen[last], 0);
        seen[last] = 1;
    }
    refused(al, "f", "the pool 10.8.0.0/29 is full");
    assert_int_equal(address_lease_held(al), 5);
    address_lease_free(al);
}

static void test_both_families(void **state)
{
    (void)state;
    struct address_lease *al = plan(16, 4, "10.8.0.1/24", "fd08::1/64");
    struct address_lease_grant g;
    assert_int_equal(address_lease_take(al, "CN=alice", &g, err, sizeof(err)), 0);
    assert_int_equal(g.count, 2);
    assert_string_equal(fmt(&g.addresses[0]), "10.8.0.2/32");
    assert_string_equal(fmt(&g.addresses[1]), "fd08::2/128");
    address_lease_free(al);
}

static void test_sticky_on_reconnect(void **state)
{
    (void)state;
    struct address_lease *al = plan(64, 8, "10.8.0.1/24", NULL);
    char first[IP_PREFIX_TEXT_MAX];
    snprintf(first, sizeof(first), "%s", take(al, "CN=alice"));
    take(al, "CN=bob");
    /* Still held (the older connection is ending): the same address, counted twice. */
    assert_string_equal(take(al, "CN=alice"), first);
    assert_int_equal(address_lease_release(al, "CN=alice"), 0);
    assert_int_equal(address_lease_release(al, "CN=alice"), 0);
    assert_int_equal(address_lease_release(al, "CN=alice"), -1);
    /* Released: others come and go, alice comes back to hers. */
    for (int i = 0; i < 5; i++) {
        char id[32];
        snprintf(id, sizeof(id), "CN=other%d", i);
        assert_string_not_equal(take(al, id), first);
    }
    assert_string_equal(take(al, "CN=alice"), first);
    address_lease_free(al);
}

static void test_sticky_is_bounded(void **state)
{
    (void)state;
    /* Two remembered: a comes back to .2 after b and c left too. */
    struct address_lease *al = plan(64, 2, "10.8.0.1/24", NULL);
    assert_string_equal(take(al, "a"), "10.8.0.2/32");
    address_lease_release(al, "a");
    assert_string_equal(take(al, "b"), "10.8.0.3/32");
    address_lease_release(al, "b");
    assert_string_equal(take(al, "a"), "10.8.0.2/32");
    address_lease_release(al, "a");
    assert_string_equal(take(al, "c"), "10.8.0.4/32");
    address_lease_release(al, "c");   /* b, released longest ago, is forgotten */
    assert_string_equal(take(al, "b"), "10.8.0.5/32");
    assert_string_equal(take(al, "a"), "10.8.0.2/32");
    address_lease_free(al);
    /* None remembered: a release forgets at once. */
    al = plan(64, 0, "10.8.0.1/24", NULL);
    assert_string_equal(take(al, "a"), "10.8.0.2/32");
    address_lease_release(al, "a");
    assert_string_equal(take(al, "a"), "10.8.0.3/32");
    address_lease_free(al);
}

static void test_full_pool_takes_released_not_held(void **state)
{
    (void)state;
    struct address_lease *al = plan(16, 16, "10.8.0.1/29", NULL);   /* 5 for clients */
    const char *names[] = { "a", "b", "c", "d", "e" };
    char addr[5][IP_PREFIX_TEXT_MAX];
    for (int i = 0; i < 5; i++)
        snprintf(addr[i], sizeof(addr[i]), "%s", take(al, names[i]));
    refused(al, "f", "full");
    address_lease_release(al, "c");
    address_lease_release(al, "a");
    /* f gets the address released longest ago (c's), never a held one. */
    assert_string_equal(take(al, "f"), addr[2]);
    /* a still has its own back. */
    assert_string_equal(take(al, "a"), addr[0]);
    refused(al, "c", "full");
    refused(al, "g", "full");
    address_lease_free(al);
}

static void test_capacity_refuses(void **state)
{
    (void)state;
    struct address_lease *al = plan(3, 1, "10.8.0.1/24", NULL);
    take(al, "a");
    take(al, "b");
    take(al, "c");
    refused(al, "d", "all 3 leases are held");
    address_lease_release(al, "b");
    take(al, "d");
    address_lease_free(al);
}

static void test_fixed_addresses(void **state)
{
    (void)state;
    struct address_lease *al = plan(16, 4, "10.8.0.1/29", NULL);
    struct ip_prefix p = parsed("10.8.0.2");
    assert_int_equal(address_lease_add_fixed(al, "CN=printer", &p, err, sizeof(err)), 0);
    p = parsed("192.168.50.9");
    assert_int_equal(address_lease_add_fixed(al, "CN=outside", &p, err, sizeof(err)), 0);
    /* Four left for the pool (.3 .. .6); the fixed one is never among them. */
    for (int i = 0; i < 4; i++) {
        char id[32];
        snprintf(id, sizeof(id), "p%d", i);
        assert_string_not_equal(take(al, id), "10.8.0.2/32");
    }
    refused(al, "p9", "full");
    assert_string_equal(take(al, "CN=printer"), "10.8.0.2/32");
    assert_string_equal(take(al, "CN=outside"), "192.168.50.9/32");

    p = parsed("10.8.0.2");
    assert_int_equal(address_lease_add_fixed(al, "CN=other", &p, err, sizeof(err)), -1);
    assert_string_equal(err, "fixed address 10.8.0.2/32 of CN=other is the fixed address of CN=printer");
    p = parsed("10.8.0.1");
    assert_int_equal(address_lease_add_fixed(al, "CN=other", &p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "is the hub's or a pool's first or last"));
    p = parsed("10.8.0.7");
    assert_int_equal(address_lease_add_fixed(al, "CN=other", &p, err, sizeof(err)), -1);
    p = parsed("10.9.9.9");
    assert_int_equal(address_lease_add_fixed(al, "CN=printer", &p, err, sizeof(err)), -1);
    assert_string_equal(err, "fixed address 10.9.9.9/32 of CN=printer: it has 10.8.0.2/32 already");
    address_lease_free(al);
}

static void test_no_address_for_identity(void **state)
{
    (void)state;
    struct address_lease *al = plan(4, 1, NULL, NULL);
    refused(al, "CN=alice", "no address for CN=alice: it has no fixed address and the hub no pool");
    assert_int_equal(address_lease_release(al, "CN=alice"), -1);
    address_lease_free(al);
}

static void test_networks(void **state)
{
    (void)state;
    struct address_lease *al = plan(16, 4, "10.8.0.1/24", "fd08::1/64");
    struct ip_prefix p = parsed("10.20.0.0/16");
    assert_int_equal(address_lease_add_network(al, "CN=alice", &p, err, sizeof(err)), 0);
    p = parsed("fd20::/48");
    assert_int_equal(address_lease_add_network(al, "CN=alice", &p, err, sizeof(err)), 0);
    p = parsed("10.21.0.0/16");
    assert_int_equal(address_lease_add_network(al, "CN=bob", &p, err, sizeof(err)), 0);

    p = parsed("10.20.5.0/24");
    assert_int_equal(address_lease_add_network(al, "CN=carol", &p, err, sizeof(err)), -1);
    assert_string_equal(err, "network 10.20.5.0/24 behind CN=carol overlaps network 10.20.0.0/16 behind CN=alice");
    p = parsed("10.0.0.0/8");
    assert_int_equal(address_lease_add_network(al, "CN=carol", &p, err, sizeof(err)), -1);
    assert_string_equal(err, "network 10.0.0.0/8 behind CN=carol overlaps the pool 10.8.0.0/24");
    p = parsed("10.8.0.128/25");
    assert_int_equal(address_lease_add_network(al, "CN=carol", &p, err, sizeof(err)), -1);
    assert_string_equal(err, "network 10.8.0.128/25 behind CN=carol overlaps the pool 10.8.0.0/24");
    p = parsed("10.22.1.1/16");
    assert_int_equal(address_lease_add_network(al, "CN=carol", &p, err, sizeof(err)), -1);
    assert_string_equal(err, "network 10.22.1.1/16 behind CN=carol has host bits set: write 10.22.0.0/16");
    p = parsed("fd20:0:0:1::/64");
    assert_int_equal(address_lease_add_network(al, "CN=carol", &p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "overlaps network fd20::/48 behind CN=alice"));

    p = parsed("172.16.0.5");
    assert_int_equal(address_lease_add_fixed(al, "CN=dave", &p, err, sizeof(err)), 0);
    p = parsed("172.16.0.0/24");
    assert_int_equal(address_lease_add_network(al, "CN=erin", &p, err, sizeof(err)), -1);
    assert_string_equal(err, "network 172.16.0.0/24 behind CN=erin holds the fixed address 172.16.0.5/32 of CN=dave");
    p = parsed("10.21.3.3");
    assert_int_equal(address_lease_add_fixed(al, "CN=erin", &p, err, sizeof(err)), -1);
    assert_string_equal(err, "fixed address 10.21.3.3/32 of CN=erin lies in network 10.21.0.0/16 behind CN=bob");

    struct ip_prefix out[4];
    assert_int_equal(address_lease_networks(al, "CN=alice", out, 4), 2);
    assert_string_equal(fmt(&out[0]), "10.20.0.0/16");
    assert_string_equal(fmt(&out[1]), "fd20::/48");
    assert_int_equal(address_lease_networks(al, "CN=alice", out, 1), 2);
    assert_int_equal(address_lease_networks(al, "CN=nobody", out, 4), 0);
    address_lease_free(al);
}

static void test_pool_checks(void **state)
{
    (void)state;
    struct address_lease *al = address_lease_new(8, 2);
    assert_non_null(al);
    struct ip_prefix p = parsed("10.20.0.0/16");
    assert_int_equal(address_lease_add_network(al, "CN=alice", &p, err, sizeof(err)), 0);
    p = parsed("10.20.8.1/24");
    assert_int_equal(address_lease_add_pool(al, &p, err, sizeof(err)), -1);
    assert_string_equal(err, "pool 10.20.8.0/24 overlaps network 10.20.0.0/16 behind CN=alice");
    p = parsed("10.8.0.0/24");
    assert_int_equal(address_lease_add_pool(al, &p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "give the hub's address in it"));
    p = parsed("10.8.0.1/31");
    assert_int_equal(address_lease_add_pool(al, &p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "too small"));
    p = parsed("10.8.0.255/24");
    assert_int_equal(address_lease_add_pool(al, &p, err, sizeof(err)), -1);
    p = parsed("10.8.0.1/24");
    assert_int_equal(address_lease_add_pool(al, &p, err, sizeof(err)), 0);
    p = parsed("10.9.0.1/24");
    assert_int_equal(address_lease_add_pool(al, &p, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "there is a pool of this family already"));
    assert_null(address_lease_new(0, 0));
    assert_null(address_lease_new(4, 5));
    address_lease_free(al);
}

/* 200 identities on a pool of 125 for clients, 300 leases kept: connecting and
 * leaving in a fixed pseudo-random order, no address is ever held by two, a held
 * identity always gets its address back, and a released one while it is remembered. */
static void test_churn(void **state)
{
    (void)state;
    enum { IDS = 200, ROUNDS = 20000 };
    struct address_lease *al = plan(300, 50, "10.8.0.1/25", "fd08::1/64");
    int held[IDS] = { 0 };
    char addr4[IDS][IP_PREFIX_TEXT_MAX] = { { 0 } };
    char addr6[IDS][IP_PREFIX_TEXT_MAX] = { { 0 } };
    uint64_t x = 0x9e3779b97f4a7c15ull;
    size_t refusals = 0, back = 0;
    for (int round = 0; round < ROUNDS; round++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        int id = (int)(x % IDS);
        char name[32];
        snprintf(name, sizeof(name), "CN=client%03d,O=Example", id);
        if (held[id] > 0 && (x >> 32) % 3 != 0) {
            assert_int_equal(address_lease_release(al, name), 0);
            held[id]--;
            continue;
        }
        struct address_lease_grant g;
        if (address_lease_take(al, name, &g, err, sizeof(err)) != 0) {
            assert_non_null(strstr(err, "full"));
            refusals++;
            continue;
        }
        assert_int_equal(g.count, 2);
        if (held[id] > 0) {
            assert_string_equal(fmt(&g.addresses[0]), addr4[id]);
            assert_string_equal(fmt(&g.addresses[1]), addr6[id]);
        } else if (addr4[id][0] != '\0' && strcmp(fmt(&g.addresses[0]), addr4[id]) == 0) {
            back++;
        }
        held[id]++;
        snprintf(addr4[id], sizeof(addr4[id]), "%s", fmt(&g.addresses[0]));
        snprintf(addr6[id], sizeof(addr6[id]), "%s", fmt(&g.addresses[1]));
        /* No two identities that hold a lease hold the same address. */
        size_t holders = 0;
        for (int other = 0; other < IDS; other++) {
            if (held[other] == 0)
                continue;
            holders++;
            if (other != id) {
                assert_string_not_equal(addr4[other], addr4[id]);
                assert_string_not_equal(addr6[other], addr6[id]);
            }
        }
        assert_int_equal(address_lease_held(al), 2 * holders);
    }
    /* The pool filled up now and then, and clients came back to their addresses. */
    assert_true(refusals > 0);
    assert_true(back > 100);
    for (int id = 0; id < IDS; id++) {
        char name[32];
        snprintf(name, sizeof(name), "CN=client%03d,O=Example", id);
        while (held[id]-- > 0)
            assert_int_equal(address_lease_release(al, name), 0);
    }
    assert_int_equal(address_lease_held(al), 0);
    address_lease_free(al);
}

/* A take that fails in its second family gives back what it took in the first. */
static void test_failed_take_takes_nothing(void **state)
{
    (void)state;
    struct address_lease *al = plan(16, 0, "10.8.0.1/24", NULL);
    struct ip_prefix p = parsed("fd08::1/126");   /* .2 is the only client address */
    assert_int_equal(address_lease_add_pool(al, &p, err, sizeof(err)), 0);
    take(al, "a");
    refused(al, "b", "the pool fd08::/126 is full");
    assert_int_equal(address_lease_held(al), 2);
    address_lease_release(al, "a");
    take(al, "b");
    assert_int_equal(address_lease_held(al), 2);
    address_lease_free(al);
}

/* A fixed IPv4 address and an IPv6 one from the pool; a full IPv6 pool refuses the
 * client altogether and leaves its fixed address not held. */
/* Addresses the shared state store gave: what the plan accepts, and what it keeps. */
static void test_given_addresses(void **state)
{
    (void)state;
    struct address_lease *al = plan(16, 4, "10.8.0.1/24", "fd00:8::1/64");
    struct ip_prefix p = parsed("10.8.0.9");
    assert_int_equal(address_lease_add_fixed(al, "CN=printer", &p, err, sizeof(err)), 0);

    struct ip_prefix pools[ADDRESS_LEASE_FAMILIES];
    assert_int_equal(address_lease_pools_for(al, "CN=a", pools), 2);
    assert_string_equal(fmt(&pools[0]), "10.8.0.1/24");
    assert_string_equal(fmt(&pools[1]), "fd00:8::1/64");
    /* A fixed IPv4 address: only the IPv6 pool is asked. */
    assert_int_equal(address_lease_pools_for(al, "CN=printer", pools), 1);
    assert_string_equal(fmt(&pools[0]), "fd00:8::1/64");

    static const char *const never[] = { "10.8.0.1", "10.8.0.0", "10.8.0.255", "10.8.0.9",
                                         "10.9.0.5", "fd00:8::1",
                                         "fd00:8::1:0:0:5", "fd00:9::5" };
    for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++) {
        p = parsed(never[i]);
        if (address_lease_may_lease(al, "CN=a", &p))
            fail_msg("%s may be leased", never[i]);
    }
    p = parsed("10.8.0.9");
    assert_true(address_lease_may_lease(al, "CN=printer", &p));
    p = parsed("10.8.0.77");
    assert_true(address_lease_may_lease(al, "CN=a", &p));

    struct ip_prefix given[2] = { parsed("10.8.0.77"), parsed("fd00:8::4d") };
    struct address_lease_grant g;
    assert_int_equal(address_lease_take_given(al, "CN=a", given, 2, &g, err, sizeof(err)), 0);
    assert_int_equal(g.count, 2);
    assert_string_equal(fmt(&g.addresses[0]), "10.8.0.77/32");
    assert_string_equal(fmt(&g.addresses[1]), "fd00:8::4d/128");
    assert_int_equal(address_lease_held(al), 2);
    /* Held here by CN=a: the store cannot give it to CN=b on this hub. */
    assert_int_equal(address_lease_take_given(al, "CN=b", given, 2, &g, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "is held here by CN=a"));
    /* CN=a holds .77: another address for it is a disagreement, refused. */
    struct ip_prefix other[2] = { parsed("10.8.0.78"), parsed("fd00:8::4d") };
    assert_int_equal(address_lease_take_given(al, "CN=a", other, 2, &g, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "it holds 10.8.0.77/32 here"));
    /* A pool without a given address. */
    assert_int_equal(address_lease_take_given(al, "CN=c", other, 1, &g, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "none of the pool fd00:8::/64"));
    assert_int_equal(address_lease_held(al), 2);

    /* Released, .77 stays CN=a's here until the fleet gives it to another: then it is. */
    assert_int_equal(address_lease_release(al, "CN=a"), 0);
    assert_int_equal(address_lease_take_given(al, "CN=b", given, 2, &g, err, sizeof(err)), 0);
    assert_string_equal(fmt(&g.addresses[0]), "10.8.0.77/32");
    /* CN=a comes back to the address the fleet gives it now. */
    assert_int_equal(address_lease_take_given(al, "CN=a", other, 2, &g, err, sizeof(err)), -1);
    other[1] = parsed("fd00:8::4e");
    assert_int_equal(address_lease_take_given(al, "CN=a", other, 2, &g, err, sizeof(err)), 0);
    assert_string_equal(fmt(&g.addresses[0]), "10.8.0.78/32");
    assert_int_equal(address_lease_held(al), 4);
    /* The fixed address comes from the plan, the pool one from the store. */
    struct ip_prefix six = parsed("fd00:8::50");
    assert_int_equal(address_lease_take_given(al, "CN=printer", &six, 1, &g, err, sizeof(err)), 0);
    assert_int_equal(g.count, 2);
    assert_string_equal(fmt(&g.addresses[0]), "10.8.0.9/32");
    assert_string_equal(fmt(&g.addresses[1]), "fd00:8::50/128");
    address_lease_free(al);
}

static void test_fixed_and_pool_mixed(void **state)
{
    (void)state;
    struct address_lease *al = plan(8, 0, NULL, "fd08::1/126");
    struct ip_prefix p = parsed("192.168.50.9");
    assert_int_equal(address_lease_add_fixed(al, "CN=printer", &p, err, sizeof(err)), 0);
    p = parsed("192.168.50.10");
    assert_int_equal(address_lease_add_fixed(al, "CN=scanner", &p, err, sizeof(err)), 0);
    struct address_lease_grant g;
    assert_int_equal(address_lease_take(al, "CN=printer", &g, err, sizeof(err)), 0);
    assert_int_equal(g.count, 2);
    assert_string_equal(fmt(&g.addresses[0]), "192.168.50.9/32");
    assert_string_equal(fmt(&g.addresses[1]), "fd08::2/128");
    refused(al, "CN=scanner", "the pool fd08::/126 is full");
    assert_int_equal(address_lease_held(al), 2);
    assert_int_equal(address_lease_release(al, "CN=scanner"), -1);
    assert_int_equal(address_lease_release(al, "CN=printer"), 0);
    assert_int_equal(address_lease_held(al), 0);
    assert_int_equal(address_lease_take(al, "CN=scanner", &g, err, sizeof(err)), 0);
    assert_string_equal(fmt(&g.addresses[0]), "192.168.50.10/32");
    assert_string_equal(fmt(&g.addresses[1]), "fd08::2/128");
    /* Only a fixed address, no pool of its family: that one alone. */
    address_lease_free(al);
    al = plan(8, 0, NULL, NULL);
    p = parsed("fd99::5");
    assert_int_equal(address_lease_add_fixed(al, "CN=alone", &p, err, sizeof(err)), 0);
    assert_int_equal(address_lease_take(al, "CN=alone", &g, err, sizeof(err)), 0);
    assert_int_equal(g.count, 1);
    assert_string_equal(fmt(&g.addresses[0]), "fd99::5/128");
    address_lease_free(al);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pool_skips_hub_and_edges),
        cmocka_unit_test(test_both_families),
        cmocka_unit_test(test_sticky_on_reconnect),
        cmocka_unit_test(test_sticky_is_bounded),
        cmocka_unit_test(test_full_pool_takes_released_not_held),
        cmocka_unit_test(test_capacity_refuses),
        cmocka_unit_test(test_fixed_addresses),
        cmocka_unit_test(test_no_address_for_identity),
        cmocka_unit_test(test_networks),
        cmocka_unit_test(test_pool_checks),
        cmocka_unit_test(test_churn),
        cmocka_unit_test(test_failed_take_takes_nothing),
        cmocka_unit_test(test_fixed_and_pool_mixed),
        cmocka_unit_test(test_given_addresses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
