#include "supervisor/systemd_sockets.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <systemd/sd-daemon.h>

#include "core/log.h"

struct passed_socket {
    int fd;
    char *name;
    int used;
};

static struct passed_socket *passed;
static size_t passed_count;

int systemd_sockets_collect(void)
{
    char **names = NULL;
    int count = sd_listen_fds_with_names(1, &names);
    if (count < 0) {
        log_error("socket activation: %s", strerror(-count));
        return -1;
    }
    if (count == 0)
        return 0;
    passed = calloc((size_t)count, sizeof(*passed));
    if (passed == NULL) {
        log_error("socket activation: out of memory");
        return -1;
    }
    for (int i = 0; i < count; i++) {
        passed[i].fd = SD_LISTEN_FDS_START + i;
        passed[i].name = names[i];
        fcntl(passed[i].fd, F_SETFD, FD_CLOEXEC);
    }
    free(names);
    passed_count = (size_t)count;
    return count;
}

int systemd_sockets_dup(const char *name, char *err, size_t errlen)
{
    for (size_t i = 0; i < passed_count; i++) {
        if (strcmp(passed[i].name, name) != 0)
            continue;
        if (sd_is_socket(passed[i].fd, AF_UNSPEC, SOCK_STREAM, 1) <= 0) {
            snprintf(err, errlen, "the socket systemd passed as %s is not a listening stream socket",
                     name);
            return -1;
        }
        int fd = fcntl(passed[i].fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) < 0) {
            snprintf(err, errlen, "cannot use the socket systemd passed as %s: %s", name,
                     strerror(errno));
            if (fd >= 0)
                close(fd);
            return -1;
        }
        passed[i].used = 1;
        return fd;
    }
    size_t used = (size_t)snprintf(err, errlen, "systemd passed no socket named %s (passed:", name);
    for (size_t i = 0; i < passed_count && used < errlen; i++)
        used += (size_t)snprintf(err + used, errlen - used, " %s", passed[i].name);
    if (used < errlen)
        snprintf(err + used, errlen - used, "%s)", passed_count == 0 ? " none" : "");
    return -1;
}

void systemd_sockets_warn_unused(void)
{
    for (size_t i = 0; i < passed_count; i++)
        if (!passed[i].used)
            log_warning("systemd passed a socket named %s that no tunnel listens on",
                        passed[i].name);
}
