#include "supervisor/metrics_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"

#define REQUEST_MAX 2048

enum client_state { CLIENT_FREE, CLIENT_READING, CLIENT_WRITING };

struct client {
    enum client_state state;
    int fd;
    uint64_t deadline_ms;
    char request[REQUEST_MAX];
    size_t got;
    char *answer;              /* head and body, malloc'd */
    size_t answer_len, sent;
};

struct metrics_server {
    struct client clients[METRICS_SERVER_CLIENTS];
    size_t active;
};

struct metrics_server *metrics_server_new(void)
{
    struct metrics_server *server = calloc(1, sizeof(*server));
    if (server == NULL)
        log_error("metrics: out of memory");
    return server;
}

static void drop(struct metrics_server *server, struct client *c)
{
    close(c->fd);
    free(c->answer);
    *c = (struct client){ .state = CLIENT_FREE, .fd = -1 };
    server->active--;
}

void metrics_server_free(struct metrics_server *server)
{
    if (server == NULL)
        return;
    for (size_t i = 0; i < METRICS_SERVER_CLIENTS; i++)
        if (server->clients[i].state != CLIENT_FREE)
            drop(server, &server->clients[i]);
    free(server);
}

size_t metrics_server_poll_fds(const struct metrics_server *server, int listen_fd, struct pollfd *fds)
{
    size_t count = 0;
    if (listen_fd >= 0 && server->active < METRICS_SERVER_CLIENTS)
        fds[count++] = (struct pollfd){ .fd = listen_fd, .events = POLLIN };
    for (size_t i = 0; i < METRICS_SERVER_CLIENTS; i++) {
        const struct client *c = &server->clients[i];
        if (c->state != CLIENT_FREE)
            fds[count++] = (struct pollfd){ .fd = c->fd,
                                            .events = c->state == CLIENT_READING ? POLLIN : POLLOUT };
    }
    return count;
}

static struct client *client_of(struct metrics_server *server, int fd)
{
    for (size_t i = 0; i < METRICS_SERVER_CLIENTS; i++)
        if (server->clients[i].state != CLIENT_FREE && server->clients[i].fd == fd)
            return &server->clients[i];
    return NULL;
}

static void accept_clients(struct metrics_server *server, int listen_fd, uint64_t now_ms)
{
    for (size_t i = 0; i < METRICS_SERVER_CLIENTS && server->active < METRICS_SERVER_CLIENTS; i++) {
        struct client *c = &server->clients[i];
        if (c->state != CLIENT_FREE)
            continue;
        int fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        *c = (struct client){ .state = CLIENT_READING, .fd = fd,
                              .deadline_ms = now_ms + METRICS_SERVER_DEADLINE_MS };
        server->active++;
    }
}

struct route {
    const char *path;
    enum metrics_server_page page;
    const char *content_type;
};

static const struct route routes[] = {
    { "/metrics", METRICS_SERVER_METRICS, "text/plain; version=0.0.4" },
    { "/", METRICS_SERVER_METRICS, "text/plain; version=0.0.4" },
    { "/healthz", METRICS_SERVER_HEALTHZ, "text/plain; charset=utf-8" },
    { "/readyz", METRICS_SERVER_READYZ, "text/plain; charset=utf-8" },
};

/* The route of REQUEST ("GET PATH " or "HEAD PATH "), NULL for anything else; *HEAD
 * is set for HEAD, which gets the same head without the body. */
static const struct route *route_of(const char *request, int *head)
{
    const char *path = NULL;
    *head = strncmp(request, "HEAD ", 5) == 0;
    if (*head)
        path = request + 5;
    else if (strncmp(request, "GET ", 4) == 0)
        path = request + 4;
    for (size_t i = 0; path != NULL && i < sizeof(routes) / sizeof(routes[0]); i++) {
        size_t len = strlen(routes[i].path);
        if (strncmp(path, routes[i].path, len) == 0 && path[len] == ' ')
            return &routes[i];
    }
    return NULL;
}

/* A known path gets what RENDER makes of its page (200, or 503 when the page reports
 * a failure), anything else a 404; a body that could not be rendered a 500. Returns
 * -1 when out of memory. */
