/* idle_conns — opens N connections through an echo path and holds them (make bench).
 *
 *   idle_conns --connect 127.0.0.1:PORT --steps N1[,N2...] [--inflight K] [--timeout SECONDS]
 *
 * Opens connections until N1 are established, at most K (default 64) being set up at
 * once. A connection counts as established once one byte sent into it has come back:
 * for a tunnel pair that proves the whole path (handshake, target connect, relay) is
 * up. Then it prints
 *   established N seconds=T
 * and waits for a line on stdin before growing to N2, and so on. After the last step
 * it waits for stdin to close (or a line), closes every connection and prints
 *   closed N
 * RLIMIT_NOFILE is raised to what the last step needs. Exit status 0 on success, 1
 * when a connection fails or a step takes longer than --timeout (default 120 s), 2 on
 * bad usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_STEPS 16
#define MAX_EVENTS 256
#define PROBE_BYTE 'i'

struct options {
    const char *connect;
    long steps[MAX_STEPS];
    int step_count;
    int inflight;
    double timeout;
};

enum conn_state { CONN_CONNECTING, CONN_WAITING_ECHO, CONN_ESTABLISHED };

struct conn {
    int fd;
    enum conn_state state;
};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int parse_ipv4_address(const char *text, struct sockaddr_in *out)
{
    char host[64];
    const char *colon = strrchr(text, ':');
    if (colon == NULL || (size_t)(colon - text) >= sizeof(host))
        return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port <= 0 || port > 65535)
        return -1;
    memset(out, 0, sizeof(*out));
    out->sin_family = AF_INET;
    out->sin_port = htons((uint16_t)port);
    return inet_pton(AF_INET, host, &out->sin_addr) == 1 ? 0 : -1;
}

static int parse_steps(const char *text, struct options *opt)
{
    const char *p = text;
    long previous = 0;
    while (*p != '\0') {
        char *end;
        long n = strtol(p, &end, 10);
        if (end == p || n <= previous || opt->step_count == MAX_STEPS || (*end != ',' && *end != '\0'))
            return -1;
        opt->steps[opt->step_count++] = n;
        previous = n;
        p = *end == ',' ? end + 1 : end;
    }
    return opt->step_count > 0 ? 0 : -1;
}

static int parse_options(int argc, char **argv, struct options *opt)
{
    *opt = (struct options){ .inflight = 64, .timeout = 120.0 };
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *name = argv[i], *value = argv[i + 1];
        if (strcmp(name, "--connect") == 0)
            opt->connect = value;
        else if (strcmp(name, "--steps") == 0) {
            if (parse_steps(value, opt) < 0)
                return -1;
        } else if (strcmp(name, "--inflight") == 0)
            opt->inflight = atoi(value);
        else if (strcmp(name, "--timeout") == 0)
            opt->timeout = atof(value);
        else
            return -1;
    }
    if (argc % 2 == 0 || opt->connect == NULL || opt->step_count == 0 || opt->inflight < 1 ||
        opt->timeout <= 0)
        return -1;
    return 0;
}

static int raise_fd_limit(long needed)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) < 0)
        return -1;
    if ((long)limit.rlim_cur >= needed)
        return 0;
    limit.rlim_cur = (rlim_t)needed;
    if ((long)limit.rlim_max < needed)
        limit.rlim_max = (rlim_t)needed;   /* needs CAP_SYS_RESOURCE */
    if (setrlimit(RLIMIT_NOFILE, &limit) < 0) {
        fprintf(stderr, "idle_conns: cannot raise RLIMIT_NOFILE to %ld: %s\n", needed, strerror(errno));
        return -1;
    }
    return 0;
}

struct pool {
    const struct options *opt;
    struct sockaddr_in target;
    int epoll_fd;
    struct conn *conns;
    long opened;        /* conns[0..opened) exist */
    long established;
    long pending;       /* opened, not yet established */
};

static int open_one(struct pool *p)
{
    struct conn *c = &p->conns[p->opened];
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        fprintf(stderr, "idle_conns: socket (connection %ld): %s\n", p->opened + 1, strerror(errno));
        return -1;
    }
    c->state = CONN_CONNECTING;
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c };
    if (epoll_ctl(p->epoll_fd, EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        fprintf(stderr, "idle_conns: epoll_ctl: %s\n", strerror(errno));
        close(c->fd);
        return -1;
    }
    p->opened++;
    p->pending++;
    if (connect(c->fd, (struct sockaddr *)&p->target, sizeof(p->target)) < 0 && errno != EINPROGRESS) {
        fprintf(stderr, "idle_conns: connect (connection %ld): %s\n", p->opened, strerror(errno));
        return -1;
    }
    return 0;
}

