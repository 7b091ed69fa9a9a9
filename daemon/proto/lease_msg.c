#include "proto/lease_msg.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "core/seqpacket.h"

#define TERMINATED(field) (memchr((field), '\0', sizeof(field)) != NULL)

static int prefix_valid(const struct ip_prefix *p)
{
    if (p->family == AF_INET)
        return p->len <= 32;
    return p->family == AF_INET6 && p->len <= 128;
}

static int prefixes_valid(const struct ip_prefix *list, uint32_t count)
{
    for (uint32_t i = 0; i < count; i++)
        if (!prefix_valid(&list[i]))
            return 0;
    return 1;
}

int lease_msg_valid(const struct lease_msg *msg, size_t len)
{
    if (len != sizeof(*msg) || !TERMINATED(msg->tunnel) || !TERMINATED(msg->identity) ||
        !TERMINATED(msg->text) || msg->count > LEASE_MSG_FAMILIES ||
        msg->reserve_count > LEASE_MSG_RESERVE_MAX || msg->result > LEASE_RESULT_UNAVAILABLE ||
        !prefixes_valid(msg->addresses, msg->count) ||
        !prefixes_valid(msg->reserve, msg->reserve_count))
        return 0;
    switch (msg->type) {
    case LEASE_MSG_TAKE:
        return msg->tunnel[0] != '\0' && msg->identity[0] != '\0' && msg->count > 0;
    case LEASE_MSG_RESULT:
        return 1;
    case LEASE_MSG_RELEASE:
        return msg->tunnel[0] != '\0' && msg->identity[0] != '\0';
    case LEASE_MSG_RELEASE_ALL:
        return 1;
    default:
        return 0;
    }
}

int lease_msg_send(int fd, const struct lease_msg *msg)
{
    return seqpacket_send(fd, msg, sizeof(*msg));
}

int lease_msg_recv(int fd, struct lease_msg *msg)
{
    ssize_t got = seqpacket_recv(fd, msg, sizeof(*msg));
    if (got <= 0)
        return (int)got;
    if (!lease_msg_valid(msg, (size_t)got)) {
        errno = EBADMSG;
        return -1;
    }
    return 1;
}
