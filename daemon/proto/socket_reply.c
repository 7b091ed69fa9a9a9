#include "proto/socket_reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

void socket_reply_send(int fd, const char *status, const char *text, size_t max)
{
    char *buf = malloc(max);
    if (buf == NULL)
        return;
    int len = snprintf(buf, max, "%s\n%s", status, text);
    if (len >= 0) {
        size_t out = (size_t)len >= max ? max - 1 : (size_t)len;
        ssize_t ignored = send(fd, buf, out, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)ignored;
    }
    free(buf);
}
