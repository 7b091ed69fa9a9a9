/* echo_server — the integration tests' backend: echoes every byte back.
 *
 *   echo_server [-v] LISTEN_ADDR        LISTEN_ADDR = 127.0.0.1:PORT, [::1]:PORT or unix:/path
 *
 * Prints "listening" once the socket accepts connections. With -v it also prints
 * "accepted N" per connection and "closed N bytes=B" when one ends, so a test can
 * prove a refused peer never reached the backend.
 *
 * Half-close is honoured: after EOF from the peer the server finishes echoing what
 * it holds, then shutdown(SHUT_WR)s. Each connection has a bounded buffer: when it
 * is full the server stops reading, so backpressure reaches the sender. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define BUFFER_SIZE (64 * 1024)
#define MAX_EVENTS 64

struct connection {
    int fd;
    unsigned long id;
    unsigned char buf[BUFFER_SIZE];
    size_t head;            /* next byte to send */
    size_t tail;            /* next free byte */
    int peer_eof;
    int write_shut;
    unsigned long long bytes;
    uint32_t events;        /* what epoll currently watches */
};

static int verbose;

static int parse_listen_address(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    if (strncmp(text, "unix:", 5) == 0) {
        struct sockaddr_un *sun = (struct sockaddr_un *)ss;
        const char *path = text + 5;
        if (strlen(path) == 0 || strlen(path) >= sizeof(sun->sun_path))
            return -1;
        sun->sun_family = AF_UNIX;
        strcpy(sun->sun_path, path);
        *len = sizeof(*sun);
        return 0;
    }
    char host[256];
    const char *colon = strrchr(text, ':');
    if (colon == NULL || (size_t)(colon - text) >= sizeof(host))
        return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535)
        return -1;
    if (host[0] == '[') {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        size_t hl = strlen(host);
        if (hl < 2 || host[hl - 1] != ']')
            return -1;
        host[hl - 1] = '\0';
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host + 1, &sin6->sin6_addr) != 1)
            return -1;
        *len = sizeof(*sin6);
        return 0;
    }
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
        return -1;
    *len = sizeof(*sin);
    return 0;
}

static void connection_close(int epfd, struct connection *c)
{
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    if (verbose)
        printf("closed %lu bytes=%llu\n", c->id, c->bytes);
    free(c);
}

static int connection_update_events(int epfd, struct connection *c)
{
    uint32_t want = 0;
    if (!c->peer_eof && c->tail < BUFFER_SIZE)
        want |= EPOLLIN;
    if (c->head < c->tail)
        want |= EPOLLOUT;
    if (want == c->events)
        return 0;
    struct epoll_event ev = { .events = want, .data.ptr = c };
    c->events = want;
    return epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

/* Moves as many bytes as possible; returns -1 when the connection is finished. */
static int connection_service(int epfd, struct connection *c, uint32_t revents)
{
    if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
        while (!c->peer_eof && c->tail < BUFFER_SIZE) {
            ssize_t n = read(c->fd, c->buf + c->tail, BUFFER_SIZE - c->tail);
            if (n > 0) {
                c->tail += (size_t)n;
                c->bytes += (unsigned long long)n;
            } else if (n == 0) {
                c->peer_eof = 1;
            } else if (errno == EINTR) {
                continue;
            } else if (errno == EAGAIN) {
                break;
            } else {
                return -1;
            }
        }
    }
    while (c->head < c->tail) {
        ssize_t n = send(c->fd, c->buf + c->head, c->tail - c->head, MSG_NOSIGNAL);
        if (n > 0) {
            c->head += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && errno == EAGAIN) {
            break;
        } else {
            return -1;
        }
    }
    if (c->head == c->tail)
        c->head = c->tail = 0;
    if (c->peer_eof && c->head == c->tail && !c->write_shut) {
        shutdown(c->fd, SHUT_WR);
        c->write_shut = 1;
    }
    if (c->write_shut)
        return -1;
    return connection_update_events(epfd, c) < 0 ? -1 : 0;
}

static void accept_all(int epfd, int lfd, unsigned long *next_id)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                perror("echo_server: accept");
            return;
        }
        struct connection *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->id = ++*next_id;
        c->events = EPOLLIN;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
            perror("echo_server: epoll_ctl");
            close(fd);
            free(c);
            continue;
        }
        if (verbose)
            printf("accepted %lu\n", c->id);
    }
}

int main(int argc, char **argv)
{
    int argi = 1;
    if (argi < argc && strcmp(argv[argi], "-v") == 0) {
        verbose = 1;
        argi++;
    }
    if (argi + 1 != argc) {
        fprintf(stderr, "usage: echo_server [-v] 127.0.0.1:PORT|[::1]:PORT|unix:/path\n");
        return 2;
    }
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (parse_listen_address(argv[argi], &ss, &sslen) < 0) {
        fprintf(stderr, "echo_server: bad address %s\n", argv[argi]);
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    signal(SIGPIPE, SIG_IGN);

    int lfd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0) {
        perror("echo_server: socket");
        return 1;
    }
    int one = 1;
    if (ss.ss_family == AF_UNIX)
        unlink(((struct sockaddr_un *)&ss)->sun_path);
    else
        setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(lfd, (struct sockaddr *)&ss, sslen) < 0 || listen(lfd, 1024) < 0) {
        perror("echo_server: bind/listen");
        return 1;
    }
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = { .events = EPOLLIN, .data.ptr = NULL };
    if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) < 0) {
        perror("echo_server: epoll");
        return 1;
    }
    printf("listening\n");

    unsigned long next_id = 0;
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(epfd, events, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("echo_server: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            struct connection *c = events[i].data.ptr;
            if (c == NULL) {
                accept_all(epfd, lfd, &next_id);
                continue;
            }
            if (connection_service(epfd, c, events[i].events) < 0)
                connection_close(epfd, c);
        }
    }
}
