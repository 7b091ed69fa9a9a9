/* slow_client — a client that trickles: for the tests that check no listener waits on
 * one client.
 *
 *   slow_client ADDR [--interval-ms MS] [--give-up SECONDS] [--repeat N] [--source IP]
 *
 * ADDR is 127.0.0.1:PORT (any IPv4 address) or unix:/path. Connects, then every MS
 * milliseconds (default 900) sends one byte of an HTTP request that never ends (its
 * header goes on and on) and reads at most one byte of what the server sent. Stops
 * when the server closes the connection, and prints
 *   slow_client: cut after N ms
 * or, when it is still connected after SECONDS (default 30),
 *   slow_client: still connected after N ms
 * --repeat connects N times one after the other (a new connection as soon as the
 * previous one was cut). Exit status: 0 when every connection was cut before giving
 * up, 1 otherwise, 2 on bad usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static const char request[] = "GET /metrics HTTP/1.0\r\nX-Slow: ";

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int open_connection(const char *addr, const char *source)
{
    int fd = -1;
    if (strncmp(addr, "unix:", 5) == 0) {
        struct sockaddr_un un = { .sun_family = AF_UNIX };
        if (strlen(addr + 5) >= sizeof(un.sun_path))
            return -1;
        memcpy(un.sun_path, addr + 5, strlen(addr + 5) + 1);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd >= 0 && connect(fd, (struct sockaddr *)&un, sizeof(un)) < 0) {
            close(fd);
            fd = -1;
        }
        return fd;
    }
    char host[64];
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || (size_t)(colon - addr) >= sizeof(host))
        return -1;
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = '\0';
    struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons((uint16_t)strtoul(colon + 1, NULL, 10)) };
    if (inet_pton(AF_INET, host, &in.sin_addr) != 1)
        return -1;
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    if (source != NULL) {
        struct sockaddr_in local = { .sin_family = AF_INET };
        if (inet_pton(AF_INET, source, &local.sin_addr) != 1 ||
            bind(fd, (struct sockaddr *)&local, sizeof(local)) < 0) {
            close(fd);
            return -1;
        }
    }
    if (connect(fd, (struct sockaddr *)&in, sizeof(in)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Returns 1 when the server cut the connection, 0 when GIVE_UP_MS passed first. */
static int trickle(int fd, unsigned interval_ms, uint64_t give_up_ms)
{
    uint64_t start = now_ms();
    size_t sent = 0;
    while (now_ms() - start < give_up_ms) {
        const char *c = sent < sizeof(request) - 1 ? &request[sent] : "a";
        if (send(fd, c, 1, MSG_NOSIGNAL) < 0)
            return 1;
        sent++;
        struct pollfd p = { .fd = fd, .events = POLLRDHUP };
        int ready = poll(&p, 1, (int)interval_ms);
        if (ready > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
            return 1;
        char byte;
        ssize_t n = recv(fd, &byte, 1, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    unsigned interval_ms = 900, repeat = 1;
    double give_up = 30;
    const char *source = NULL;
    if (argc < 2) {
        fprintf(stderr, "usage: slow_client ADDR [--interval-ms MS] [--give-up S] [--repeat N] [--source IP]\n");
        return 2;
    }
    for (int i = 2; i < argc; i++) {
        if (i + 1 >= argc) {
            fprintf(stderr, "slow_client: %s needs a value\n", argv[i]);
            return 2;
        }
        if (strcmp(argv[i], "--interval-ms") == 0)
            interval_ms = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--give-up") == 0)
            give_up = strtod(argv[++i], NULL);
        else if (strcmp(argv[i], "--repeat") == 0)
            repeat = (unsigned)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--source") == 0)
            source = argv[++i];
        else {
            fprintf(stderr, "slow_client: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);
    int status = 0;
    for (unsigned r = 0; r < repeat; r++) {
        int fd = open_connection(argv[1], source);
        if (fd < 0) {
            fprintf(stderr, "slow_client: cannot connect to %s: %s\n", argv[1], strerror(errno));
            return 1;
        }
        uint64_t start = now_ms();
        int cut = trickle(fd, interval_ms, (uint64_t)(give_up * 1000));
        printf("slow_client: %s after %llu ms\n", cut ? "cut" : "still connected",
               (unsigned long long)(now_ms() - start));
        fflush(stdout);
        close(fd);
        if (!cut)
            status = 1;
    }
    return status;
}
