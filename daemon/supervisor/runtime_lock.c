#include "supervisor/runtime_lock.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/log.h"

static int lock_fd = -1;
static char made_dir[4096];

/* "FILE:LINE: [global] runtime_dir:" for messages about it. */
static void where(const struct config *config, char *buf, size_t len)
{
    int line = config_global_key_line(config, "runtime_dir");
    char at[24] = "";
    if (line > 0)
        snprintf(at, sizeof(at), ":%d", line);
    snprintf(buf, len, "%s%s: [global] runtime_dir:", config->path, at);
}

/* The pid written in the lock file FD, or 0 when it holds none. */
static long holder_pid(int fd)
{
    char text[32];
    ssize_t got = pread(fd, text, sizeof(text) - 1, 0);
    if (got <= 0)
        return 0;
    text[got] = '\0';
    char *end;
    long pid = strtol(text, &end, 10);
    return end != text && pid > 0 ? pid : 0;
}

static void write_pid(int fd)
{
    char text[32];
    int len = snprintf(text, sizeof(text), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, text, (size_t)len, 0) != len)
        log_warning("runtime_dir: cannot write the pid into %s: %s", RUNTIME_LOCK_FILE,
                    strerror(errno));
}

int runtime_lock_take(const struct config *config)
{
    const char *dir = config->global.runtime_dir;
    char path[4200], at[4400];
    int fd = -1, result = -1;
    where(config, at, sizeof(at));
    if (mkdir(dir, 0750) == 0)
        snprintf(made_dir, sizeof(made_dir), "%s", dir);
    else if (errno != EEXIST) {
        log_error("%s %s: %s", at, dir, strerror(errno));
        goto out;
    }
    snprintf(path, sizeof(path), "%s/%s", dir, RUNTIME_LOCK_FILE);
    fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0644);
    if (fd < 0) {
        log_error("%s %s: %s", at, path, strerror(errno));
        goto out;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK) {
            log_error("%s %s: flock: %s", at, path, strerror(errno));
            goto out;
        }
        long pid = holder_pid(fd);
        char holder[48] = "another ktlstund";
        if (pid > 0)
            snprintf(holder, sizeof(holder), "ktlstund (pid %ld)", pid);
        log_error("%s runtime_dir %s is in use by %s; stop it or give this instance another "
                  "runtime_dir", at, dir, holder);
        goto out;
    }
    write_pid(fd);
    lock_fd = fd;
    fd = -1;
    result = 0;
out:
    if (fd >= 0)
        close(fd);
    return result;
}

void runtime_lock_close_in_child(void)
{
    if (lock_fd >= 0)
        close(lock_fd);
    lock_fd = -1;
}

int runtime_lock_made_dir(const char *dir)
{
    return made_dir[0] != '\0' && strcmp(made_dir, dir) == 0;
}
