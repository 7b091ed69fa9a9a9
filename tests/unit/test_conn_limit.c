#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "worker/conn_limit.h"

#define WORKERS 4
#define ROUNDS 200000
#define MAX 10

/* Four processes take and give back connections on one tunnel as fast as they can;
 * whoever is admitted looks at the total at once. It must never be past MAX. */
static void test_max_exact_across_workers(void **state)
{
    (void)state;
    struct conn_limit *limit = conn_limit_create();
    assert_non_null(limit);
    int fresh;
    int tunnel = conn_limit_tunnel_slot(limit, "t", &fresh);
    assert_int_equal(tunnel, 0);
    _Atomic uint64_t *shared = mmap(NULL, 2 * sizeof(*shared), PROT_READ | PROT_WRITE,
                                    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    assert_true(shared != MAP_FAILED);
    _Atomic uint64_t *worst = &shared[0], *go = &shared[1];
    atomic_store(worst, 0);
    atomic_store(go, 0);
    pid_t pids[WORKERS];
    for (int w = 0; w < WORKERS; w++) {
        int slot = conn_limit_take_worker_slot(limit);
        pids[w] = fork();
        assert_true(pids[w] >= 0);
        if (pids[w] == 0) {
            while (!atomic_load(go))
                ;
            /* Each may hold the whole limit, so the total sits at it and they race. */
            int held = 0;
            for (int i = 0; i < ROUNDS; i++) {
                if (conn_limit_acquire(limit, slot, tunnel, MAX)) {
                    uint64_t seen = conn_limit_count(limit, tunnel);
                    uint64_t prev = atomic_load(worst);
                    while (seen > prev && !atomic_compare_exchange_weak(worst, &prev, seen))
                        ;
                    held++;
                }
                if (held >= MAX || (held > 0 && i % 5 == 0)) {
                    conn_limit_release(limit, slot, tunnel);
                    held--;
                }
            }
            while (held-- > 0)
                conn_limit_release(limit, slot, tunnel);
            _exit(0);
        }
    }
    atomic_store(go, 1);
    for (int w = 0; w < WORKERS; w++) {
        int status;
        assert_int_equal(waitpid(pids[w], &status, 0), pids[w]);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    print_message("highest total seen: %llu (limit %d)\n", (unsigned long long)atomic_load(worst), MAX);
    assert_true(atomic_load(worst) <= MAX);
    assert_int_equal(atomic_load(worst), MAX);
    assert_int_equal(conn_limit_count(limit, tunnel), 0);
    munmap(shared, 2 * sizeof(*shared));
    conn_limit_free(limit);
}

static void test_dead_worker_forgotten(void **state)
{
    (void)state;
    struct conn_limit *limit = conn_limit_create();
    assert_non_null(limit);
    int fresh;
    int tunnel = conn_limit_tunnel_slot(limit, "t", &fresh);
    int a = conn_limit_take_worker_slot(limit), b = conn_limit_take_worker_slot(limit);
    for (int i = 0; i < 3; i++)
        assert_int_equal(conn_limit_acquire(limit, a, tunnel, 5), 1);
    assert_int_equal(conn_limit_acquire(limit, b, tunnel, 5), 1);
    assert_int_equal(conn_limit_acquire(limit, b, tunnel, 5), 1);
    assert_int_equal(conn_limit_acquire(limit, b, tunnel, 5), 0);
    conn_limit_release_worker_slot(limit, a);
    assert_int_equal(conn_limit_count(limit, tunnel), 2);
    assert_int_equal(conn_limit_acquire(limit, b, tunnel, 5), 1);
    /* A release with nothing held changes nothing. */
    conn_limit_release(limit, a, tunnel);
    assert_int_equal(conn_limit_count(limit, tunnel), 3);
    conn_limit_free(limit);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_max_exact_across_workers),
        cmocka_unit_test(test_dead_worker_forgotten),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
