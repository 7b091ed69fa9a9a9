/* pingpong — round-trip latency of small messages through an echo path (make bench).
 *
 *   pingpong --connect 127.0.0.1:PORT [--size BYTES] [--count N] [--warmup N]
 *
 * One TCP connection (TCP_NODELAY), blocking: writes SIZE bytes, reads the SIZE bytes
 * echoed back, checks them, and times each round trip with CLOCK_MONOTONIC. The first
 * WARMUP round trips (default 100) are not counted: they pay for the tunnels' first
 * buffer allocations and the connection set-up behind them.
 *
 * Prints one line (microseconds):
 *   pingpong: count=N size=S min_us=X p50_us=X p90_us=X p99_us=X max_us=X mean_us=X
 * Exit status 0 on success, 1 when the connection fails or an echo differs, 2 on bad
 * usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_SIZE 65536

struct options {
    const char *connect;
    size_t size;
    long count;
    long warmup;
};

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

static int parse_options(int argc, char **argv, struct options *opt)
{
    *opt = (struct options){ .size = 64, .count = 10000, .warmup = 100 };
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *name = argv[i], *value = argv[i + 1];
        if (strcmp(name, "--connect") == 0)
            opt->connect = value;
        else if (strcmp(name, "--size") == 0)
            opt->size = (size_t)atol(value);
        else if (strcmp(name, "--count") == 0)
            opt->count = atol(value);
        else if (strcmp(name, "--warmup") == 0)
            opt->warmup = atol(value);
        else
            return -1;
    }
    if (argc % 2 == 0 || opt->connect == NULL || opt->size == 0 || opt->size > MAX_SIZE ||
        opt->count < 1 || opt->warmup < 0)
        return -1;
    return 0;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int write_all(int fd, const unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int read_all(int fd, unsigned char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = recv(fd, buf, len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

static int compare_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of SORTED (COUNT values), in microseconds. */
static double percentile_us(const uint64_t *sorted, long count, double p)
{
    long rank = (long)(p / 100.0 * (double)count + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > count)
        rank = count;
    return (double)sorted[rank - 1] / 1000.0;
}

static int ping_pong(int fd, const struct options *opt, uint64_t *samples)
{
    unsigned char sent[MAX_SIZE], got[MAX_SIZE];
    for (long i = -opt->warmup; i < opt->count; i++) {
        /* Every message differs, so a relay that replays stale bytes is caught. */
        for (size_t j = 0; j < opt->size; j++)
            sent[j] = (unsigned char)(i * 131 + (long)j * 7);
        uint64_t start = now_ns();
        if (write_all(fd, sent, opt->size) < 0 || read_all(fd, got, opt->size) < 0) {
            fprintf(stderr, "pingpong: round trip %ld: %s\n", i + opt->warmup,
                    errno ? strerror(errno) : "connection closed");
            return -1;
        }
        uint64_t elapsed = now_ns() - start;
        if (memcmp(sent, got, opt->size) != 0) {
            fprintf(stderr, "pingpong: round trip %ld: echo differs from what was sent\n",
                    i + opt->warmup);
            return -1;
        }
        if (i >= 0)
            samples[i] = elapsed;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int status = 2;
    struct options opt;
    struct sockaddr_in target;
    uint64_t *samples = NULL;
    int fd = -1;
    if (parse_options(argc, argv, &opt) < 0 || parse_ipv4_address(opt.connect, &target) < 0) {
        fprintf(stderr, "usage: pingpong --connect IPv4:PORT [--size BYTES (1-%d)] [--count N] "
                        "[--warmup N]\n", MAX_SIZE);
        goto out;
    }
    status = 1;
    signal(SIGPIPE, SIG_IGN);
    samples = calloc((size_t)opt.count, sizeof(*samples));
    if (samples == NULL) {
        fprintf(stderr, "pingpong: out of memory\n");
        goto out;
    }
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&target, sizeof(target)) < 0) {
        fprintf(stderr, "pingpong: connect %s: %s\n", opt.connect, strerror(errno));
        goto out_fd;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (ping_pong(fd, &opt, samples) < 0)
        goto out_fd;
    qsort(samples, (size_t)opt.count, sizeof(*samples), compare_u64);
    double sum = 0;
    for (long i = 0; i < opt.count; i++)
        sum += (double)samples[i];
    printf("pingpong: count=%ld size=%zu min_us=%.1f p50_us=%.1f p90_us=%.1f p99_us=%.1f "
           "max_us=%.1f mean_us=%.1f\n",
           opt.count, opt.size, (double)samples[0] / 1000.0, percentile_us(samples, opt.count, 50),
           percentile_us(samples, opt.count, 90), percentile_us(samples, opt.count, 99),
           (double)samples[opt.count - 1] / 1000.0, sum / (double)opt.count / 1000.0);
    status = 0;
out_fd:
    if (fd >= 0)
        close(fd);
out:
    free(samples);
    return status;
}
