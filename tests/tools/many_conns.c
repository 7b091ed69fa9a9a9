/* many_conns — thousands of concurrent echo connections from one thread (epoll).
 *
 *   many_conns ADDR --connections N --min-bytes b --max-bytes B --seed S
 *              [--active K] [--timeout SECONDS]
 *
 * ADDR is IPv4:PORT. Opens N connections to an echo service and keeps every one of
 * them open at once: first each sends the first byte of its payload and waits for its
 * echo, and only once all N have had theirs back ("open N at once") does any send the
 * rest. The payload of each is pseudo-random, its size drawn uniformly from [b, B]
 * (deterministic from S; connection 0 gets b, connection 1 gets B, b >= 1); each shuts
 * down its write side after the last byte and reads until EOF, and every byte echoed
 * is checked against the one sent at that offset, then the length. With --active, at
 * most K connections send and drain at a time after that (the others stay open,
 * idle, until their turn), which bounds what the kernel holds in socket buffers.
 *
 * Raises its own RLIMIT_NOFILE soft limit to the hard one. Prints one line per failed
 * connection (at most 20) and the summary
 *   many_conns: N ok, N failed, BYTES bytes each way, N open at once
 * Exit status: 0 when every connection is ok, 1 otherwise, 2 on bad usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK ((size_t)64 * 1024)
#define MAX_REPORTS 20

enum state { OPENING, GREETED, SENDING, DRAINING, DONE, FAILED };

struct conn {
    int fd;
    unsigned index;
    enum state state;
    uint64_t size, sent, received;
    uint32_t watching;
};

static uint64_t seed;
static unsigned reports;

static uint64_t splitmix(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* Byte OFFSET of connection INDEX's payload. */
static unsigned char payload_byte(unsigned index, uint64_t offset)
{
    uint64_t word = splitmix(seed * 1000003ULL + ((uint64_t)index << 40) + (offset >> 3));
    return (unsigned char)(word >> ((offset & 7) * 8));
}

/* LEN bytes of connection INDEX's payload from OFFSET: one hash per 8 bytes, since
 * under TCG the payload, not the relay, would otherwise be the slow part. */
static void fill(unsigned index, uint64_t offset, unsigned char *buf, size_t len)
{
    size_t i = 0;
    for (; i < len && ((offset + i) & 7) != 0; i++)
        buf[i] = payload_byte(index, offset + i);
    for (; i + 8 <= len; i += 8) {
        uint64_t word = splitmix(seed * 1000003ULL + ((uint64_t)index << 40) + ((offset + i) >> 3));
        for (unsigned b = 0; b < 8; b++)
            buf[i + b] = (unsigned char)(word >> (b * 8));
    }
    for (; i < len; i++)
        buf[i] = payload_byte(index, offset + i);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Fails C with WHAT (and DETAIL after a colon when not NULL). */
static void fail(struct conn *c, const char *what, const char *detail)
{
    if (reports++ < MAX_REPORTS) {
        fprintf(stderr, "connection %u (%llu bytes, sent %llu, got %llu): ", c->index,
                (unsigned long long)c->size, (unsigned long long)c->sent,
                (unsigned long long)c->received);
        fprintf(stderr, "%s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    }
    c->state = FAILED;
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

static void watch(int epfd, struct conn *c, uint32_t events)
{
    if (c->fd < 0 || c->watching == events)
        return;
    struct epoll_event ev = { .events = events, .data.ptr = c };
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->watching = events;
}

/* Reads what is there; checks it. Returns 1 at EOF, 0 otherwise (or fails C). */
static int take(struct conn *c)
{
    unsigned char buf[CHUNK];
    for (;;) {
        ssize_t n = read(c->fd, buf, sizeof(buf));
        if (n == 0)
            return 1;
        if (n < 0) {
            if (errno != EAGAIN)
                fail(c, "read", strerror(errno));
            return 0;
        }
        if (c->received + (uint64_t)n > c->size) {
            fail(c, "more bytes echoed than sent", NULL);
            return 0;
        }
        unsigned char want[CHUNK];
        fill(c->index, c->received, want, (size_t)n);
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != want[i]) {
                char at[32];
                unsigned long long offset = c->received + (uint64_t)i;
                snprintf(at, sizeof(at), "%llu", offset);
                fail(c, "echoed data differs at offset", at);
                return 0;
            }
        }
        c->received += (uint64_t)n;
    }
}

/* Sends up to LIMIT bytes of the payload. */
static void give(struct conn *c, uint64_t limit)
{
    unsigned char buf[CHUNK];
    while (c->sent < limit) {
        size_t len = (size_t)(limit - c->sent < CHUNK ? limit - c->sent : CHUNK);
        fill(c->index, c->sent, buf, len);
        ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno != EAGAIN)
                fail(c, "send", strerror(errno));
            return;
        }
        c->sent += (uint64_t)n;
    }
}

