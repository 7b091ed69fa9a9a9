#include "worker/tun_link.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/fd_passing.h"
#include "core/log.h"
#include "core/text.h"
#include "proto/tun_request.h"

#define LINK_DOWN_REASON "the link to the supervisor is down"

/* A request sent and not answered yet. */
struct pending {
    struct pending *next;
    uint32_t id;
    enum tun_message_type type;
    int cancelled;           /* answered by closing what comes (and a release for a hub) */
    tun_link_done done;
    void *arg;
};

/* A message the socket had no room for, sent once it has. */
struct queued {
    struct queued *next;
    size_t len;
    unsigned char data[];
};

struct tun_link {
    struct event_source source;
    struct event_loop *loop;
    int fd;                  /* -1 once the link broke */
    uint32_t next_id;
    tun_link_end end;
    void *end_arg;
    struct pending *pending;
    struct queued *queue, **queue_tail;
    int in_handler;          /* callbacks run: tun_link_free waits for the handler */
    int freed;
};

static void free_queue(struct tun_link *link)
{
    while (link->queue != NULL) {
        struct queued *q = link->queue;
        link->queue = q->next;
        free(q);
    }
    link->queue_tail = &link->queue;
}

static void destroy(struct tun_link *link)
{
    while (link->pending != NULL) {
        struct pending *p = link->pending;
        link->pending = p->next;
        free(p);
    }
    free_queue(link);
    free(link);
}

/* Ends a stretch of callbacks: a tun_link_free called in one takes effect here. */
static void leave(struct tun_link *link)
{
    if (--link->in_handler == 0 && link->freed)
        destroy(link);
}

/* Answers every pending request refused: the link is gone and nothing will come.
 * LINK may be gone when it returns (a callback freed it): the caller does not touch
 * it again unless it is inside a callback stretch itself. */
static void link_broken(struct tun_link *link, const char *why)
{
    struct tun_link_answer answer = { .refused = 1, .reason = LINK_DOWN_REASON, .fd = -1 };
    if (link->fd < 0)
        return;
    log_warning("network device link to the supervisor failed: %s", why);
    event_loop_unwatch(link->loop, link->fd);
    close(link->fd);
    link->fd = -1;
    free_queue(link);
    link->in_handler++;
    while (link->pending != NULL && !link->freed) {
        struct pending *p = link->pending;
        link->pending = p->next;
        if (!p->cancelled)
            p->done(p->arg, &answer);
        free(p);
    }
    leave(link);
}

/* Sends what waits, in order, until the socket is full. Returns 0, or -1 when the
 * link broke. */
static int flush_queue(struct tun_link *link)
{
    while (link->queue != NULL) {
        struct queued *q = link->queue;
        if (fd_passing_send(link->fd, q->data, q->len, -1, MSG_DONTWAIT) != 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            link_broken(link, strerror(errno));
            return -1;
        }
        link->queue = q->next;
        if (link->queue == NULL)
            link->queue_tail = &link->queue;
        free(q);
    }
    return 0;
}

/* Sends MSG now, or after what waits already. Returns 0, or -1 (logged) when it
 * cannot be sent or kept. */
static int send_message(struct tun_link *link, const struct tun_message *msg)
{
    unsigned char buf[TUN_REQUEST_MAX_LEN];
    size_t len;
    if (link->fd < 0)
        return -1;
    if ((len = tun_request_encode(msg, buf, sizeof(buf))) == 0) {
        log_warning("network device request for tunnel %s not sent: it does not encode",
                    msg->tunnel);
        return -1;
    }
    if (link->queue == NULL) {
        if (fd_passing_send(link->fd, buf, len, -1, MSG_DONTWAIT) == 0)
            return 0;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            link_broken(link, strerror(errno));
            return -1;
        }
    }
    struct queued *q = malloc(sizeof(*q) + len);
    if (q == NULL) {
        log_error("network device request not sent: out of memory");
        return -1;
    }
    q->next = NULL;
    q->len = len;
    memcpy(q->data, buf, len);
    *link->queue_tail = q;
    link->queue_tail = &q->next;
    return 0;
}

static void send_release(struct tun_link *link, uint32_t id)
{
    struct tun_message msg = { .type = TUN_MESSAGE_RELEASE, .id = id };
    (void)send_message(link, &msg);
}

static struct pending *take_pending(struct tun_link *link, uint32_t id)
{
    for (struct pending **pp = &link->pending; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->id == id) {
            struct pending *p = *pp;
            *pp = p->next;
            return p;
        }
    return NULL;
}

static void handle_reply(struct tun_link *link, const struct tun_message *msg, int fd)
{
    struct pending *p = take_pending(link, msg->id);
    int wants_fd = p != NULL && p->type != TUN_MESSAGE_CONFIGURE;
    if (p == NULL || p->cancelled) {
        /* Nobody waits for it: what it gave goes back. */
        if (p != NULL && p->type == TUN_MESSAGE_HUB && !msg->refused)
            send_release(link, msg->id);
        goto out;
    }
    struct tun_link_answer answer = {
        .refused = msg->refused, .reason = msg->reason, .fd = -1, .device = msg->device,
        .address_count = msg->address_count, .addresses = msg->addresses,
    };
    if (!msg->refused && wants_fd) {
        if (fd < 0) {
            answer.refused = 1;
            answer.reason = "no descriptor came with the supervisor's reply";
            if (p->type == TUN_MESSAGE_HUB)
                send_release(link, msg->id);
        }
        answer.fd = fd;
        fd = -1;
    }
    p->done(p->arg, &answer);
out:
    if (fd >= 0)
        close(fd);
    free(p);
}

