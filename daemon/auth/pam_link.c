#include "auth/pam_link.h"

#include <errno.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core/log.h"

#define LINK_MAX_REQUESTS 4096

struct request {
    uint32_t id;              /* 0: free */
    pam_link_deliver *deliver;
    void *arg;
};

struct pam_link {
    struct event_source events;   /* first: the loop hands us this pointer */
    struct event_loop *loop;
    int fd;
    uint32_t next_id;
    size_t request_count;
    struct request requests[LINK_MAX_REQUESTS];
    pam_link_disconnect_fn *disconnect;
    void *disconnect_arg;
    pam_link_recheck_fn *recheck;
    void *recheck_arg;
};

static struct request *find(struct pam_link *link, uint32_t id)
{
    for (size_t i = 0; i < LINK_MAX_REQUESTS; i++)
        if (link->requests[i].id == id)
            return &link->requests[i];
    return NULL;
}

static void helper_gone(struct pam_link *link)
{
    log_error("the second-factor helper is gone: logins on this worker fail until it is "
              "replaced");
    event_loop_unwatch(link->loop, link->fd);
    close(link->fd);
    link->fd = -1;
    /* Every pending login learns it at once instead of at its timeout. */
    struct helper_msg msg;
    for (size_t i = 0; i < LINK_MAX_REQUESTS; i++) {
        struct request *r = &link->requests[i];
        if (r->id == 0)
            continue;
        helper_msg_init(&msg, HELPER_MSG_RESULT, r->id);
        msg.style = AUTH_RESULT_UNAVAILABLE;
        helper_msg_set_text(&msg, "the login service stopped", 25);
        r->deliver(r->arg, &msg);
    }
}

static void on_readable(struct event_source *source, uint32_t events)
{
    struct pam_link *link = (struct pam_link *)source;
    struct helper_msg msg;
    (void)events;
    while (link->fd >= 0) {
        int got = helper_msg_recv(link->fd, &msg);
        if (got < 0 && errno == EAGAIN)
            return;
        if (got <= 0) {
            if (got < 0)
                log_error("second factor: unreadable message from the helper: %s",
                          strerror(errno));
            helper_gone(link);
            return;
        }
        if (msg.type == HELPER_MSG_DISCONNECT && link->disconnect != NULL)
            link->disconnect(link->disconnect_arg, msg.identity);
        if (msg.type == HELPER_MSG_RECHECK && link->recheck != NULL)
            link->recheck(link->recheck_arg);
        struct request *r = msg.id != 0 ? find(link, msg.id) : NULL;
        if (r != NULL && (msg.type == HELPER_MSG_PROMPT || msg.type == HELPER_MSG_RESULT))
            r->deliver(r->arg, &msg);
        helper_msg_wipe(&msg);
    }
}

struct pam_link *pam_link_open(struct event_loop *loop, int fd)
{
    if (fd < 0)
        return NULL;
    struct pam_link *link = calloc(1, sizeof(*link));
    if (link == NULL) {
        log_error("second factor: out of memory");
        close(fd);
        return NULL;
    }
    link->events.handle = on_readable;
    link->loop = loop;
    link->fd = fd;
    if (event_loop_watch(loop, fd, EPOLLIN, 1, &link->events) < 0) {
        close(fd);
        free(link);
        return NULL;
    }
    return link;
}

void pam_link_on_disconnect(struct pam_link *link, pam_link_disconnect_fn *disconnect, void *arg)
{
    if (link == NULL)
        return;
    link->disconnect = disconnect;
    link->disconnect_arg = arg;
}

void pam_link_on_recheck(struct pam_link *link, pam_link_recheck_fn *recheck, void *arg)
{
    if (link == NULL)
        return;
    link->recheck = recheck;
    link->recheck_arg = arg;
}

void pam_link_close(struct pam_link *link)
{
    if (link == NULL)
        return;
    if (link->fd >= 0)
        close(link->fd);
    free(link);
}

uint32_t pam_link_register(struct pam_link *link, pam_link_deliver *deliver, void *arg)
{
    if (link == NULL || link->fd < 0 || link->request_count == LINK_MAX_REQUESTS)
        return 0;
    struct request *slot = find(link, 0);
    if (slot == NULL)
        return 0;
    do {
        link->next_id++;
    } while (link->next_id == 0 || find(link, link->next_id) != NULL);
    *slot = (struct request){ .id = link->next_id, .deliver = deliver, .arg = arg };
    link->request_count++;
    return slot->id;
}

void pam_link_unregister(struct pam_link *link, uint32_t id, int cancel)
{
    if (link == NULL || id == 0)
        return;
    struct request *r = find(link, id);
    if (r == NULL)
        return;
    if (cancel && link->fd >= 0) {
        struct helper_msg msg;
        helper_msg_init(&msg, HELPER_MSG_CANCEL, id);
        helper_msg_send(link->fd, &msg);
    }
    *r = (struct request){ 0 };
    link->request_count--;
}

int pam_link_send(struct pam_link *link, const struct helper_msg *msg)
{
    if (link == NULL || link->fd < 0)
        return -1;
    if (helper_msg_send(link->fd, msg) < 0) {
        log_error("second factor: cannot reach the helper: %s", strerror(errno));
        return -1;
    }
    return 0;
}

void pam_link_report_handshake_failure(struct pam_link *link, const char *tunnel,
                                       const char *source, const char *reason)
{
    struct helper_msg msg;
    if (link == NULL || link->fd < 0)
        return;
    helper_msg_init(&msg, HELPER_MSG_HANDSHAKE_FAILURE, 0);
    snprintf(msg.tunnel, sizeof(msg.tunnel), "%s", tunnel);
    snprintf(msg.source, sizeof(msg.source), "%s", source);
    helper_msg_set_text(&msg, reason, strlen(reason));
    /* Dropped when the helper lags: counting is best effort, the refusal is logged. */
    helper_msg_send(link->fd, &msg);
}
