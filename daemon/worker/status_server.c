#include "worker/status_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/log.h"
#include "auth/second_factor.h"
#include "proto/status_record.h"

struct status_client {
    struct event_source events;
    struct status_server *server;
    int fd;                        /* -1: a free slot */
    uint64_t deadline_ms;
    char *text;                    /* the snapshot, from open_memstream */
    size_t len, sent;
};

struct status_server {
    struct event_source events;
    struct event_loop *loop;
    int fd;
    int watched;                   /* the listener is in the loop (a client slot is free) */
    char path[300];
    const struct generation *gen;
    const struct conn_host *host;
    const int *accepting;
    struct status_client clients[STATUS_SERVER_CLIENTS];
    size_t active;
};

void status_server_path(const char *runtime_dir, int pid, char *buf, size_t len)
{
    snprintf(buf, len, "%s/status-worker-%d.sock", runtime_dir, pid);
}

static int open_socket(const char *runtime_dir, char *path, size_t len)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    status_server_path(runtime_dir, (int)getpid(), path, len);
    if (strlen(path) >= sizeof(addr.sun_path)) {
        log_warning("status socket %s: path too long; `ktlstun status` will not see this worker",
                    path);
        return -1;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    unlink(path);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || chmod(path, 0660) < 0 ||
        listen(fd, 16) < 0) {
        close(fd);
        goto fail;
    }
    return fd;
fail:
    log_warning("status socket %s: %s; `ktlstun status` will not see this worker", path,
                strerror(errno));
    return -1;
}

/* A network tunnel's ends are a device and addresses: a hub's "target" is its tunnel
 * network, a client's "listen" its device. */
static void describe_ends(const struct tunnel_config *t, char *listen, size_t listen_len,
                          char *target, size_t target_len)
{
    if (t->type != TUNNEL_TYPE_NETWORK) {
        address_format(&t->listen, listen, listen_len);
        address_format(&t->target, target, target_len);
        return;
    }
    if (t->mode == TUNNEL_MODE_CLIENT) {
        snprintf(listen, listen_len, "device %s", t->network.device);
        address_format(&t->target, target, target_len);
        return;
    }
    address_format(&t->listen, listen, listen_len);
    size_t used = (size_t)snprintf(target, target_len, "network");
    for (size_t i = 0; i < t->network.hub_address_count && used < target_len; i++) {
        char prefix[64];
        used += (size_t)snprintf(target + used, target_len - used, " %s",
                                 ip_prefix_format(&t->network.hub_addresses[i], prefix, sizeof(prefix)));
    }
}

static void describe_tunnels(FILE *out, const struct generation *gen, const struct stats *stats)
{
    for (size_t i = 0; i < gen->tunnel_count; i++) {
        const struct tunnel_config *t = gen->tunnels[i].config;
        char listen[300], target[300];
        struct stats_last_refusal last;
        status_record_begin(out, "tunnel");
        status_record_text(out, "name", t->name);
        status_record_text(out, "mode", config_mode_name(t->mode));
        describe_ends(t, listen, sizeof(listen), target, sizeof(target));
        status_record_text(out, "listen", listen);
        status_record_text(out, "target", target);
        status_record_text(out, "ktls", config_ktls_name(t->ktls));
        status_record_number(out, "generation", gen->number);
        /* Added at the end, only when there is one: older readers skip keys they do
         * not know. */
        if (stats != NULL && stats_last_refusal(stats, gen->tunnels[i].limit_slot, &last)) {
            status_record_number(out, "last_refusal_at", (uint64_t)last.at);
            status_record_text(out, "last_refusal", last.words);
            if (last.identity[0] != '\0')
                status_record_text(out, "last_refusal_identity", last.identity);
        }
        status_record_end(out);
    }
}

/* Takes the snapshot C is sent. Returns -1 when out of memory. */
static int snapshot(const struct status_server *server, struct status_client *c)
{
    FILE *out = open_memstream(&c->text, &c->len);
    if (out == NULL)
        return -1;
    status_record_begin(out, "worker");
    status_record_number(out, "pid", (uint64_t)getpid());
    status_record_number(out, "generation", server->gen->number);
    status_record_number(out, "draining", (uint64_t)!*server->accepting);
    status_record_number(out, "connections", server->host->live_count);
    status_record_end(out);
    describe_tunnels(out, server->gen, server->host->stats);
    conn_describe_all(server->host, out);
    second_factor_describe_grants(out);
    fputs("end\n", out);
    return fclose(out) == 0 ? 0 : -1;
}

