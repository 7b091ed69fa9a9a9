/* stream_gap — the longest pause in a stream through an echo path (make bench-vm).
 *
 *   stream_gap --connect 127.0.0.1:PORT --bytes N
 *
 * One TCP connection: writes N bytes of a counting pattern as fast as the path takes
 * them while reading the echo, then shuts down its write side and reads to EOF. Every
 * read that returns data is timed (CLOCK_MONOTONIC); the gap is the time between two
 * such reads, so a stall anywhere on the path (a KeyUpdate in a tunnel, say) shows as
 * the longest gap. The echo is checked byte for byte.
 *
 * Prints one line:
 *   stream_gap: bytes=N wall_ms=X max_gap_ms=X reads=N
 * Exit status 0 on success, 1 when the connection fails or the echo differs, 2 on bad
 * usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define CHUNK 65536

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static unsigned char pattern(uint64_t offset)
{
    return (unsigned char)(offset * 7 + (offset >> 13));
}

int main(int argc, char **argv)
{
    const char *connect_to = NULL;
    uint64_t total = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--connect") == 0)
            connect_to = argv[i + 1];
        else if (strcmp(argv[i], "--bytes") == 0)
            total = strtoull(argv[i + 1], NULL, 10);
        else
            goto usage;
    }
    const char *colon = connect_to ? strrchr(connect_to, ':') : NULL;
    if (argc != 5 || colon == NULL || total == 0)
        goto usage;
    char host[64];
    if ((size_t)(colon - connect_to) >= sizeof(host))
        goto usage;
    memcpy(host, connect_to, (size_t)(colon - connect_to));
    host[colon - connect_to] = '\0';
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons((uint16_t)strtoul(colon + 1, NULL, 10)) };
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1)
        goto usage;

    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0 || (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS)) {
        perror("stream_gap: connect");
        return 1;
    }
    static unsigned char out[CHUNK], in[CHUNK];
    uint64_t sent = 0, received = 0, reads = 0;
    double start = now_ms(), last = 0, max_gap = 0;
    int shut = 0;
    for (;;) {
        struct pollfd p = { .fd = fd, .events = POLLIN | (sent < total ? POLLOUT : 0) };
        if (poll(&p, 1, 120000) <= 0) {
            fprintf(stderr, "stream_gap: nothing moved for 120 s (sent %llu, got %llu)\n",
                    (unsigned long long)sent, (unsigned long long)received);
            return 1;
        }
        if (sent < total && (p.revents & POLLOUT)) {
            size_t len = total - sent < CHUNK ? (size_t)(total - sent) : CHUNK;
            for (size_t i = 0; i < len; i++)
                out[i] = pattern(sent + i);
            ssize_t n = send(fd, out, len, MSG_NOSIGNAL);
            if (n < 0 && errno != EAGAIN) {
                perror("stream_gap: send");
                return 1;
            }
            if (n > 0)
                sent += (uint64_t)n;
        }
        if (sent == total && !shut) {
            shutdown(fd, SHUT_WR);
            shut = 1;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(fd, in, sizeof(in));
            if (n < 0 && errno != EAGAIN) {
                perror("stream_gap: read");
                return 1;
            }
            if (n == 0)
                break;
            if (n > 0) {
                double t = now_ms();
                if (reads > 0 && t - last > max_gap)
                    max_gap = t - last;
                last = t;
                reads++;
                for (ssize_t i = 0; i < n; i++)
                    if (in[i] != pattern(received + (uint64_t)i)) {
                        unsigned long long at = received + (uint64_t)i;
                        fprintf(stderr, "stream_gap: echo differs at %llu\n", at);
                        return 1;
                    }
                received += (uint64_t)n;
            }
        }
    }
    close(fd);
    if (received != total) {
        fprintf(stderr, "stream_gap: got %llu bytes back of %llu\n", (unsigned long long)received,
                (unsigned long long)total);
        return 1;
    }
    printf("stream_gap: bytes=%llu wall_ms=%.0f max_gap_ms=%.1f reads=%llu\n",
           (unsigned long long)total, now_ms() - start, max_gap, (unsigned long long)reads);
    return 0;
usage:
    fprintf(stderr, "usage: stream_gap --connect IPV4:PORT --bytes N\n");
    return 2;
}
