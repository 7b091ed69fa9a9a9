#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/config.h"
#include "core/log.h"
#include "supervisor/runtime_lock.h"

static char base[64];
static char run_dir[128];
static char lock_path[192];

static long pid_in_file(void)
{
    char text[32] = "";
    FILE *in = fopen(lock_path, "r");
    if (in != NULL) {
        if (fgets(text, sizeof(text), in) == NULL)
            text[0] = '\0';
        fclose(in);
    }
    return strtol(text, NULL, 10);
}

/* Removes the lock file, DIR and the test's base directory. */
static void remove_all(const char *dir)
{
    char path[192];
    snprintf(path, sizeof(path), "%s/%s", dir, RUNTIME_LOCK_FILE);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(rmdir(dir), 0);
    assert_int_equal(rmdir(base), 0);
}

/* Runs runtime_lock_take in a child (so its lock goes with it) and returns its result. */
static int take_in_child(struct config *config)
{
    pid_t pid = fork();
    if (pid == 0)
        _exit(runtime_lock_take(config) == 0 ? 0 : 1);
    int status = 0;
    waitpid(pid, &status, 0);
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

static void test_lock(void **state)
{
    (void)state;
    snprintf(base, sizeof(base), "/tmp/ktlstun-lock-test-XXXXXX");
    assert_non_null(mkdtemp(base));
    snprintf(run_dir, sizeof(run_dir), "%s/run", base);
    snprintf(lock_path, sizeof(lock_path), "%s/%s", run_dir, RUNTIME_LOCK_FILE);
    struct config config = { .path = (char *)"test.ini" };
    config.global.runtime_dir = run_dir;

    /* A stale file (no lock held, a pid long gone) does not block. */
    assert_int_equal(take_in_child(&config), 0);
    assert_int_equal(access(lock_path, F_OK), 0);
    FILE *out = fopen(lock_path, "w");
    assert_non_null(out);
    fprintf(out, "999999\n");
    fclose(out);

    assert_int_equal(runtime_lock_take(&config), 0);
    assert_int_equal(pid_in_file(), (long)getpid());
    /* Held: another process is refused, and the file keeps the holder's pid. */
    assert_int_equal(take_in_child(&config), -1);
    assert_int_equal(pid_in_file(), (long)getpid());
    /* Let go (as in a forked worker): the next one takes it. */
    runtime_lock_close_in_child();
    assert_int_equal(take_in_child(&config), 0);

    remove_all(run_dir);
}

static void test_made_dir(void **state)
{
    (void)state;
    snprintf(base, sizeof(base), "/tmp/ktlstun-lock-test-XXXXXX");
    assert_non_null(mkdtemp(base));
    snprintf(run_dir, sizeof(run_dir), "%s/new", base);
    struct config config = { .path = (char *)"test.ini" };
    config.global.runtime_dir = run_dir;
    assert_int_equal(runtime_lock_take(&config), 0);
    struct stat info;
    assert_int_equal(stat(run_dir, &info), 0);
    assert_true(S_ISDIR(info.st_mode));
    assert_true(runtime_lock_made_dir(run_dir));
    assert_false(runtime_lock_made_dir("/run"));
    runtime_lock_close_in_child();
    remove_all(run_dir);
}

int main(void)
{
    log_init("test_runtime_lock", LOG_LEVEL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lock),
        cmocka_unit_test(test_made_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