/* Returns 0 when C progressed or waits, -1 when it failed. */
static int advance(struct pool *p, struct conn *c, uint32_t events)
{
    if (c->state == CONN_CONNECTING) {
        int error = 0;
        socklen_t len = sizeof(error);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &error, &len);
        if (error != 0) {
            fprintf(stderr, "idle_conns: connect: %s\n", strerror(error));
            return -1;
        }
        if (!(events & EPOLLOUT))
            return 0;
        char byte = PROBE_BYTE;
        if (send(c->fd, &byte, 1, MSG_NOSIGNAL) != 1) {
            fprintf(stderr, "idle_conns: send: %s\n", strerror(errno));
            return -1;
        }
        c->state = CONN_WAITING_ECHO;
    }
    if (c->state == CONN_WAITING_ECHO) {
        char byte = 0;
        ssize_t n = recv(c->fd, &byte, 1, 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        if (n != 1 || byte != PROBE_BYTE) {
            fprintf(stderr, "idle_conns: connection %ld: %s\n", (long)(c - p->conns) + 1,
                    n == 0 ? "closed by the other side before the echo"
                           : n < 0 ? strerror(errno) : "wrong echo byte");
            return -1;
        }
        c->state = CONN_ESTABLISHED;
        p->pending--;
        p->established++;
        return 0;
    }
    /* Established and idle: anything but silence means the path broke. */
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
        fprintf(stderr, "idle_conns: established connection %ld was closed or sent data\n",
                (long)(c - p->conns) + 1);
        return -1;
    }
    return 0;
}

static int grow_to(struct pool *p, long target)
{
    double deadline = now_seconds() + p->opt->timeout;
    struct epoll_event events[MAX_EVENTS];
    while (p->established < target) {
        while (p->opened < target && p->pending < p->opt->inflight)
            if (open_one(p) < 0)
                return -1;
        double left = deadline - now_seconds();
        if (left <= 0) {
            fprintf(stderr, "idle_conns: only %ld of %ld connections established after %.0f s\n",
                    p->established, target, p->opt->timeout);
            return -1;
        }
        int n = epoll_wait(p->epoll_fd, events, MAX_EVENTS, (int)(left * 1000) + 1);
        if (n < 0 && errno != EINTR) {
            fprintf(stderr, "idle_conns: epoll_wait: %s\n", strerror(errno));
            return -1;
        }
        for (int i = 0; i < n; i++)
            if (advance(p, events[i].data.ptr, events[i].events) < 0)
                return -1;
    }
    return 0;
}

/* Waits for a line (or EOF) on stdin while watching the held connections. */
static int hold(struct pool *p)
{
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
    if (epoll_ctl(p->epoll_fd, EPOLL_CTL_ADD, STDIN_FILENO, &ev) < 0) {
        /* A regular file or /dev/null cannot be watched, and it is at EOF anyway. */
        if (errno == EPERM)
            return 0;
        fprintf(stderr, "idle_conns: cannot watch stdin: %s\n", strerror(errno));
        return -1;
    }
    int result = 0;
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int n = epoll_wait(p->epoll_fd, events, MAX_EVENTS, -1);
        if (n < 0 && errno != EINTR) {
            result = -1;
            break;
        }
        int go_on = 0;
        for (int i = 0; i < n; i++) {
            if (events[i].data.ptr == NULL) {
                char line[64];
                (void)!read(STDIN_FILENO, line, sizeof(line));
                go_on = 1;
            } else if (advance(p, events[i].data.ptr, events[i].events) < 0) {
                result = -1;
            }
        }
        if (go_on || result < 0)
            break;
    }
    epoll_ctl(p->epoll_fd, EPOLL_CTL_DEL, STDIN_FILENO, NULL);
    return result;
}

int main(int argc, char **argv)
{
    int status = 2;
    struct options opt;
    struct pool pool = { .opt = &opt, .epoll_fd = -1 };
    if (parse_options(argc, argv, &opt) < 0 || parse_ipv4_address(opt.connect, &pool.target) < 0) {
        fprintf(stderr, "usage: idle_conns --connect IPv4:PORT --steps N1[,N2...] [--inflight K] "
                        "[--timeout SECONDS]\n");
        goto out;
    }
    status = 1;
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    long last = opt.steps[opt.step_count - 1];
    if (raise_fd_limit(last + 64) < 0)
        goto out;
    pool.conns = calloc((size_t)last, sizeof(*pool.conns));
    pool.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (pool.conns == NULL || pool.epoll_fd < 0) {
        fprintf(stderr, "idle_conns: out of memory or epoll_create1 failed\n");
        goto out_pool;
    }
    for (int s = 0; s < opt.step_count; s++) {
        double started = now_seconds();
        if (grow_to(&pool, opt.steps[s]) < 0)
            goto out_pool;
        printf("established %ld seconds=%.3f\n", pool.established, now_seconds() - started);
        if (hold(&pool) < 0)
            goto out_pool;
    }
    printf("closed %ld\n", pool.established);
    status = 0;
out_pool:
    for (long i = 0; i < pool.opened; i++)
        close(pool.conns[i].fd);
    free(pool.conns);
    if (pool.epoll_fd >= 0)
        close(pool.epoll_fd);
out:
    return status;
}
