#include "cli/daemon_request.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

int daemon_request(const char *path, const char *request, int timeout_s,
                   daemon_request_trust *trust, const void *arg, char *reply, size_t cap)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    size_t len = strlen(path);
    if (len >= sizeof(addr.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(addr.sun_path, path, len + 1);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval timeout = { .tv_sec = timeout_s };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    int result = -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        goto out;
    if (trust != NULL && !trust(fd, path, arg)) {
        errno = EPERM;
        goto out;
    }
    if (send(fd, request, strlen(request), MSG_NOSIGNAL) < 0)
        goto out;
    ssize_t got = recv(fd, reply, cap - 1, 0);
    if (got > 0) {
        reply[got] = '\0';
        result = 0;
    } else if (got == 0) {
        errno = ECONNRESET;
    }
out:;
    int saved = errno;
    close(fd);
    errno = saved;
    return result;
}
