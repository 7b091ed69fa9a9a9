#include "supervisor/listener.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "supervisor/systemd_sockets.h"

int listener_open(const struct address *addr, char *err, size_t errlen)
{
    if (addr->kind == ADDRESS_SYSTEMD)
        return systemd_sockets_dup(addr->fd_name, err, errlen);
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (address_resolve(addr, &ss, &sslen, err, errlen) < 0)
        return -1;
    if (addr->kind == ADDRESS_UNIX) {
        struct stat st;
        if (lstat(addr->path, &st) == 0) {
            if (!S_ISSOCK(st.st_mode)) {
                snprintf(err, errlen, "%s exists and is not a socket", addr->path);
                return -1;
            }
            unlink(addr->path);
        }
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "socket: %s", strerror(errno));
        return -1;
    }
    int one = 1;
    if (ss.ss_family != AF_UNIX)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&ss, sslen) < 0) {
        snprintf(err, errlen, "bind: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (listen(fd, SOMAXCONN) < 0) {
        snprintf(err, errlen, "listen: %s", strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

void listener_close(int fd, const struct address *addr)
{
    if (fd < 0)
        return;
    close(fd);
    if (addr->kind == ADDRESS_UNIX)
        unlink(addr->path);
}
