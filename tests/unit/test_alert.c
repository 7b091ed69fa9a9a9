/* alert: the lock line fail2ban matches, alert_command's environment, and that the
 * command really runs without a shell or the daemon's environment. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "helper/alert.h"
#include "core/utc_time.h"
#include "core/log.h"

static const struct alert_event lock = {
    .kind = ALERT_IDENTITY_LOCKED, .tunnel = "vpn", .identity = "Alice \"A\" Smith",
    .user = "alice", .source = "192.0.2.7", .failures = 5, .level = 2, .until = 1700000600,
};

static void test_time_format(void **state)
{
    (void)state;
    char buf[32];
    assert_string_equal(utc_time_format(1700000600, buf, sizeof(buf)), "2023-11-14T22:23:20Z");
    assert_string_equal(utc_time_format(0, buf, sizeof(buf)), "1970-01-01T00:00:00Z");
}

static void test_lock_line(void **state)
{
    (void)state;
    char line[1024];
    assert_string_equal(alert_format(&lock, line, sizeof(line)),
                        "second-factor lock: tunnel=vpn identity=\"Alice \\\"A\\\" Smith\" user=alice "
                        "source=192.0.2.7 failures=5 locked_until=2023-11-14T22:23:20Z lock=identity "
                        "level=2");
    struct alert_event source_lock = lock;
    source_lock.kind = ALERT_SOURCE_LOCKED;
    source_lock.user = "";
    source_lock.identity = "bob\nX";
    alert_format(&source_lock, line, sizeof(line));
    assert_non_null(strstr(line, "identity=\"bob X\" user=- source=192.0.2.7"));
    assert_non_null(strstr(line, "lock=source"));
    assert_null(strchr(line, '\n'));
    struct alert_event user_lock = lock;
    user_lock.kind = ALERT_USER_LOCKED;
    alert_format(&user_lock, line, sizeof(line));
    assert_non_null(strstr(line, "user=alice source=192.0.2.7 failures=5 "));
    assert_non_null(strstr(line, " lock=user level=2"));
    char env[16][ALERT_ENV_ENTRY_LEN];
    size_t n = alert_environment(&user_lock, env, 16);
    int kind_seen = 0;
    for (size_t i = 0; i < n; i++)
        kind_seen |= strcmp(env[i], "KTLSTUN_LOCK_KIND=user") == 0;
    assert_true(kind_seen);
    struct alert_event handshakes = { .kind = ALERT_HANDSHAKE_FAILURES, .tunnel = "vpn",
                                      .identity = "", .user = "", .source = "2001:db8::9",
                                      .failures = 20, .level = 1, .until = 1700000600 };
    assert_string_equal(alert_format(&handshakes, line, sizeof(line)),
                        "handshake-failure alert: tunnel=vpn source=2001:db8::9 failures=20 "
                        "quiet_until=2023-11-14T22:23:20Z level=1");
}

static void test_environment(void **state)
{
    (void)state;
    char env[16][ALERT_ENV_ENTRY_LEN];
    size_t n = alert_environment(&lock, env, 16);
    static const char *const expected[] = {
        "KTLSTUN_EVENT=lock", "KTLSTUN_LOCK_KIND=identity", "KTLSTUN_TUNNEL=vpn",
        "KTLSTUN_IDENTITY=Alice \"A\" Smith", "KTLSTUN_USER=alice",
        "KTLSTUN_SOURCE_ADDRESS=192.0.2.7", "KTLSTUN_FAILURES=5",
        "KTLSTUN_LOCKED_UNTIL=2023-11-14T22:23:20Z", "KTLSTUN_LOCKED_UNTIL_EPOCH=1700000600",
        "KTLSTUN_LOCK_LEVEL=2",
    };
    for (size_t e = 0; e < sizeof(expected) / sizeof(expected[0]); e++) {
        int found = 0;
        for (size_t i = 0; i < n && !found; i++)
            found = strcmp(env[i], expected[e]) == 0;
        if (!found)
            fail_msg("environment lacks %s", expected[e]);
    }
    assert_true(strncmp(env[0], "PATH=", 5) == 0);
    /* Never more than the room given. */
    assert_int_equal(alert_environment(&lock, env, 3), 3);
}

static void test_command_runs_without_shell_or_daemon_environment(void **state)
{
    (void)state;
    char out[] = "/tmp/ktlstun-alert-test.XXXXXX";
    int fd = mkstemp(out);
    assert_true(fd >= 0);
    close(fd);
    setenv("KTLSTUN_TEST_SECRET", "must-not-leak", 1);
    char script[256];
    snprintf(script, sizeof(script), "env > %s; printf '%%s|' \"$@\" >> %s", out, out);
    struct string_list command = { 0 };
    assert_int_equal(string_list_append(&command, "/bin/sh", 7), 0);
    assert_int_equal(string_list_append(&command, "-c", 2), 0);
    assert_int_equal(string_list_append(&command, script, strlen(script)), 0);
    assert_int_equal(string_list_append(&command, "sh", 2), 0);
    assert_int_equal(string_list_append(&command, "a b", 3), 0);
    assert_int_equal(string_list_append(&command, "$HOME;", 6), 0);
    pid_t pid = alert_run_command(&command, &lock);
    assert_true(pid > 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    FILE *file = fopen(out, "r");
    assert_non_null(file);
    char content[8192];
    size_t len = fread(content, 1, sizeof(content) - 1, file);
    content[len] = '\0';
    fclose(file);
    unlink(out);
    assert_non_null(strstr(content, "KTLSTUN_IDENTITY=Alice \"A\" Smith\n"));
    assert_non_null(strstr(content, "KTLSTUN_SOURCE_ADDRESS=192.0.2.7\n"));
    assert_null(strstr(content, "must-not-leak"));
    /* Arguments arrive as written: no splitting, no expansion. */
    assert_non_null(strstr(content, "a b|$HOME;|"));
    string_list_clear(&command);
    unsetenv("KTLSTUN_TEST_SECRET");
}

static void test_missing_command_fails_in_the_child(void **state)
{
    (void)state;
    struct string_list command = { 0 };
    assert_int_equal(string_list_append(&command, "/nonexistent/alert", 18), 0);
    pid_t pid = alert_run_command(&command, &lock);
    assert_true(pid > 0);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 127);
    string_list_clear(&command);
    struct string_list empty = { 0 };
    assert_int_equal(alert_run_command(&empty, &lock), -1);
}

int main(void)
{
    log_init("test_alert", LOG_LEVEL_ERROR);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_time_format),
        cmocka_unit_test(test_lock_line),
        cmocka_unit_test(test_environment),
        cmocka_unit_test(test_command_runs_without_shell_or_daemon_environment),
        cmocka_unit_test(test_missing_command_fails_in_the_child),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