/* The listener is watched exactly while a client slot is free. */
static void sync_listener(struct status_server *server)
{
    int want = server->active < STATUS_SERVER_CLIENTS;
    if (want == server->watched)
        return;
    if (!want)
        event_loop_unwatch(server->loop, server->fd);
    else if (event_loop_watch(server->loop, server->fd, EPOLLIN, 1, &server->events) < 0)
        return;
    server->watched = want;
}

static void drop(struct status_client *c)
{
    struct status_server *server = c->server;
    close(c->fd);
    free(c->text);
    c->fd = -1;
    c->text = NULL;
    c->len = c->sent = 0;
    server->active--;
    sync_listener(server);
}

/* Sends what C's socket takes now; drops C once all is sent or the peer is gone. */
static void send_more(struct status_client *c)
{
    while (c->sent < c->len) {
        ssize_t n = send(c->fd, c->text + c->sent, c->len - c->sent, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (n <= 0)
            break;
        c->sent += (size_t)n;
    }
    drop(c);
}

static void on_client_event(struct event_source *source, uint32_t events)
{
    struct status_client *c = (struct status_client *)source;
    (void)events;
    /* An event queued in the same batch as the drop of this slot's last client. */
    if (c->fd < 0)
        return;
    send_more(c);
}

static void on_listener_event(struct event_source *source, uint32_t events)
{
    struct status_server *server = (struct status_server *)source;
    (void)events;
    for (size_t i = 0; i < STATUS_SERVER_CLIENTS && server->active < STATUS_SERVER_CLIENTS; i++) {
        struct status_client *c = &server->clients[i];
        if (c->fd >= 0)
            continue;
        int fd = accept4(server->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            break;
        c->fd = fd;
        c->deadline_ms = event_loop_now_ms() + STATUS_SERVER_DEADLINE_MS;
        server->active++;
        if (snapshot(server, c) < 0 ||
            event_loop_watch(server->loop, fd, EPOLLOUT, 0, &c->events) < 0) {
            drop(c);
            continue;
        }
        send_more(c);
    }
    sync_listener(server);
}

struct status_server *status_server_open(struct event_loop *loop, const char *runtime_dir,
                                         const struct generation *gen,
                                         const struct conn_host *host, const int *accepting)
{
    struct status_server *server = calloc(1, sizeof(*server));
    if (server == NULL) {
        log_warning("status socket: out of memory; `ktlstun status` will not see this worker");
        return NULL;
    }
    *server = (struct status_server){ .events.handle = on_listener_event, .loop = loop, .gen = gen,
                                      .host = host, .accepting = accepting };
    for (size_t i = 0; i < STATUS_SERVER_CLIENTS; i++)
        server->clients[i] = (struct status_client){ .events.handle = on_client_event,
                                                     .server = server, .fd = -1 };
    server->fd = open_socket(runtime_dir, server->path, sizeof(server->path));
    if (server->fd < 0) {
        free(server);
        return NULL;
    }
    sync_listener(server);
    if (!server->watched) {
        status_server_close(server);
        return NULL;
    }
    return server;
}

int status_server_sweep(struct status_server *server, uint64_t now_ms)
{
    int wait = -1;
    if (server == NULL)
        return wait;
    for (size_t i = 0; i < STATUS_SERVER_CLIENTS; i++) {
        struct status_client *c = &server->clients[i];
        if (c->fd < 0)
            continue;
        if (now_ms >= c->deadline_ms) {
            log_debug("status socket: a client took not all of its answer within %d ms; closing it",
                      STATUS_SERVER_DEADLINE_MS);
            drop(c);
            continue;
        }
        int left = (int)(c->deadline_ms - now_ms);
        if (wait < 0 || left < wait)
            wait = left;
    }
    return wait;
}

void status_server_close(struct status_server *server)
{
    if (server == NULL)
        return;
    for (size_t i = 0; i < STATUS_SERVER_CLIENTS; i++) {
        if (server->clients[i].fd >= 0)
            close(server->clients[i].fd);
        free(server->clients[i].text);
    }
    close(server->fd);
    unlink(server->path);
    free(server);
}
