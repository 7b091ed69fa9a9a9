/* seqlock: a reader gets a consistent copy, gives up on a writer that died inside
 * instead of spinning, and the next writer repairs what the dead one left. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/seqlock.h"

struct guarded {
    struct seqlock lock;
    uint64_t a, b;   /* the writer keeps b == ~a */
};

static void test_read_after_write(void **state)
{
    (void)state;
    struct guarded g = { .a = 0, .b = ~0ULL };
    seqlock_write_begin(&g.lock);
    g.a = 42;
    g.b = ~42ULL;
    seqlock_write_end(&g.lock);
    uint64_t copy[2];
    assert_int_equal(seqlock_read(&g.lock, &g.a, copy, sizeof(copy)), 0);
    assert_int_equal(copy[0], 42);
    assert_int_equal(copy[1], ~42ULL);
    assert_false(seqlock_was_abandoned(&g.lock));
}

/* A writer that died between begin and end: readers return -1 in bounded time. */
static void test_dead_writer_gives_up(void **state)
{
    (void)state;
    struct guarded g = { .a = 1, .b = ~1ULL };
    seqlock_write_begin(&g.lock);
    g.a = 7;   /* ... and the writer is gone */
    uint64_t copy[2];
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(seqlock_read(&g.lock, &g.a, copy, sizeof(copy)), -1);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    assert_true(t1.tv_sec - t0.tv_sec < 5);
    assert_true(seqlock_was_abandoned(&g.lock));
    /* The next writer takes over: the data is consistent again. */
    seqlock_write_begin(&g.lock);
    g.a = 9;
    g.b = ~9ULL;
    seqlock_write_end(&g.lock);
    assert_false(seqlock_was_abandoned(&g.lock));
    assert_int_equal(seqlock_read(&g.lock, &g.a, copy, sizeof(copy)), 0);
    assert_int_equal(copy[0], 9);
    assert_int_equal(copy[1], ~9ULL);
}

/* A writer in another process rewriting all the time: every copy a reader accepts is
 * one the writer left whole. */
static void test_concurrent_writer_never_tears(void **state)
{
    (void)state;
    struct guarded *g = mmap(NULL, sizeof(*g), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                             -1, 0);
    assert_true(g != MAP_FAILED);
    memset(g, 0, sizeof(*g));
    g->b = ~0ULL;
    pid_t writer = fork();
    assert_true(writer >= 0);
    if (writer == 0) {
        for (uint64_t i = 1; i < 2000000; i++) {
            seqlock_write_begin(&g->lock);
            g->a = i;
            g->b = ~i;
            seqlock_write_end(&g->lock);
        }
        _exit(0);
    }
    unsigned accepted = 0;
    for (int i = 0; i < 200000; i++) {
        uint64_t copy[2];
        if (seqlock_read(&g->lock, &g->a, copy, sizeof(copy)) == 0) {
            assert_int_equal(copy[1], ~copy[0]);
            accepted++;
        }
    }
    int status;
    assert_int_equal(waitpid(writer, &status, 0), writer);
    assert_true(accepted > 0);
    munmap(g, sizeof(*g));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_read_after_write),
        cmocka_unit_test(test_dead_writer_gives_up),
        cmocka_unit_test(test_concurrent_writer_never_tears),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
