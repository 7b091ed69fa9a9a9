#include "core/seqpacket.h"

#include <errno.h>
#include <sys/socket.h>

int seqpacket_send(int fd, const void *msg, size_t len)
{
    ssize_t sent;
    do {
        sent = send(fd, msg, len, MSG_NOSIGNAL);
    } while (sent < 0 && errno == EINTR);
    if (sent < 0)
        return -1;
    if ((size_t)sent != len) {
        errno = EMSGSIZE;
        return -1;
    }
    return 0;
}

ssize_t seqpacket_recv(int fd, void *msg, size_t len)
{
    ssize_t got;
    do {
        /* MSG_TRUNC reports a longer datagram's real size, so it cannot pass as ours. */
        got = recv(fd, msg, len, MSG_TRUNC);
    } while (got < 0 && errno == EINTR);
    return got;
}
