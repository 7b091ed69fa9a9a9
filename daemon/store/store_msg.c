#include "store/store_msg.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "core/seqpacket.h"

#define TERMINATED(field) (memchr((field), '\0', sizeof(field)) != NULL)

int store_msg_valid(const struct store_msg *msg, size_t len)
{
    if (len != sizeof(*msg) || !TERMINATED(msg->text))
        return 0;
    if (msg->type == STORE_MSG_STATE)
        return msg->up <= 1;
    if (msg->type == STORE_MSG_RESET_LOCKS)
        return 1;
    if (msg->type == STORE_MSG_LEASE)
        return lease_msg_valid(&msg->lease, sizeof(msg->lease));
    if (msg->type != STORE_MSG_EVENT && msg->type != STORE_MSG_ALERT)
        return 0;
    const struct store_event *e = &msg->event;
    if (!TERMINATED(e->gateway) || !TERMINATED(e->tunnel) || !TERMINATED(e->sha256) ||
        !TERMINATED(e->identity) || !TERMINATED(e->username) || !TERMINATED(e->source))
        return 0;
    if (msg->type == STORE_MSG_ALERT)
        return msg->alert_kind <= 2 && e->tunnel[0] != '\0' && e->identity[0] != '\0' &&
               e->username[0] != '\0' && e->source[0] != '\0';
    switch (e->kind) {
    case STORE_EVENT_GRANT:
        return e->tunnel[0] != '\0' && strlen(e->sha256) == LIMIT_SHA256_HEX &&
               e->identity[0] != '\0';
    case STORE_EVENT_REVOKE:
    case STORE_EVENT_DISCONNECT:
    case STORE_EVENT_UNLOCK:
        return e->identity[0] != '\0';
    case STORE_EVENT_FAILURE:
    case STORE_EVENT_SUCCESS:
        return e->tunnel[0] != '\0' && e->identity[0] != '\0' && e->username[0] != '\0' &&
               e->source[0] != '\0' && e->counted <= 7;
    default:
        return 0;
    }
}

int store_msg_send(int fd, const struct store_msg *msg)
{
    return seqpacket_send(fd, msg, sizeof(*msg));
}

int store_msg_recv(int fd, struct store_msg *msg)
{
    ssize_t got = seqpacket_recv(fd, msg, sizeof(*msg));
    if (got <= 0)
        return (int)got;
    if (!store_msg_valid(msg, (size_t)got)) {
        errno = EBADMSG;
        return -1;
    }
    return 1;
}
