/* conn_flood — many connections that never finish a handshake, for the tests of
 * limits and of memory under a flood.
 *
 *   conn_flood ADDR --connections N [--sources FIRST-LAST] [--hello] [--settle-ms MS]
 *              [--hold SECONDS]
 *
 * ADDR is an IPv4 HOST:PORT. Opens N TCP connections at once, each bound to the next
 * source address of FIRST-LAST in turn (e.g. 127.0.0.10-127.0.0.49; default: the
 * kernel's choice). With --hello each sends one TLS ClientHello once connected and
 * then stalls; without it each stays silent. What the server sends is read and
 * dropped. After MS milliseconds (default 1000) it prints
 *   conn_flood: N open, N closed, N failed
 * (open: still connected; closed: the server ended it; failed: no connection), then,
 * with --hold, waits up to SECONDS for the server to end the open ones and prints
 *   conn_flood: all closed after N ms          or
 *   conn_flood: N still open after N ms
 * and closes what is left. Exit status: 0, or 2 on bad usage or setup errors. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

enum state { CONNECTING, OPEN, CLOSED, FAILED };

struct flood {
    struct pollfd *fds;
    enum state *state;
    size_t *hello_sent;
    unsigned count;
    unsigned char hello[4096];
    size_t hello_len;
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The first flight of a TLS client, taken from OpenSSL talking into a memory BIO. */
static int make_client_hello(struct flood *f)
{
    int ok = -1;
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    SSL *ssl = ctx != NULL ? SSL_new(ctx) : NULL;
    BIO *in = BIO_new(BIO_s_mem()), *out = BIO_new(BIO_s_mem());
    if (ssl == NULL || in == NULL || out == NULL) {
        BIO_free(in);
        BIO_free(out);
        goto done;
    }
    SSL_set_bio(ssl, in, out);
    SSL_set_connect_state(ssl);
    SSL_do_handshake(ssl);
    int n = BIO_read(out, f->hello, (int)sizeof(f->hello));
    if (n > 0) {
        f->hello_len = (size_t)n;
        ok = 0;
    }
done:
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    return ok;
}

static int parse_ipv4(const char *text, struct in_addr *out)
{
    return inet_pton(AF_INET, text, out) == 1 ? 0 : -1;
}

/* Moves connection I along on the poll result REVENTS. */
static void step(struct flood *f, unsigned i, short revents)
{
    int fd = f->fds[i].fd;
    if (f->state[i] == CONNECTING) {
        if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
            return;
        int error = 0;
        socklen_t len = sizeof(error);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len);
        f->state[i] = error == 0 ? OPEN : FAILED;
        if (f->state[i] == FAILED) {
            close(fd);
            f->fds[i].fd = -1;
            return;
        }
        f->fds[i].events = POLLIN | POLLRDHUP;
    }
    if (f->state[i] != OPEN)
        return;
    while (f->hello_len > 0 && f->hello_sent[i] < f->hello_len) {
        ssize_t n = send(fd, f->hello + f->hello_sent[i], f->hello_len - f->hello_sent[i],
                         MSG_NOSIGNAL);
        if (n <= 0)
            break;
        f->hello_sent[i] += (size_t)n;
    }
    char sink[4096];
    ssize_t n;
    while ((n = recv(fd, sink, sizeof(sink), MSG_DONTWAIT)) > 0)
        ;
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) ||
        (revents & (POLLHUP | POLLERR))) {
        f->state[i] = CLOSED;
        close(fd);
        f->fds[i].fd = -1;
    }
}

static void run_for(struct flood *f, uint64_t ms, int stop_when_all_closed)
{
    uint64_t end = now_ms() + ms;
    for (uint64_t now = now_ms(); now < end; now = now_ms()) {
        int ready = poll(f->fds, f->count, (int)(end - now));
        if (ready < 0 && errno != EINTR)
            return;
        int open = 0;
        for (unsigned i = 0; i < f->count; i++) {
            if (f->fds[i].fd >= 0 && f->fds[i].revents != 0)
                step(f, i, f->fds[i].revents);
            open += f->state[i] == OPEN || f->state[i] == CONNECTING;
        }
        if (stop_when_all_closed && open == 0)
            return;
    }
}

static unsigned count_state(const struct flood *f, enum state s)
{
    unsigned n = 0;
    for (unsigned i = 0; i < f->count; i++)
        n += f->state[i] == s;
    return n;
}

