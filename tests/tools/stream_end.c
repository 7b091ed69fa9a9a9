/* stream_end — a plain TCP source and sink that tells a clean end (FIN) from a reset,
 * and can reset on purpose: for the tests of how an abort crosses a tunnel.
 *
 *   stream_end listen ADDR [OPTIONS]    accepts one connection on ADDR, prints "listening",
 *                                       then "accepted" once it has it
 *   stream_end connect ADDR [OPTIONS]   connects to ADDR, prints "connected"
 *
 * ADDR is IPv4:PORT. OPTIONS:
 *   --send N         sends N bytes, then ends its direction with a FIN (shutdown)
 *   --reset-after N  once N bytes are sent, resets the connection (SO_LINGER {1,0} and
 *                    close) and stops; without --send it sends until then
 *   --echo           sends back what comes in, and a FIN after the peer's end
 *   --timeout S      gives up after S seconds (default 30)
 * Without --send, --reset-after or --echo it sends nothing and keeps its direction open.
 * It reads until the peer ends its direction, and at the end prints
 *   sent: N
 *   received: N
 *   outcome: eof | reset | we-reset | timeout | error TEXT
 * ("eof" is the peer's FIN, "reset" its RST; "we-reset" when --reset-after ended it.)
 * Exit status: 0 once an outcome was printed, 1 when it could not connect or listen,
 * 2 on bad usage. */
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

#define CHUNK 65536

struct options {
    int listen;
    const char *address;
    long long send;          /* -1: none */
    long long reset_after;   /* -1: none */
    int echo;
    int timeout;
};

static void usage(void)
{
    fprintf(stderr, "usage: stream_end listen|connect IPv4:PORT [--send N] [--reset-after N] "
                    "[--echo] [--timeout S]\n");
    exit(2);
}

/* TEXT as a number of at least 0, or usage() */
static long long number(const char *text)
{
    char *end;
    errno = 0;
    long long value = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < 0)
        usage();
    return value;
}

static int parse_address(const char *text, struct sockaddr_in *sin)
{
    char host[64];
    const char *colon = strrchr(text, ':');
    if (colon == NULL || (size_t)(colon - text) >= sizeof(host))
        return -1;
    memcpy(host, text, (size_t)(colon - text));
    host[colon - text] = '\0';
    memset(sin, 0, sizeof(*sin));
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)number(colon + 1));
    return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -1;
}

static int open_socket(const struct options *opt)
{
    struct sockaddr_in sin;
    if (parse_address(opt->address, &sin) < 0) {
        fprintf(stderr, "stream_end: bad address %s\n", opt->address);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    if (!opt->listen) {
        if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
            fprintf(stderr, "stream_end: connect %s: %s\n", opt->address, strerror(errno));
            close(fd);
            return -1;
        }
        printf("connected\n");
        fflush(stdout);
        return fd;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(fd, 4) < 0) {
        fprintf(stderr, "stream_end: listen %s: %s\n", opt->address, strerror(errno));
        close(fd);
        return -1;
    }
    printf("listening\n");
    fflush(stdout);
    int conn = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
    if (conn < 0)
        fprintf(stderr, "stream_end: accept: %s\n", strerror(errno));
    else
        printf("accepted\n");
    fflush(stdout);
    close(fd);
    return conn;
}

static void parse_options(int argc, char **argv, struct options *opt)
{
    memset(opt, 0, sizeof(*opt));
    opt->send = opt->reset_after = -1;
    opt->timeout = 30;
    if (argc < 3)
        usage();
    if (strcmp(argv[1], "listen") == 0)
        opt->listen = 1;
    else if (strcmp(argv[1], "connect") != 0)
        usage();
    opt->address = argv[2];
    for (int i = 3; i < argc; i++) {
        if (strcmp(argv[i], "--echo") == 0) {
            opt->echo = 1;
            continue;
        }
        if (i + 1 >= argc)
            usage();
        const char *value = argv[++i];
        if (strcmp(argv[i - 1], "--send") == 0)
            opt->send = number(value);
        else if (strcmp(argv[i - 1], "--reset-after") == 0)
            opt->reset_after = number(value);
        else if (strcmp(argv[i - 1], "--timeout") == 0)
            opt->timeout = (int)number(value);
        else
            usage();
    }
    if (opt->timeout <= 0)
        usage();
}

