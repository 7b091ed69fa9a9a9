#include "supervisor/fleet_leases.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"
#include "core/text.h"

struct waiting {
    struct waiting *next;
    uint32_t lease_id;         /* the TAKE's id */
    int orphan;                /* the link broke before its answer */
    struct fleet_request req;
};

struct fleet_leases {
    struct helper_process *helper;
    int fd;
    int told_empty;            /* RELEASE_ALL went out once */
    uint32_t last_id;
    struct waiting *waiting;
};

static void close_link(struct fleet_leases *fl)
{
    close(fl->fd);
    fl->fd = -1;
    for (struct waiting *w = fl->waiting; w != NULL; w = w->next)
        w->orphan = 1;
}

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
    while (fl->waiting != NULL) {
        struct waiting *w = fl->waiting;
        fl->waiting = w->next;
        free(w);
    }
    free(fl);
}

int fleet_leases_open(struct fleet_leases *fl)
{
    if (fl->fd >= 0)
        return 0;
    if ((fl->fd = helper_process_new_lease_link(fl->helper)) < 0)
        return -1;
    if (!fl->told_empty) {
        struct lease_msg empty = { .type = LEASE_MSG_RELEASE_ALL };
        if (lease_msg_send(fl->fd, &empty) == 0)
            fl->told_empty = 1;
    }
    return 0;
}

/* Sends MSG, making the link first when there is none. Returns 0 or -1. */
static int send_msg(struct fleet_leases *fl, const struct lease_msg *msg)
{
    if (fleet_leases_open(fl) < 0)
        return -1;
    if (lease_msg_send(fl->fd, msg) == 0)
        return 0;
    log_error("network tunnels: cannot reach the login service for address leases: %s",
              strerror(errno));
    /* A full link (the helper is behind) fails this message alone. */
    if (errno != EAGAIN && errno != EWOULDBLOCK)
        close_link(fl);
    return -1;
}

int fleet_leases_take(struct fleet_leases *fl, const struct fleet_request *req,
                      const struct ip_prefix *pools, size_t count, char *err, size_t errlen)
{
    struct lease_msg msg = { .type = LEASE_MSG_TAKE };
    struct waiting *w = calloc(1, sizeof(*w));
    if (w == NULL || count == 0 || count > LEASE_MSG_FAMILIES ||
        req->reserve_count > LEASE_MSG_RESERVE_MAX ||
        text_copy(msg.tunnel, sizeof(msg.tunnel), req->tunnel) != 0 ||
        text_copy(msg.identity, sizeof(msg.identity), req->identity) != 0) {
        snprintf(err, errlen, w == NULL ? "out of memory"
                                        : "the address request does not fit a lease message");
        free(w);
        return -1;
    }
    if (++fl->last_id == 0)
        fl->last_id = 1;
    msg.id = fl->last_id;
    msg.count = (uint32_t)count;
    memcpy(msg.addresses, pools, count * sizeof(pools[0]));
    msg.reserve_count = (uint32_t)req->reserve_count;
    memcpy(msg.reserve, req->reserve, req->reserve_count * sizeof(req->reserve[0]));
    if (send_msg(fl, &msg) < 0) {
        snprintf(err, errlen, "the shared state store cannot be asked for an address (the "
                 "login service is not running)");
        free(w);
        return -1;
    }
    w->lease_id = msg.id;
    w->req = *req;
    w->req.attempts++;
    w->next = fl->waiting;
    fl->waiting = w;
    return 0;
}

void fleet_leases_release(struct fleet_leases *fl, const char *tunnel, const char *identity)
{
    struct lease_msg msg = { .type = LEASE_MSG_RELEASE };
    if (text_copy(msg.tunnel, sizeof(msg.tunnel), tunnel) != 0 ||
        text_copy(msg.identity, sizeof(msg.identity), identity) != 0 || send_msg(fl, &msg) < 0)
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

/* Unlinks and returns the request answered as LEASE_ID, or the first ORPHAN, or NULL. */
static struct waiting *unlink_waiting(struct fleet_leases *fl, uint32_t lease_id, int orphan)
{
    for (struct waiting **pp = &fl->waiting; *pp != NULL; pp = &(*pp)->next) {
        struct waiting *w = *pp;
        if (orphan ? w->orphan : !w->orphan && w->lease_id == lease_id) {
            *pp = w->next;
            return w;
        }
    }
    return NULL;
}

int fleet_leases_receive(struct fleet_leases *fl, struct fleet_request *req,
                         struct lease_msg *answer)
{
    struct waiting *w = NULL;
    while (w == NULL && fl->fd >= 0) {
        int got = lease_msg_recv(fl->fd, answer);
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (got <= 0) {
            if (got < 0)
                log_error("network tunnels: the login service sent a malformed address "
                          "lease answer");
            close_link(fl);
            break;
        }
        if (answer->type == LEASE_MSG_RESULT)
            w = unlink_waiting(fl, answer->id, 0);
    }
    if (w == NULL && (w = unlink_waiting(fl, 0, 1)) != NULL) {
        *answer = (struct lease_msg){ .type = LEASE_MSG_RESULT, .id = w->lease_id,
                                      .result = LEASE_RESULT_UNAVAILABLE };
        snprintf(answer->text, sizeof(answer->text),
                 "the login service restarted before the store answered");
    }
    if (w == NULL)
        return 0;
    *req = w->req;
    free(w);
    return 1;
}
