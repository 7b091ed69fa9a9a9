#include "helper/alert.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "proto/login_log.h"
#include "core/log.h"
#include "core/message_ids.h"
#include "core/utc_time.h"
#include "core/signals.h"
#include "core/text.h"

#define ALERT_ENV_MAX 16
#define ALERT_ARGV_MAX 64

static const char *kind_name(enum alert_kind kind)
{
    switch (kind) {
    case ALERT_SOURCE_LOCKED:
        return "source";
    case ALERT_USER_LOCKED:
        return "user";
    case ALERT_HANDSHAKE_FAILURES:
        return "handshake";
    case ALERT_IDENTITY_LOCKED:
    default:
        return "identity";
    }
}

char *alert_format(const struct alert_event *event, char *buf, size_t len)
{
    char until[32], identity[600];
    utc_time_format(event->until, until, sizeof(until));
    if (event->kind == ALERT_HANDSHAKE_FAILURES) {
        snprintf(buf, len, "handshake-failure alert: tunnel=%s source=%s failures=%u "
                 "quiet_until=%s level=%u", event->tunnel, event->source, event->failures, until,
                 event->level);
    } else {
        snprintf(buf, len, "second-factor lock: tunnel=%s identity=\"%s\" user=%s source=%s "
                 "failures=%u locked_until=%s lock=%s level=%u", event->tunnel,
                 text_log_quote(event->identity, identity, sizeof(identity)),
                 event->user[0] ? event->user : "-", event->source, event->failures, until,
                 kind_name(event->kind), event->level);
    }
    return buf;
}

void alert_log(const struct alert_event *event)
{
    char line[1400], until[32], failures[16], level[16];
    alert_format(event, line, sizeof(line));
    utc_time_format(event->until, until, sizeof(until));
    snprintf(failures, sizeof(failures), "%u", event->failures);
    snprintf(level, sizeof(level), "%u", event->level);
    const struct log_field fields[] = {
        { "TUNNEL", event->tunnel },
        { "IDENTITY", event->identity },
        { "USER", event->user },
        { "SOURCE_ADDRESS", event->source },
        { "FAILURES", failures },
        { "LOCKED_UNTIL", until },
        { "LOCK_KIND", kind_name(event->kind) },
        { "LOCK_LEVEL", level },
    };
    log_event(LOG_LEVEL_WARNING,
              event->kind == ALERT_HANDSHAKE_FAILURES ? MESSAGE_ID_HANDSHAKE_FAILURES
                                                      : MESSAGE_ID_LOGIN_LOCKED,
              fields, sizeof(fields) / sizeof(fields[0]), "%s", line);
}

size_t alert_environment(const struct alert_event *event, char (*env)[ALERT_ENV_ENTRY_LEN], size_t max)
{
    char until[32], line[1400];
    size_t n = 0;
    utc_time_format(event->until, until, sizeof(until));
    alert_format(event, line, sizeof(line));
#define PUT(...)                                         \
    do {                                                 \
        if (n < max)                                     \
            snprintf(env[n++], sizeof(env[0]), __VA_ARGS__); \
    } while (0)
    PUT("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
    PUT("KTLSTUN_EVENT=%s", event->kind == ALERT_HANDSHAKE_FAILURES ? "handshake-failures" : "lock");
    PUT("KTLSTUN_LOCK_KIND=%s", kind_name(event->kind));
    PUT("KTLSTUN_TUNNEL=%s", event->tunnel);
    PUT("KTLSTUN_IDENTITY=%s", event->identity);
    PUT("KTLSTUN_USER=%s", event->user);
    PUT("KTLSTUN_SOURCE_ADDRESS=%s", event->source);
    PUT("KTLSTUN_FAILURES=%u", event->failures);
    PUT("KTLSTUN_LOCKED_UNTIL=%s", until);
    PUT("KTLSTUN_LOCKED_UNTIL_EPOCH=%lld", (long long)event->until);
    PUT("KTLSTUN_LOCK_LEVEL=%u", event->level);
    PUT("KTLSTUN_MESSAGE=%s", line);
#undef PUT
    return n;
}

pid_t alert_run_command(const struct string_list *command, const struct alert_event *event)
{
    char env_storage[ALERT_ENV_MAX][ALERT_ENV_ENTRY_LEN];
    char *envp[ALERT_ENV_MAX + 1];
    size_t count = alert_environment(event, env_storage, ALERT_ENV_MAX);
    for (size_t i = 0; i < count; i++)
        envp[i] = env_storage[i];
    envp[count] = NULL;
    /* execve wants a NULL-terminated argv; the list is not. */
    char *argv[ALERT_ARGV_MAX + 1];
    if (command->count == 0 || command->count > ALERT_ARGV_MAX) {
        log_error("alert_command: %zu arguments (at most %d)", command->count, ALERT_ARGV_MAX);
        return -1;
    }
    for (size_t i = 0; i < command->count; i++)
        argv[i] = command->items[i];
    argv[command->count] = NULL;

    pid_t pid = fork();
    if (pid < 0) {
        log_error("alert_command %s: fork: %s", command->items[0], strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* Its own group, so a timeout kills whatever it started too. */
        setpgid(0, 0);
        signals_reset_in_child();
        int null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (null_fd >= 0 && null_fd != STDIN_FILENO)
            dup2(null_fd, STDIN_FILENO);
        closefrom(STDERR_FILENO + 1);
        execve(argv[0], argv, envp);
        dprintf(STDERR_FILENO, "ktlstund: alert_command %s: %s\n", command->items[0],
                strerror(errno));
        _exit(127);
    }
    log_info("alert_command %s started (pid %d) for %s", command->items[0], (int)pid,
             event->kind == ALERT_HANDSHAKE_FAILURES ? "handshake failures" : "a lock");
    return pid;
}
