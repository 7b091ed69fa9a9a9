#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/un.h>

#include <cmocka.h>

#include "core/limits.h"
#include "worker/source_table.h"

#define T0 5000000u

static int setup(void **state)
{
    void *memory = calloc(1, source_table_size());
    if (memory == NULL || source_table_init(memory, 0x1234abcdULL) == NULL)
        return -1;
    *state = memory;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static struct source_key v4(const char *text)
{
    struct sockaddr_in in = { .sin_family = AF_INET };
    struct source_key key;
    assert_int_equal(inet_pton(AF_INET, text, &in.sin_addr), 1);
    assert_int_equal(source_key_from_sockaddr((struct sockaddr *)&in, sizeof(in), &key), 0);
    return key;
}

static struct source_key v6(const char *text)
{
    struct sockaddr_in6 in6 = { .sin6_family = AF_INET6 };
    struct source_key key;
    assert_int_equal(inet_pton(AF_INET6, text, &in6.sin6_addr), 1);
    assert_int_equal(source_key_from_sockaddr((struct sockaddr *)&in6, sizeof(in6), &key), 0);
    return key;
}

/* The Nth of many distinct IPv4 sources. */
static struct source_key nth(uint32_t n)
{
    struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x0a000000u + n) };
    struct source_key key;
    source_key_from_sockaddr((struct sockaddr *)&in, sizeof(in), &key);
    return key;
}

static void test_keys(void **state)
{
    (void)state;
    struct source_key a = v4("192.0.2.7"), b = v4("192.0.2.8");
    assert_memory_not_equal(&a, &b, sizeof(a));
    /* A client on a dual-stack listener is its IPv4 address. */
    struct source_key mapped = v6("::ffff:192.0.2.7");
    assert_memory_equal(&a, &mapped, sizeof(a));
    /* One /64 is one source; the next /64 is another. */
    struct source_key h1 = v6("2001:db8:1:2::1"), h2 = v6("2001:db8:1:2:ffff:ffff:ffff:ffff");
    struct source_key other = v6("2001:db8:1:3::1");
    assert_memory_equal(&h1, &h2, sizeof(h1));
    assert_memory_not_equal(&h1, &other, sizeof(h1));
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    struct source_key none;
    assert_int_equal(source_key_from_sockaddr((struct sockaddr *)&un, sizeof(un), &none), -1);
}

static void test_concurrent_cap_per_source(void **state)
{
    struct source_table *table = *state;
    const struct source_policy policy = { .max_connections = 3 };
    struct source_key a = v4("192.0.2.1"), b = v4("192.0.2.2");
    for (int i = 0; i < 3; i++)
        assert_int_equal(source_table_acquire(table, 0, 1, &a, &policy, T0), SOURCE_ADMITTED);
    assert_int_equal(source_table_acquire(table, 0, 1, &a, &policy, T0), SOURCE_TOO_MANY);
    assert_int_equal(source_table_connections(table, 1, &a), 3);
    /* Another source, and the same source on another tunnel, are not affected. */
    assert_int_equal(source_table_acquire(table, 0, 1, &b, &policy, T0), SOURCE_ADMITTED);
    assert_int_equal(source_table_acquire(table, 0, 2, &a, &policy, T0), SOURCE_ADMITTED);
    source_table_release(table, 0, 1, &a);
    assert_int_equal(source_table_connections(table, 1, &a), 2);
    assert_int_equal(source_table_acquire(table, 0, 1, &a, &policy, T0), SOURCE_ADMITTED);
}

static void test_cap_counts_every_worker(void **state)
{
    struct source_table *table = *state;
    const struct source_policy policy = { .max_connections = 4 };
    struct source_key a = v6("2001:db8::1");
    assert_int_equal(source_table_acquire(table, 0, 0, &a, &policy, T0), SOURCE_ADMITTED);
    assert_int_equal(source_table_acquire(table, 0, 0, &a, &policy, T0), SOURCE_ADMITTED);
    assert_int_equal(source_table_acquire(table, 3, 0, &a, &policy, T0), SOURCE_ADMITTED);
    struct source_key same64 = v6("2001:db8::2");
    assert_int_equal(source_table_acquire(table, 7, 0, &same64, &policy, T0), SOURCE_ADMITTED);
    assert_int_equal(source_table_acquire(table, 7, 0, &a, &policy, T0), SOURCE_TOO_MANY);
    /* Worker 0 died: its two are forgotten, the others stay. */
    source_table_forget_worker(table, 0);
    assert_int_equal(source_table_connections(table, 0, &a), 2);
    assert_int_equal(source_table_acquire(table, 7, 0, &a, &policy, T0), SOURCE_ADMITTED);
    assert_int_equal(source_table_acquire(table, 7, 0, &a, &policy, T0), SOURCE_ADMITTED);
    assert_int_equal(source_table_acquire(table, 3, 0, &a, &policy, T0), SOURCE_TOO_MANY);
}