static void step(int epfd, struct conn *c, int go)
{
    if (c->state == OPENING) {
        give(c, 1);
        if (c->state == FAILED)
            return;
        if (c->sent == 1 && take(c) == 1) {
            fail(c, "EOF before the echo of the first byte", NULL);
            return;
        }
        if (c->state == FAILED)
            return;
        if (c->received == 1)
            c->state = GREETED;
    }
    if (c->state == GREETED && go)
        c->state = SENDING;
    if (c->state == SENDING) {
        give(c, c->size);
        if (c->state == FAILED)
            return;
        if (c->sent == c->size) {
            shutdown(c->fd, SHUT_WR);
            c->state = DRAINING;
        }
    }
    if (c->state == SENDING || c->state == DRAINING || c->state == GREETED) {
        int eof = take(c);
        if (c->state == FAILED)
            return;
        if (eof) {
            if (c->state != DRAINING || c->received != c->size) {
                fail(c, "EOF before the whole echo", NULL);
                return;
            }
            close(c->fd);
            c->fd = -1;
            c->state = DONE;
            return;
        }
    }
    watch(epfd, c, EPOLLIN | (c->state == SENDING || (c->state == OPENING && c->sent == 0)
                              ? EPOLLOUT : 0));
}

static int parse_addr(const char *text, struct sockaddr_in *sa)
{
    char host[64];
    const char *colon = strrchr(text, ':');
    if (colon == NULL || (size_t)(colon - text) >= sizeof(host))
        return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    memset(sa, 0, sizeof(*sa));
    sa->sin_family = AF_INET;
    sa->sin_port = htons((uint16_t)strtoul(colon + 1, NULL, 10));
    return inet_pton(AF_INET, host, &sa->sin_addr) == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
    struct sockaddr_in sa;
    unsigned n = 0;
    uint64_t min_bytes = 1, max_bytes = 0;
    double timeout = 120;
    unsigned active_max = 0;
    if (argc < 2 || parse_addr(argv[1], &sa) < 0)
        goto usage;
    for (int i = 2; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--connections") == 0)
            n = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--min-bytes") == 0)
            min_bytes = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--max-bytes") == 0)
            max_bytes = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--seed") == 0)
            seed = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--active") == 0)
            active_max = (unsigned)strtoul(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--timeout") == 0)
            timeout = strtod(argv[i + 1], NULL);
        else
            goto usage;
    }
    if (argc % 2 != 0 || n == 0 || min_bytes == 0 || max_bytes < min_bytes)
        goto usage;
    if (active_max == 0)
        active_max = n;

    struct rlimit lim;
    if (getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
    }
    struct conn *conns = calloc(n, sizeof(*conns));
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    if (conns == NULL || epfd < 0) {
        perror("many_conns");
        free(conns);
        return 1;
    }
    uint64_t total = 0;
    for (unsigned i = 0; i < n; i++) {
        struct conn *c = &conns[i];
        c->index = i;
        c->size = i == 0 ? min_bytes : i == 1 ? max_bytes
                : min_bytes + splitmix(seed ^ (0xC0FFEEULL + i)) % (max_bytes - min_bytes + 1);
        total += c->size;
        c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (c->fd < 0) {
            fail(c, "socket", strerror(errno));
            continue;
        }
        if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
            fail(c, "connect", strerror(errno));
            continue;
        }
        c->watching = EPOLLIN | EPOLLOUT;
        struct epoll_event ev = { .events = c->watching, .data.ptr = c };
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            fail(c, "epoll_ctl", strerror(errno));
    }

    double deadline = now_s() + timeout;
    int go = 0;
    unsigned open_at_once = 0, next = 0;
    struct epoll_event events[256];
    for (;;) {
        unsigned live = 0, greeted = 0, active = 0;
        for (unsigned i = 0; i < n; i++) {
            live += conns[i].state != DONE && conns[i].state != FAILED;
            greeted += conns[i].state == GREETED;
            active += conns[i].state == SENDING || conns[i].state == DRAINING;
        }
        if (!go && greeted + (n - live) == n) {
            open_at_once = greeted;
            go = 1;
            fprintf(stderr, "many_conns: %u open at once after %.0f s\n", greeted,
                    now_s() - deadline + timeout);
        }
        if (go && active < active_max && next < n) {
            for (; next < n && active < active_max; next++)
                if (conns[next].state == GREETED) {
                    step(epfd, &conns[next], 1);
                    active++;
                }
            continue;
        }
        if (live == 0)
            break;
        if (now_s() > deadline) {
            for (unsigned i = 0; i < n; i++)
                if (conns[i].state != DONE && conns[i].state != FAILED)
                    fail(&conns[i], "timed out", NULL);
            break;
        }
        int ready = epoll_wait(epfd, events, 256, 1000);
        /* Only the connections whose turn came (below NEXT) may start sending. */
        for (int e = 0; e < ready; e++) {
            struct conn *c = events[e].data.ptr;
            step(epfd, c, go && c->index < next);
        }
    }

    unsigned ok = 0;
    for (unsigned i = 0; i < n; i++)
        ok += conns[i].state == DONE;
    printf("many_conns: %u ok, %u failed, %llu bytes each way, %u open at once, %.0f s\n", ok,
           n - ok, (unsigned long long)total, open_at_once, now_s() - deadline + timeout);
    free(conns);
    close(epfd);
    return ok == n ? 0 : 1;
usage:
    fprintf(stderr, "usage: many_conns IPV4:PORT --connections N --min-bytes b --max-bytes B "
                    "--seed S [--active K] [--timeout SECONDS]\n");
    return 2;
}
