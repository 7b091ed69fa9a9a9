#include "supervisor/fleet_leases.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

struct fleet_leases {
    struct helper_process *helper;
    int fd;
    int told_empty;            /* RELEASE_ALL went out once */
    uint32_t last_id;
};

struct fleet_leases *fleet_leases_new(struct helper_process *helper)
{
    struct fleet_leases *fl = calloc(1, sizeof(*fl));
    if (fl == NULL) {
        log_error("out of memory");
        return NULL;
    }
    fl->helper = helper;
    fl->fd = -1;
    return fl;
}

void fleet_leases_free(struct fleet_leases *fl)
{
    if (fl == NULL)
        return;
    if (fl->fd >= 0)
        close(fl->fd);
    free(fl);
}

/* Sends MSG, making the link first when there is none. Returns 0 or -1. */
static int send_msg(struct fleet_leases *fl, const struct lease_msg *msg)
{
    if (fl->fd < 0) {
        if ((fl->fd = helper_process_new_lease_link(fl->helper)) < 0)
            return -1;
        if (!fl->told_empty) {
            struct lease_msg empty = { .type = LEASE_MSG_RELEASE_ALL };
            if (lease_msg_send(fl->fd, &empty) == 0)
                fl->told_empty = 1;
        }
    }
    if (lease_msg_send(fl->fd, msg) == 0)
        return 0;
    log_error("network tunnels: cannot reach the login service for address leases: %s",
              strerror(errno));
    close(fl->fd);
    fl->fd = -1;
    return -1;
}

static int copy_name(char *out, size_t cap, const char *name)
{
    size_t len = strlen(name);
    if (len >= cap)
        return -1;
    memcpy(out, name, len + 1);
    return 0;
}

uint32_t fleet_leases_take(struct fleet_leases *fl, const char *tunnel, const char *identity,
                           const struct ip_prefix *pools, size_t count,
                           const struct ip_prefix *reserve, size_t reserve_count, char *err,
                           size_t errlen)
{
    struct lease_msg msg = { .type = LEASE_MSG_TAKE };
    if (count == 0 || count > LEASE_MSG_FAMILIES || reserve_count > LEASE_MSG_RESERVE_MAX ||
        copy_name(msg.tunnel, sizeof(msg.tunnel), tunnel) != 0 ||
        copy_name(msg.identity, sizeof(msg.identity), identity) != 0) {
        snprintf(err, errlen, "the address request does not fit a lease message");
        return 0;
    }
    if (++fl->last_id == 0)
        fl->last_id = 1;
    msg.id = fl->last_id;
    msg.count = (uint32_t)count;
    memcpy(msg.addresses, pools, count * sizeof(pools[0]));
    msg.reserve_count = (uint32_t)reserve_count;
    memcpy(msg.reserve, reserve, reserve_count * sizeof(reserve[0]));
    if (send_msg(fl, &msg) < 0) {
        snprintf(err, errlen, "the shared state store cannot be asked for an address (the "
                 "login service is not running)");
        return 0;
    }
    return msg.id;
}

void fleet_leases_release(struct fleet_leases *fl, const char *tunnel, const char *identity)
{
    struct lease_msg msg = { .type = LEASE_MSG_RELEASE };
    if (copy_name(msg.tunnel, sizeof(msg.tunnel), tunnel) != 0 ||
        copy_name(msg.identity, sizeof(msg.identity), identity) != 0 || send_msg(fl, &msg) < 0)
        log_warning("network tunnel %s: the shared state store was not told that %s left; "
                    "its address stays reserved for it", tunnel, identity);
}

size_t fleet_leases_poll_fd(const struct fleet_leases *fl, struct pollfd *fds)
{
    if (fl == NULL || fl->fd < 0)
        return 0;
    fds[0] = (struct pollfd){ .fd = fl->fd, .events = POLLIN };
    return 1;
}

int fleet_leases_receive(struct fleet_leases *fl, struct lease_msg *out)
{
    if (fl->fd < 0)
        return 0;
    int got = lease_msg_recv(fl->fd, out);
    if (got > 0 && out->type == LEASE_MSG_RESULT)
        return 1;
    if (got > 0 || (got < 0 && (errno == EAGAIN || errno == EINTR)))
        return 0;
    if (got < 0)
        log_error("network tunnels: the login service sent a malformed address lease answer");
    close(fl->fd);
    fl->fd = -1;
    return -1;
}