int main(int argc, char **argv)
{
    struct flood f = { 0 };
    unsigned settle_ms = 1000;
    double hold = 0;
    int hello = 0;
    struct in_addr first = { 0 }, last = { 0 };
    int sources = 0;
    if (argc < 2) {
        fprintf(stderr, "usage: conn_flood ADDR --connections N [--sources FIRST-LAST] [--hello] "
                        "[--settle-ms MS] [--hold S]\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--hello") == 0) {
            hello = 1;
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "conn_flood: %s needs a value\n", argv[i]);
            return 2;
        }
        if (strcmp(argv[i], "--connections") == 0) {
            f.count = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--settle-ms") == 0) {
            settle_ms = (unsigned)strtoul(argv[++i], NULL, 10);
        } else if (strcmp(argv[i], "--hold") == 0) {
            hold = strtod(argv[++i], NULL);
        } else if (strcmp(argv[i], "--sources") == 0) {
            char range[64];
            snprintf(range, sizeof(range), "%s", argv[++i]);
            char *dash = strchr(range, '-');
            if (dash == NULL)
                dash = range + strlen(range);
            else
                *dash++ = '\0';
            if (parse_ipv4(range, &first) < 0 || parse_ipv4(*dash ? dash : range, &last) < 0 ||
                ntohl(last.s_addr) < ntohl(first.s_addr)) {
                fprintf(stderr, "conn_flood: bad --sources %s\n", argv[i]);
                return 2;
            }
            sources = 1;
        } else {
            fprintf(stderr, "conn_flood: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    char host[64];
    const char *colon = strrchr(argv[1], ':');
    struct sockaddr_in target = { .sin_family = AF_INET };
    if (f.count == 0 || colon == NULL || (size_t)(colon - argv[1]) >= sizeof(host)) {
        fprintf(stderr, "conn_flood: need ADDR as HOST:PORT and --connections N\n");
        return 2;
    }
    memcpy(host, argv[1], (size_t)(colon - argv[1]));
    host[colon - argv[1]] = '\0';
    target.sin_port = htons((uint16_t)strtoul(colon + 1, NULL, 10));
    if (parse_ipv4(host, &target.sin_addr) < 0) {
        fprintf(stderr, "conn_flood: bad address %s\n", argv[1]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (hello && make_client_hello(&f) < 0) {
        fprintf(stderr, "conn_flood: cannot build a ClientHello\n");
        return 2;
    }
    f.fds = calloc(f.count, sizeof(*f.fds));
    f.state = calloc(f.count, sizeof(*f.state));
    f.hello_sent = calloc(f.count, sizeof(*f.hello_sent));
    if (f.fds == NULL || f.state == NULL || f.hello_sent == NULL) {
        fprintf(stderr, "conn_flood: out of memory\n");
        free(f.fds);
        free(f.state);
        free(f.hello_sent);
        return 2;
    }
    uint32_t span = sources ? ntohl(last.s_addr) - ntohl(first.s_addr) + 1 : 1;
    for (unsigned i = 0; i < f.count; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        f.fds[i] = (struct pollfd){ .fd = fd, .events = POLLOUT };
        f.state[i] = CONNECTING;
        if (fd >= 0 && sources) {
            struct sockaddr_in local = { .sin_family = AF_INET };
            local.sin_addr.s_addr = htonl(ntohl(first.s_addr) + i % span);
            if (bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0) {
                close(fd);
                fd = -1;
            }
        }
        if (fd < 0 || (connect(fd, (struct sockaddr *)&target, sizeof(target)) < 0 &&
                       errno != EINPROGRESS)) {
            if (fd >= 0)
                close(fd);
            f.fds[i].fd = -1;
            f.state[i] = FAILED;
        }
    }
    run_for(&f, settle_ms, 0);
    printf("conn_flood: %u open, %u closed, %u failed\n", count_state(&f, OPEN) + count_state(&f, CONNECTING),
           count_state(&f, CLOSED), count_state(&f, FAILED));
    fflush(stdout);
    if (hold > 0) {
        uint64_t start = now_ms();
        run_for(&f, (uint64_t)(hold * 1000), 1);
        unsigned open = count_state(&f, OPEN) + count_state(&f, CONNECTING);
        if (open == 0)
            printf("conn_flood: all closed after %llu ms\n", (unsigned long long)(now_ms() - start));
        else
            printf("conn_flood: %u still open after %llu ms\n", open,
                   (unsigned long long)(now_ms() - start));
    }
    for (unsigned i = 0; i < f.count; i++)
        if (f.fds[i].fd >= 0)
            close(f.fds[i].fd);
    free(f.fds);
    free(f.state);
    free(f.hello_sent);
    return 0;
}
