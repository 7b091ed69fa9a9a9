#include "worker/control_socket.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/limits.h"
#include "core/log.h"
#include "proto/control_protocol.h"
#include "proto/socket_reply.h"

#define TIMEOUT_MS 5000

struct connection {
    struct event_source events;
    struct control_socket *owner;
    int fd;
    uint64_t deadline_ms;
};

struct control_socket {
    struct event_source listen_events;
    struct event_loop *loop;
    int listen_fd;
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    control_socket_disconnect disconnect;
    void *arg;
    struct connection connections[CONTROL_SOCKET_MAX_CONNECTIONS];
};

void control_socket_path(const char *runtime_dir, int pid, char *buf, size_t len)
{
    snprintf(buf, len, CONTROL_PROTOCOL_SOCKET_FORMAT, runtime_dir, pid);
}

static void reply(int fd, const char *status, const char *text)
{
    socket_reply_send(fd, status, text, CONTROL_PROTOCOL_REPLY_MAX);
}

static void answer(struct control_socket *control, int fd)
{
    static const size_t prefix_len = sizeof(CONTROL_PROTOCOL_DISCONNECT) - 1;
    char request[LIMIT_IDENTITY + 32];
    /* Read first: a reply to a socket with an unread request is lost in a reset. */
    ssize_t got = recv(fd, request, sizeof(request) - 1, MSG_DONTWAIT);
    if (got <= 0)
        return;
    struct ucred cred;
    socklen_t cred_len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) < 0 ||
        (cred.uid != 0 && cred.uid != geteuid())) {
        reply(fd, CONTROL_PROTOCOL_DENIED, "only root or the daemon's user may disconnect tunnels\n");
        return;
    }
    request[got] = '\0';
    const char *key = request + prefix_len;
    if (strncmp(request, CONTROL_PROTOCOL_DISCONNECT, prefix_len) != 0 || key[0] == '\0' ||
        strlen(key) > LIMIT_IDENTITY || strchr(key, '\n') != NULL) {
        reply(fd, CONTROL_PROTOCOL_ERROR, "unknown request (use \"disconnect KEY\")\n");
        return;
    }
    char count[32];
    snprintf(count, sizeof(count), "%u\n", control->disconnect(control->arg, key));
    reply(fd, CONTROL_PROTOCOL_OK, count);
}

static void close_connection(struct connection *connection)
{
    /* The only descriptor of that socket: closing it also ends its epoll watch. */
    close(connection->fd);
    connection->fd = -1;
}

static void on_connection_event(struct event_source *source, uint32_t events)
{
    struct connection *connection = (struct connection *)source;
    if (events & EPOLLIN)
        answer(connection->owner, connection->fd);
    close_connection(connection);
}

static void on_listen_event(struct event_source *source, uint32_t events)
{
    struct control_socket *control = (struct control_socket *)source;
    (void)events;
    int fd = accept4(control->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    for (size_t i = 0; i < CONTROL_SOCKET_MAX_CONNECTIONS; i++) {
        struct connection *connection = &control->connections[i];
        if (connection->fd >= 0)
            continue;
        connection->fd = fd;
        connection->deadline_ms = event_loop_now_ms() + TIMEOUT_MS;
        if (event_loop_watch(control->loop, fd, EPOLLIN, 1, &connection->events) < 0)
            close_connection(connection);
        return;
    }
    reply(fd, CONTROL_PROTOCOL_ERROR, "busy\n");
    close(fd);
}

struct control_socket *control_socket_open(struct event_loop *loop, const char *runtime_dir,
                                           control_socket_disconnect disconnect, void *arg)
{
    struct control_socket *control = calloc(1, sizeof(*control));
    if (control == NULL) {
        log_warning("control socket: out of memory; `ktlstun disconnect` will not reach this worker");
        return NULL;
    }
    control->listen_events.handle = on_listen_event;
    control->loop = loop;
    control->disconnect = disconnect;
    control->arg = arg;
    for (size_t i = 0; i < CONTROL_SOCKET_MAX_CONNECTIONS; i++) {
        control->connections[i] = (struct connection){
            .events.handle = on_connection_event, .owner = control, .fd = -1 };
    }
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    control_socket_path(runtime_dir, (int)getpid(), control->path, sizeof(control->path));
    if (strlen(control->path) + 1 >= sizeof(control->path)) {
        log_warning("control socket %s: path too long; `ktlstun disconnect` will not reach "
                    "this worker", control->path);
        goto fail;
    }
    memcpy(addr.sun_path, control->path, strlen(control->path) + 1);
    control->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (control->listen_fd < 0)
        goto fail_warn;
    unlink(control->path);
    mode_t old_mask = umask(0077);
    int bound = bind(control->listen_fd, (struct sockaddr *)&addr, sizeof(addr));
    umask(old_mask);
    if (bound < 0 || listen(control->listen_fd, 8) < 0)
        goto fail_socket;
    if (event_loop_watch(loop, control->listen_fd, EPOLLIN, 1, &control->listen_events) < 0)
        goto fail_socket;
    return control;

fail_socket: {
    int saved = errno;
    close(control->listen_fd);
    unlink(control->path);
    errno = saved;
}
fail_warn:
    log_warning("control socket %s: %s; `ktlstun disconnect` will not reach this worker",
                control->path, strerror(errno));
fail:
    free(control);
    return NULL;
}

void control_socket_expire(struct control_socket *control, uint64_t now_ms)
{
    if (control == NULL)
        return;
    for (size_t i = 0; i < CONTROL_SOCKET_MAX_CONNECTIONS; i++)
        if (control->connections[i].fd >= 0 && now_ms >= control->connections[i].deadline_ms)
            close_connection(&control->connections[i]);
}

void control_socket_free(struct control_socket *control)
{
    if (control == NULL)
        return;
    for (size_t i = 0; i < CONTROL_SOCKET_MAX_CONNECTIONS; i++)
        if (control->connections[i].fd >= 0)
            close_connection(&control->connections[i]);
    close(control->listen_fd);
    unlink(control->path);
    free(control);
}