static void handle(struct event_source *source, uint32_t events)
{
    struct tun_link *link = (struct tun_link *)source;
    unsigned char buf[TUN_REQUEST_MAX_LEN];
    struct tun_message msg;
    const char *why;
    link->in_handler++;
    if ((events & EPOLLOUT) && flush_queue(link) != 0)
        goto out;
    while (link->fd >= 0 && !link->freed) {
        int fd = -1;
        ssize_t n = fd_passing_recv(link->fd, buf, sizeof(buf), &fd, MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n <= 0) {
            link_broken(link, n == 0 ? "the supervisor closed it" : strerror(errno));
            break;
        }
        if (tun_request_decode(buf, (size_t)n, &msg, &why) != 0 ||
            (msg.type != TUN_MESSAGE_REPLY && msg.type != TUN_MESSAGE_END)) {
            log_warning("network device link: a message from the supervisor ignored: %s",
                        why);
            if (fd >= 0)
                close(fd);
            continue;
        }
        if (msg.type == TUN_MESSAGE_END) {
            if (fd >= 0)
                close(fd);
            link->end(link->end_arg, msg.id, msg.reason);
            continue;
        }
        handle_reply(link, &msg, fd);
    }
    if (link->fd >= 0 && (events & (EPOLLHUP | EPOLLERR)) && !link->freed)
        link_broken(link, "the supervisor closed it");
out:
    leave(link);
}

struct tun_link *tun_link_new(struct event_loop *loop, int fd, tun_link_end end, void *end_arg)
{
    struct tun_link *link = calloc(1, sizeof(*link));
    if (link == NULL) {
        log_error("network device link: out of memory");
        goto fail;
    }
    link->source.handle = handle;
    link->loop = loop;
    link->fd = fd;
    link->next_id = 1;
    link->end = end;
    link->end_arg = end_arg;
    link->queue_tail = &link->queue;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
        log_error("network device link: cannot make it non-blocking: %s", strerror(errno));
        goto fail;
    }
    if (event_loop_watch(loop, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, 0, &link->source) != 0)
        goto fail;
    return link;
fail:
    free(link);
    close(fd);
    return NULL;
}

void tun_link_free(struct tun_link *link)
{
    if (link == NULL)
        return;
    if (link->fd >= 0) {
        event_loop_unwatch(link->loop, link->fd);
        close(link->fd);
        link->fd = -1;
    }
    /* Freed from a callback: the handler that called it finishes first. */
    if (link->in_handler > 0) {
        link->freed = 1;
        return;
    }
    destroy(link);
}

static uint32_t request(struct tun_link *link, struct tun_message *msg, tun_link_done done,
                        void *arg)
{
    struct pending *p;
    if (link == NULL || link->fd < 0 || link->freed || (p = calloc(1, sizeof(*p))) == NULL)
        return 0;
    msg->id = link->next_id++;
    if (link->next_id == 0)
        link->next_id = 1;
    if (send_message(link, msg) != 0) {
        free(p);
        return 0;
    }
    p->id = msg->id;
    p->type = msg->type;
    p->done = done;
    p->arg = arg;
    p->next = link->pending;
    link->pending = p;
    return p->id;
}

uint32_t tun_link_request_hub(struct tun_link *link, const char *tunnel, const char *identity,
                              tun_link_done done, void *arg)
{
    struct tun_message msg = { .type = TUN_MESSAGE_HUB };
    if (text_copy(msg.tunnel, sizeof(msg.tunnel), tunnel) != 0 ||
        text_copy(msg.identity, sizeof(msg.identity), identity) != 0) {
        log_warning("network device request for tunnel %s: the identity is too long", tunnel);
        return 0;
    }
    return request(link, &msg, done, arg);
}

uint32_t tun_link_request_attach(struct tun_link *link, const char *tunnel, tun_link_done done,
                                 void *arg)
{
    struct tun_message msg = { .type = TUN_MESSAGE_ATTACH };
    if (text_copy(msg.tunnel, sizeof(msg.tunnel), tunnel) != 0)
        return 0;
    return request(link, &msg, done, arg);
}

uint32_t tun_link_request_configure(struct tun_link *link, const char *tunnel,
                                    const struct tunnel_frame_config *config, tun_link_done done,
                                    void *arg)
{
    struct tun_message msg;
    unsigned char frame[TUNNEL_FRAME_HEADER_LEN + TUNNEL_CONFIG_MAX_PAYLOAD];
    struct tunnel_frame_writer w;
    memset(&msg, 0, sizeof(msg));
    msg.type = TUN_MESSAGE_CONFIGURE;
    tunnel_frame_writer_init(&w, frame, sizeof(frame));
    /* The CONFIG frame's own encoding; its payload is what the message carries. */
    if (text_copy(msg.tunnel, sizeof(msg.tunnel), tunnel) != 0 ||
        tunnel_frame_put_config(&w, config) != 1)
        return 0;
    msg.config_len = w.len - TUNNEL_FRAME_HEADER_LEN;
    memcpy(msg.config, frame + TUNNEL_FRAME_HEADER_LEN, msg.config_len);
    return request(link, &msg, done, arg);
}

void tun_link_cancel(struct tun_link *link, uint32_t id)
{
    if (link == NULL)
        return;
    for (struct pending *p = link->pending; p != NULL; p = p->next)
        if (p->id == id)
            p->cancelled = 1;
}

void tun_link_release(struct tun_link *link, uint32_t id)
{
    if (link != NULL && id != 0)
        send_release(link, id);
}