static int prepare_answer(struct client *c, metrics_server_render_fn *render, void *arg)
{
    c->request[c->got] = '\0';
    int head_only = 0, ok = 1;
    const struct route *route = route_of(c->request, &head_only);
    char *body = route != NULL ? render(arg, route->page, &ok) : NULL;
    const char *payload = route != NULL && body != NULL ? body : "not found\n";
    const char *status = route == NULL ? "404 Not Found"
                         : body == NULL ? "500 Internal Server Error"
                         : ok ? "200 OK" : "503 Service Unavailable";
    size_t payload_len = strlen(payload);
    char head[256];
    int head_len = snprintf(head, sizeof(head),
                            "HTTP/1.0 %s\r\nContent-Type: %s\r\n"
                            "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                            status, route != NULL ? route->content_type : "text/plain; version=0.0.4",
                            payload_len);
    size_t sent_len = head_only ? 0 : payload_len;
    c->answer = malloc((size_t)head_len + sent_len);
    if (c->answer != NULL) {
        memcpy(c->answer, head, (size_t)head_len);
        memcpy(c->answer + head_len, payload, sent_len);
        c->answer_len = (size_t)head_len + sent_len;
    }
    free(body);
    c->state = CLIENT_WRITING;
    return c->answer != NULL ? 0 : -1;
}

/* Returns -1 when C is done with (answered, gone or broken), 0 while it goes on. */
static int read_request(struct client *c, metrics_server_render_fn *render, void *arg)
{
    int complete = 0;
    while (!complete && c->got < REQUEST_MAX - 1) {
        ssize_t n = recv(c->fd, c->request + c->got, REQUEST_MAX - 1 - c->got, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return 0;
        if (n < 0)
            return -1;
        /* The peer half-closed: answer what it sent. */
        complete = n == 0;
        c->got += (size_t)n;
        c->request[c->got] = '\0';
        complete = complete || strstr(c->request, "\r\n\r\n") != NULL || strstr(c->request, "\n\n") != NULL;
    }
    return prepare_answer(c, render, arg);
}

/* Returns -1 when C is done with (all sent or broken), 0 while the rest must wait. */
static int write_answer(struct client *c)
{
    while (c->sent < c->answer_len) {
        ssize_t n = send(c->fd, c->answer + c->sent, c->answer_len - c->sent, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return 0;
        if (n <= 0)
            return -1;
        c->sent += (size_t)n;
    }
    return -1;
}

void metrics_server_handle(struct metrics_server *server, const struct pollfd *fds, size_t count,
                           uint64_t now_ms, metrics_server_render_fn *render, void *arg)
{
    int listen_fd = -1;
    for (size_t i = 0; i < count; i++) {
        struct client *c = client_of(server, fds[i].fd);
        if (c == NULL) {
            if (fds[i].revents & POLLIN)
                listen_fd = fds[i].fd;
            continue;
        }
        if (fds[i].revents == 0)
            continue;
        int done = 0;
        if (c->state == CLIENT_READING)
            done = read_request(c, render, arg) < 0;
        if (!done && c->state == CLIENT_WRITING)
            done = write_answer(c) < 0;
        if (done)
            drop(server, c);
    }
    for (size_t i = 0; i < METRICS_SERVER_CLIENTS; i++) {
        struct client *c = &server->clients[i];
        if (c->state != CLIENT_FREE && now_ms >= c->deadline_ms) {
            log_debug("metrics: a client did not finish within %d ms; closing it",
                      METRICS_SERVER_DEADLINE_MS);
            drop(server, c);
        }
    }
    /* After the deadlines, so a slot they freed serves the backlog at once. */
    if (listen_fd >= 0)
        accept_clients(server, listen_fd, now_ms);
}

int metrics_server_timeout_ms(const struct metrics_server *server, uint64_t now_ms)
{
    int wait = -1;
    for (size_t i = 0; i < METRICS_SERVER_CLIENTS; i++) {
        const struct client *c = &server->clients[i];
        if (c->state == CLIENT_FREE)
            continue;
        int left = c->deadline_ms > now_ms ? (int)(c->deadline_ms - now_ms) : 0;
        if (wait < 0 || left < wait)
            wait = left;
    }
    return wait;
}
