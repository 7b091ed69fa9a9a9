#include "supervisor/daemonize.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/event_loop.h"
#include "core/log.h"

/* Log lines never hold a NUL byte (log.c formats them as strings): it marks "ready". */
#define READY_MARK '\0'
#define READY_WAIT_MS 60000

/* The child's end of the pipe to the waiting parent (its stderr), or -1. */
static int parent_link = -1;

static void quiet_stderr(void)
{
    int null_fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (null_fd >= 0) {
        dup2(null_fd, STDERR_FILENO);
        close(null_fd);
    }
}

/* What the child logged while starting, its last KEPT_MAX bytes: all of it when the
 * start fails; its warnings when it succeeds (what -t would warn about, as a start in
 * front shows them), not its notices (syslog has every line). */
#define KEPT_MAX ((size_t)64 * 1024)
static char kept[KEPT_MAX];
static size_t kept_len;

static void keep(const char *text, size_t len)
{
    if (len > KEPT_MAX) {
        text += len - KEPT_MAX;
        len = KEPT_MAX;
    }
    if (kept_len + len > KEPT_MAX) {
        size_t drop = kept_len + len - KEPT_MAX;
        memmove(kept, kept + drop, kept_len - drop);
        kept_len -= drop;
    }
    memcpy(kept + kept_len, text, len);
    kept_len += len;
}

static void show_kept(void)
{
    if (fwrite(kept, 1, kept_len, stderr) != kept_len)
        clearerr(stderr);
}

/* Prints the kept lines logged as warnings or errors ("ktlstund[PID]: warning: "). */
static void show_kept_warnings(void)
{
    size_t start = 0;
    while (start < kept_len) {
        const char *line = kept + start;
        const char *end = memchr(line, '\n', kept_len - start);
        size_t len = end != NULL ? (size_t)(end - line) + 1 : kept_len - start;
        const char *level = memmem(line, len, "]: ", 3);
        if (level != NULL && ((size_t)(line + len - level) > 12) &&
            (strncmp(level + 3, "warning: ", 9) == 0 || strncmp(level + 3, "error: ", 7) == 0) &&
            fwrite(line, 1, len, stderr) != len)
            clearerr(stderr);
        start += len;
    }
}

/* Exits with what the child's start came to: 0 once it says it is ready. */
__attribute__((noreturn)) static void wait_for_child(pid_t child, int from_child)
{
    char buf[4096];
    uint64_t deadline = event_loop_now_ms() + READY_WAIT_MS;
    for (;;) {
        uint64_t now = event_loop_now_ms();
        if (now >= deadline) {
            show_kept();
            fprintf(stderr, "ktlstund: not ready after %d s; it goes on starting in the "
                    "background (pid %d): see the system log\n", READY_WAIT_MS / 1000,
                    (int)child);
            _exit(EXIT_FAILURE);
        }
        struct pollfd pfd = { .fd = from_child, .events = POLLIN };
        int ready = poll(&pfd, 1, (int)(deadline - now));
        if (ready < 0 && errno != EINTR)
            break;
        if (ready <= 0)
            continue;
        ssize_t got = read(from_child, buf, sizeof(buf));
        if (got < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (got <= 0)
            break;
        char *mark = memchr(buf, READY_MARK, (size_t)got);
        keep(buf, mark != NULL ? (size_t)(mark - buf) : (size_t)got);
        if (mark != NULL) {
            show_kept_warnings();
            _exit(EXIT_SUCCESS);
        }
    }
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        continue;
    show_kept();
    if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
        _exit(WEXITSTATUS(status));
    if (WIFSIGNALED(status))
        fprintf(stderr, "ktlstund: killed by signal %d before it was ready\n", WTERMSIG(status));
    else
        fprintf(stderr, "ktlstund: stopped before it was ready\n");
    _exit(EXIT_FAILURE);
}

int daemonize_detach(void)
{
    int result = -1;
    int link[2];
    if (pipe2(link, O_CLOEXEC) < 0) {
        log_error("pipe: %s", strerror(errno));
        goto out;
    }
    pid_t pid = fork();
    if (pid < 0) {
        log_error("fork: %s", strerror(errno));
        close(link[0]);
        close(link[1]);
        goto out;
    }
    if (pid > 0) {
        close(link[1]);
        wait_for_child(pid, link[0]);
    }
    close(link[0]);
    setsid();
    int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (null_fd >= 0) {
        dup2(null_fd, STDIN_FILENO);
        dup2(null_fd, STDOUT_FILENO);
        close(null_fd);
    }
    /* Start-up lines reach whoever started the daemon; syslog has them all. */
    dup2(link[1], STDERR_FILENO);
    close(link[1]);
    parent_link = STDERR_FILENO;
    log_use_syslog();
    log_mirror_to_stderr(1);
    result = 0;
out:
    return result;
}

void daemonize_ready(void)
{
    if (parent_link < 0)
        return;
    char mark = READY_MARK;
    ssize_t ignored = write(parent_link, &mark, 1);
    (void)ignored;
    daemonize_forget();
}

void daemonize_forget(void)
{
    if (parent_link < 0)
        return;
    log_mirror_to_stderr(0);
    quiet_stderr();
    parent_link = -1;
}
