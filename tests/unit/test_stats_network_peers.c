/* stats: the network peer table the metrics show: a row per live network connection,
 * its deltas added to the tunnel's totals once, rows of a dead worker given back, and
 * a full table refusing a row rather than overwriting one. */
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

static struct stats_network_peer peer(int slot, const char *cn, uint64_t in, uint64_t out,
                                      uint64_t forged)
{
    struct stats_network_peer p;
    memset(&p, 0, sizeof(p));
    p.slot = slot;
    snprintf(p.identity, sizeof(p.identity), "%s", cn);
    snprintf(p.address, sizeof(p.address), "10.8.0.2/24");
    snprintf(p.device, sizeof(p.device), "ktlhub.1");
    p.packets_in = in;
    p.packets_out = out;
    p.dropped_source = forged;
    return p;
}

static void test_rows_and_totals(void **state)
{
    (void)state;
    struct stats *stats = stats_create();
    assert_non_null(stats);
    struct stats_network_peer p = peer(2, "site-b", 5, 7, 0);
    int row = stats_network_peer_open(stats, &p);
    assert_true(row >= 0);
    assert_int_equal(stats_network_packets(stats, 2, 0), 5);
    assert_int_equal(stats_network_packets(stats, 2, 1), 7);
    p = peer(2, "site-b", 15, 9, 3);
    stats_network_peer_update(stats, row, &p);
    stats_network_peer_update(stats, row, &p);   /* nothing moved: nothing added */
    assert_int_equal(stats_network_packets(stats, 2, 0), 15);
    assert_int_equal(stats_network_packets(stats, 2, 1), 9);
    assert_int_equal(stats_network_dropped(stats, 2, 0), 3);
    struct stats_network_peer out;
    assert_int_equal(stats_network_peer_read(stats, row, &out), 1);
    assert_string_equal(out.identity, "site-b");
    assert_int_equal(out.packets_in, 15);
    assert_int_equal(out.dropped_source, 3);
    stats_network_peer_close(stats, row);
    assert_int_equal(stats_network_peer_read(stats, row, &out), 0);
    /* The totals keep what the connection moved. */
    assert_int_equal(stats_network_packets(stats, 2, 0), 15);
    /* A new peer in the same row starts from zero. */
    p = peer(2, "bob", 1, 1, 0);
    int again = stats_network_peer_open(stats, &p);
    assert_int_equal(again, row);
    assert_int_equal(stats_network_packets(stats, 2, 0), 16);
    stats_free(stats);
}

static void test_full_table_and_dead_worker(void **state)
{
    (void)state;
    struct stats *stats = stats_create();
    assert_non_null(stats);
    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        struct stats_network_peer p = peer(1, "child", 1, 1, 0);
        for (int i = 0; i < STATS_NETWORK_PEERS; i++)
            if (stats_network_peer_open(stats, &p) != i)
                _exit(1);
        _exit(stats_network_peer_open(stats, &p) == -1 ? 0 : 2);
    }
    int status;
    assert_int_equal(waitpid(child, &status, 0), child);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    struct stats_network_peer p = peer(1, "parent", 1, 1, 0);
    assert_int_equal(stats_network_peer_open(stats, &p), -1);
    stats_network_peers_forget(stats, (int)child);
    struct stats_network_peer out;
    assert_int_equal(stats_network_peer_read(stats, 0, &out), 0);
    assert_int_equal(stats_network_peer_open(stats, &p), 0);
    stats_free(stats);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rows_and_totals),
        cmocka_unit_test(test_full_table_and_dead_worker),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