static void test_rate_and_burst(void **state)
{
    struct source_table *table = *state;
    const struct source_policy policy = { .rate = 10, .burst = 5 };
    struct source_key a = v4("198.51.100.9"), b = v4("198.51.100.10");
    for (int i = 0; i < 5; i++)
        assert_int_equal(source_table_acquire(table, 0, 0, &a, &policy, T0), SOURCE_ADMITTED);
    assert_int_equal(source_table_acquire(table, 0, 0, &a, &policy, T0), SOURCE_TOO_FAST);
    assert_int_equal(source_table_acquire(table, 0, 0, &b, &policy, T0), SOURCE_ADMITTED);
    /* A token every 100 ms. */
    assert_int_equal(source_table_acquire(table, 0, 0, &a, &policy, T0 + 99), SOURCE_TOO_FAST);
    assert_int_equal(source_table_acquire(table, 0, 0, &a, &policy, T0 + 100), SOURCE_ADMITTED);
    assert_int_equal(source_table_acquire(table, 0, 0, &a, &policy, T0 + 150), SOURCE_TOO_FAST);
    /* A long pause refills the bucket to the burst, no further. */
    int admitted = 0;
    while (source_table_acquire(table, 0, 0, &a, &policy, T0 + 60000) == SOURCE_ADMITTED)
        admitted++;
    assert_int_equal(admitted, 5);
    /* Connections ending give no tokens back. */
    for (int i = 0; i < 11; i++)
        source_table_release(table, 0, 0, &a);
    assert_int_equal(source_table_connections(table, 0, &a), 0);
    assert_int_equal(source_table_acquire(table, 0, 0, &a, &policy, T0 + 60000), SOURCE_TOO_FAST);
}

static void test_refused_for_connections_costs_no_token(void **state)
{
    struct source_table *table = *state;
    const struct source_policy policy = { .max_connections = 1, .rate = 1, .burst = 2 };
    struct source_key a = v4("203.0.113.5");
    assert_int_equal(source_table_acquire(table, 0, 0, &a, &policy, T0), SOURCE_ADMITTED);
    for (int i = 0; i < 10; i++)
        assert_int_equal(source_table_acquire(table, 0, 0, &a, &policy, T0), SOURCE_TOO_MANY);
    source_table_release(table, 0, 0, &a);
    assert_int_equal(source_table_acquire(table, 0, 0, &a, &policy, T0), SOURCE_ADMITTED);
}

/* One source whose connections landed on every worker there can be (draining workers of
 * many reloads, or one worker per core on a large machine) still gets in below its cap,
 * with a rate limit on too. */
static void test_one_source_on_every_worker(void **state)
{
    struct source_table *table = *state;
    const struct source_policy policy = { .max_connections = 100000, .rate = 1000000, .burst = 1000000 };
    struct source_key a = v4("192.0.2.7");
    for (int worker = 0; worker < LIMIT_WORKER_SLOTS; worker++)
        assert_int_equal(source_table_acquire(table, worker, 0, &a, &policy, T0), SOURCE_ADMITTED);
    assert_int_equal(source_table_connections(table, 0, &a), LIMIT_WORKER_SLOTS);
    for (int worker = 0; worker < LIMIT_WORKER_SLOTS; worker++)
        source_table_release(table, worker, 0, &a);
    assert_int_equal(source_table_connections(table, 0, &a), 0);
}

static void test_full_table_refuses_new_sources(void **state)
{
    struct source_table *table = *state;
    const struct source_policy policy = { .max_connections = 2 };
    uint32_t admitted = 0, full = 0;
    for (uint32_t n = 0; n < SOURCE_TABLE_SLOTS + 1000; n++) {
        struct source_key key = nth(n);
        enum source_verdict verdict = source_table_acquire(table, 0, 0, &key, &policy, T0);
        if (verdict == SOURCE_ADMITTED) {
            admitted++;
        } else {
            assert_int_equal(verdict, SOURCE_TABLE_FULL);
            /* Fail closed: a source refused for want of room is not let in uncounted. */
            assert_int_equal(source_table_connections(table, 0, &key), 0);
            full++;
        }
    }
    assert_true(admitted <= SOURCE_TABLE_SLOTS);
    assert_true(admitted > SOURCE_TABLE_SLOTS / 2);
    assert_true(full >= 1000);
    /* A source already in keeps its count and its limit. */
    struct source_key first = nth(0);
    assert_int_equal(source_table_acquire(table, 0, 0, &first, &policy, T0), SOURCE_ADMITTED);
    assert_int_equal(source_table_acquire(table, 0, 0, &first, &policy, T0), SOURCE_TOO_MANY);
    /* Once they are gone, there is room again. */
    source_table_forget_worker(table, 0);
    struct source_key late = nth(SOURCE_TABLE_SLOTS + 5000);
    assert_int_equal(source_table_acquire(table, 1, 0, &late, &policy, T0), SOURCE_ADMITTED);
}

static void test_refilled_buckets_make_room(void **state)
{
    struct source_table *table = *state;
    const struct source_policy policy = { .rate = 100, .burst = 10 };
    for (uint32_t n = 0; n < SOURCE_TABLE_SLOTS; n++) {
        struct source_key key = nth(n);
        if (source_table_acquire(table, 0, 0, &key, &policy, T0) == SOURCE_ADMITTED)
            source_table_release(table, 0, 0, &key);
    }
    /* The buckets are still short of a token each: the table is as full as it gets. */
    uint32_t full = 0;
    for (uint32_t n = SOURCE_TABLE_SLOTS; n < SOURCE_TABLE_SLOTS + 200; n++) {
        struct source_key key = nth(n);
        full += source_table_acquire(table, 0, 0, &key, &policy, T0) == SOURCE_TABLE_FULL;
    }
    assert_true(full > 0);
    /* 10 ms later each has its token back: its slot is anyone's. */
    for (uint32_t n = SOURCE_TABLE_SLOTS; n < SOURCE_TABLE_SLOTS + 200; n++) {
        struct source_key key = nth(n);
        assert_int_equal(source_table_acquire(table, 0, 0, &key, &policy, T0 + 10), SOURCE_ADMITTED);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys),
        cmocka_unit_test_setup_teardown(test_concurrent_cap_per_source, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cap_counts_every_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rate_and_burst, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_for_connections_costs_no_token, setup, teardown),
        cmocka_unit_test_setup_teardown(test_one_source_on_every_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(test_full_table_refuses_new_sources, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refilled_buckets_make_room, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