static int is_reset(int error)
{
    return error == ECONNRESET || error == EPIPE;
}

/* Moves the bytes until the connection ends; writes the outcome into OUTCOME. */
static void run(const struct options *opt, int fd, long long *sent, long long *received,
                char *outcome, size_t len)
{
    static char out[CHUNK], in[CHUNK];
    size_t echo_start = 0, echo_end = 0;
    long long to_send = opt->send >= 0 ? opt->send : opt->reset_after >= 0 ? opt->reset_after : 0;
    int read_done = 0, write_done = opt->send < 0 && opt->reset_after < 0 && !opt->echo;
    memset(out, 'x', sizeof(out));
    time_t deadline = time(NULL) + opt->timeout;
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    while (!read_done || !write_done) {
        if (opt->reset_after >= 0 && *sent >= opt->reset_after) {
            struct linger reset = { 1, 0 };
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
            snprintf(outcome, len, "we-reset");
            return;
        }
        int sending = !write_done && (opt->echo ? echo_end > echo_start : *sent < to_send);
        if (!write_done && !sending && (opt->echo ? read_done : 1)) {
            shutdown(fd, SHUT_WR);
            write_done = 1;
            continue;
        }
        int reading = !read_done && (!opt->echo || echo_end < sizeof(in));
        time_t left = deadline - time(NULL);
        if (left <= 0) {
            snprintf(outcome, len, "timeout");
            return;
        }
        struct pollfd pfd = { .fd = fd, .events = (short)((reading ? POLLIN : 0) | (sending ? POLLOUT : 0)) };
        if (poll(&pfd, 1, (int)left * 1000) < 0 && errno != EINTR) {
            snprintf(outcome, len, "error poll: %s", strerror(errno));
            return;
        }
        if (reading) {
            ssize_t n = recv(fd, opt->echo ? in + echo_end : in, opt->echo ? sizeof(in) - echo_end : sizeof(in), 0);
            if (n > 0) {
                *received += n;
                if (opt->echo)
                    echo_end += (size_t)n;
            } else if (n == 0) {
                snprintf(outcome, len, "eof");
                read_done = 1;
            } else if (is_reset(errno)) {
                snprintf(outcome, len, "reset");
                return;
            } else if (errno != EAGAIN && errno != EINTR) {
                snprintf(outcome, len, "error recv: %s", strerror(errno));
                return;
            }
        }
        if (sending) {
            const char *from = opt->echo ? in + echo_start : out;
            size_t want = opt->echo ? echo_end - echo_start : sizeof(out);
            if (!opt->echo && (long long)want > to_send - *sent)
                want = (size_t)(to_send - *sent);
            ssize_t n = send(fd, from, want, MSG_NOSIGNAL);
            if (n > 0) {
                *sent += n;
                if (opt->echo && (echo_start += (size_t)n) == echo_end)
                    echo_start = echo_end = 0;
            } else if (n < 0 && is_reset(errno)) {
                snprintf(outcome, len, "reset");
                return;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                snprintf(outcome, len, "error send: %s", strerror(errno));
                return;
            }
        }
    }
}

int main(int argc, char **argv)
{
    struct options opt;
    parse_options(argc, argv, &opt);
    signal(SIGPIPE, SIG_IGN);
    int fd = open_socket(&opt);
    if (fd < 0)
        return 1;
    long long sent = 0, received = 0;
    char outcome[200] = "";
    run(&opt, fd, &sent, &received, outcome, sizeof(outcome));
    close(fd);
    printf("sent: %lld\nreceived: %lld\noutcome: %s\n", sent, received, outcome);
    return 0;
}
