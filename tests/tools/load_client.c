/* load_client — parallel echo integrity check for the integration tests.
 *
 *   load_client ADDR --connections N --max-bytes B --seed S [--min-bytes b]
 *               [--rate BYTES_PER_SEC | --duration-hint SECONDS] [--timeout SECONDS] [-v]
 *
 * ADDR is 127.0.0.1:PORT, [::1]:PORT or unix:/path. Each of N parallel connections
 * (one thread each) sends a pseudo-random payload whose size is drawn log-uniformly
 * from [b, B] (deterministic from S; connection 0 gets exactly b and connection 1
 * exactly B, so the extremes are always covered), shuts down its write side, reads
 * the echo until EOF and compares length and SHA-256 of what it sent and received.
 * Reading and writing run concurrently, so a relay that buffers nothing still works.
 *
 * --rate paces each connection's sending to BYTES_PER_SEC; --duration-hint paces
 * each so that its payload takes about SECONDS to send (whatever its size).
 * --timeout (default 300) fails connections that have not finished by then.
 *
 * Prints one line per failed connection and the summary
 *   load_client: N ok, N failed, BYTES bytes each way
 * Exit status: 0 when every connection is ok, 1 otherwise, 2 on bad usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#define CHUNK (64 * 1024)

struct options {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    unsigned connections;
    uint64_t min_bytes;
    uint64_t max_bytes;
    uint64_t seed;
    double rate;             /* bytes per second per connection, 0 = unpaced */
    double duration_hint;    /* seconds, 0 = unset */
    double timeout;          /* seconds */
    int verbose;
};

struct job {
    const struct options *opt;
    unsigned index;
    uint64_t size;
    uint64_t sent;
    uint64_t received;
    int ok;
    char error[256];
};

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* Fills BUF with the next LEN bytes of the connection's payload stream. */
static void fill_payload(uint64_t *state, unsigned char *buf, size_t len)
{
    size_t i = 0;
    while (i + 8 <= len) {
        uint64_t v = splitmix64(state);
        memcpy(buf + i, &v, 8);
        i += 8;
    }
    if (i < len) {
        uint64_t v = splitmix64(state);
        memcpy(buf + i, &v, len - i);
    }
}

/* ln and exp without libm (the Makefile links tools with -lssl -lcrypto -lpthread only). */
static double ln_approx(double x)
{
    const double ln2 = 0.69314718055994530942;
    int k = 0;
    while (x >= 2.0) {
        x /= 2.0;
        k++;
    }
    while (x < 1.0) {
        x *= 2.0;
        k--;
    }
    double t = (x - 1.0) / (x + 1.0), t2 = t * t, term = t, sum = 0.0;
    for (int n = 1; n < 60; n += 2) {
        sum += term / n;
        term *= t2;
    }
    return k * ln2 + 2.0 * sum;
}

static double exp_approx(double y)
{
    const double ln2 = 0.69314718055994530942;
    int k = (int)(y / ln2);
    double r = y - k * ln2, term = 1.0, sum = 1.0;
    for (int n = 1; n < 30; n++) {
        term *= r / n;
        sum += term;
    }
    for (; k > 0; k--)
        sum *= 2.0;
    for (; k < 0; k++)
        sum /= 2.0;
    return sum;
}

static uint64_t payload_size(const struct options *opt, unsigned index)
{
    if (index == 0)
        return opt->min_bytes;
    if (index == 1)
        return opt->max_bytes;
    uint64_t state = opt->seed ^ (0x5851f42d4c957f2dULL * (index + 1));
    double u = (double)(splitmix64(&state) >> 11) / (double)(1ULL << 53);
    double lo = ln_approx((double)(opt->min_bytes ? opt->min_bytes : 1));
    double hi = ln_approx((double)opt->max_bytes + 1.0);
    uint64_t size = (uint64_t)exp_approx(lo + u * (hi - lo));
    if (size < opt->min_bytes)
        size = opt->min_bytes;
    if (size > opt->max_bytes)
        size = opt->max_bytes;
    return size;
}

static void hex(const unsigned char *md, unsigned len, char *out)
{
    for (unsigned i = 0; i < len; i++)
        sprintf(out + 2 * i, "%02x", md[i]);
}

static void *run_job(void *arg)
{
    struct job *job = arg;
    const struct options *opt = job->opt;
    unsigned char *out = malloc(CHUNK), *in = malloc(CHUNK);
    EVP_MD_CTX *sent_md = EVP_MD_CTX_new(), *recv_md = EVP_MD_CTX_new();
    int fd = -1;
    size_t out_len = 0, out_off = 0;
    int write_shut = 0, peer_eof = 0;
    uint64_t stream = opt->seed * 0x2545f4914f6cdd1dULL + job->index;
    double rate = opt->rate;
    if (opt->duration_hint > 0)
        rate = (double)job->size / opt->duration_hint;
    if (rate > 0 && rate < 1)
        rate = 1;

    if (out == NULL || in == NULL || sent_md == NULL || recv_md == NULL) {
        snprintf(job->error, sizeof(job->error), "out of memory");
        goto done;
    }
    EVP_DigestInit_ex(sent_md, EVP_sha256(), NULL);
    EVP_DigestInit_ex(recv_md, EVP_sha256(), NULL);

    fd = socket(opt->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(job->error, sizeof(job->error), "socket: %s", strerror(errno));
        goto done;
    }
    if (connect(fd, (const struct sockaddr *)&opt->addr, opt->addr_len) < 0) {
        snprintf(job->error, sizeof(job->error), "connect: %s", strerror(errno));
        goto done;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);

    double start = now_seconds();
    double deadline = start + opt->timeout;
    while (!peer_eof) {
        double now = now_seconds();
        if (now > deadline) {
            snprintf(job->error, sizeof(job->error), "timeout after %.0f s", opt->timeout);
            goto done;
        }
        /* How much pacing lets us have sent by now (16 KiB burst). */
        uint64_t allowed = job->size;
        int poll_ms = 1000;
        if (rate > 0) {
            double a = rate * (now - start) + 16384.0;
            if (a < (double)job->size)
                allowed = (uint64_t)a;
        }
        /* Paced: send slices of at least 4 KiB (or the rest), not a trickle of bytes. */
        uint64_t slice = job->size - job->sent < 4096 ? job->size - job->sent : 4096;
        if (out_off == out_len && job->sent < allowed && allowed - job->sent >= slice) {
            uint64_t left = allowed - job->sent;
            out_len = left < CHUNK ? (size_t)left : CHUNK;
            out_off = 0;
            fill_payload(&stream, out, out_len);
            EVP_DigestUpdate(sent_md, out, out_len);
        }
        if (!write_shut && out_off == out_len && job->sent == job->size) {
            if (shutdown(fd, SHUT_WR) < 0) {
                snprintf(job->error, sizeof(job->error), "shutdown: %s", strerror(errno));
                goto done;
            }
            write_shut = 1;
        }
        struct pollfd p = { .fd = fd, .events = POLLIN };
        if (out_off < out_len)
            p.events |= POLLOUT;
        else if (!write_shut && rate > 0)
            poll_ms = 10;   /* paced: wake to send the next slice */
        int r = poll(&p, 1, poll_ms);
        if (r < 0 && errno != EINTR) {
            snprintf(job->error, sizeof(job->error), "poll: %s", strerror(errno));
            goto done;
        }
        if (r <= 0)
            continue;
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t n = read(fd, in, CHUNK);
            if (n > 0) {
                EVP_DigestUpdate(recv_md, in, (size_t)n);
                job->received += (uint64_t)n;
            } else if (n == 0) {
                peer_eof = 1;
            } else if (errno != EAGAIN && errno != EINTR) {
                snprintf(job->error, sizeof(job->error), "read: %s (sent %llu of %llu, received %llu)",
                         strerror(errno), (unsigned long long)job->sent,
                         (unsigned long long)job->size, (unsigned long long)job->received);
                goto done;
            }
        }
        if ((p.revents & POLLOUT) && out_off < out_len) {
            ssize_t n = send(fd, out + out_off, out_len - out_off, MSG_NOSIGNAL);
            if (n > 0) {
                out_off += (size_t)n;
                job->sent += (uint64_t)n;
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
                snprintf(job->error, sizeof(job->error), "send: %s (sent %llu of %llu, received %llu)",
                         strerror(errno), (unsigned long long)job->sent,
                         (unsigned long long)job->size, (unsigned long long)job->received);
                goto done;
            }
        }
    }
    if (!write_shut) {
        snprintf(job->error, sizeof(job->error),
                 "EOF from peer before the payload was sent (sent %llu of %llu, received %llu)",
                 (unsigned long long)job->sent, (unsigned long long)job->size,
                 (unsigned long long)job->received);
        goto done;
    }
    unsigned char md_sent[EVP_MAX_MD_SIZE], md_recv[EVP_MAX_MD_SIZE];
    unsigned len_sent = 0, len_recv = 0;
    EVP_DigestFinal_ex(sent_md, md_sent, &len_sent);
    EVP_DigestFinal_ex(recv_md, md_recv, &len_recv);
    if (job->received != job->size || len_sent != len_recv || memcmp(md_sent, md_recv, len_sent) != 0) {
        char hs[2 * EVP_MAX_MD_SIZE + 1], hr[2 * EVP_MAX_MD_SIZE + 1];
        hex(md_sent, len_sent, hs);
        hex(md_recv, len_recv, hr);
        snprintf(job->error, sizeof(job->error), "sent %llu bytes sha256 %.16s..., received %llu bytes sha256 %.16s...",
                 (unsigned long long)job->size, hs, (unsigned long long)job->received, hr);
        goto done;
    }
    job->ok = 1;
done:
    if (fd >= 0)
        close(fd);
    EVP_MD_CTX_free(recv_md);
    EVP_MD_CTX_free(sent_md);
    free(in);
    free(out);
    return NULL;
}

static int parse_address(const char *text, struct sockaddr_storage *ss, socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    if (strncmp(text, "unix:", 5) == 0) {
        struct sockaddr_un *sun = (struct sockaddr_un *)ss;
        if (strlen(text + 5) == 0 || strlen(text + 5) >= sizeof(sun->sun_path))
            return -1;
        sun->sun_family = AF_UNIX;
        strcpy(sun->sun_path, text + 5);
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
    if (*end != '\0' || port <= 0 || port > 65535)
        return -1;
    if (host[0] == '[') {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
        size_t hl = strlen(host);
        if (hl < 2 || host[hl - 1] != ']')
            return -1;
        host[hl - 1] = '\0';
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*sin6);
        return inet_pton(AF_INET6, host + 1, &sin6->sin6_addr) == 1 ? 0 : -1;
    }
    struct sockaddr_in *sin = (struct sockaddr_in *)ss;
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    *len = sizeof(*sin);
    return inet_pton(AF_INET, host, &sin->sin_addr) == 1 ? 0 : -1;
}

static int parse_number(const char *text, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (errno != 0 || end == text || *end != '\0' || v < 0)
        return -1;
    *out = v;
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: load_client ADDR --connections N --max-bytes B --seed S [--min-bytes b]\n"
                    "                   [--rate BYTES_PER_SEC | --duration-hint SECONDS] [--timeout SECONDS] [-v]\n");
}

int main(int argc, char **argv)
{
    struct options opt = { .connections = 0, .min_bytes = 1, .timeout = 300 };
    const char *addr = NULL;
    double connections = -1, max_bytes = -1, min_bytes = 1, seed = -1;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        double *target = NULL;
        if (strcmp(a, "-v") == 0) {
            opt.verbose = 1;
            continue;
        }
        if (strcmp(a, "--connections") == 0)
            target = &connections;
        else if (strcmp(a, "--max-bytes") == 0)
            target = &max_bytes;
        else if (strcmp(a, "--min-bytes") == 0)
            target = &min_bytes;
        else if (strcmp(a, "--seed") == 0)
            target = &seed;
        else if (strcmp(a, "--rate") == 0)
            target = &opt.rate;
        else if (strcmp(a, "--duration-hint") == 0)
            target = &opt.duration_hint;
        else if (strcmp(a, "--timeout") == 0)
            target = &opt.timeout;
        if (target != NULL) {
            if (i + 1 >= argc || parse_number(argv[i + 1], target) < 0) {
                fprintf(stderr, "load_client: %s needs a non-negative number\n", a);
                return 2;
            }
            i++;
            continue;
        }
        if (a[0] == '-' || addr != NULL) {
            usage();
            return 2;
        }
        addr = a;
    }
    if (addr == NULL || connections < 1 || max_bytes < 0 || seed < 0 || min_bytes > max_bytes
        || connections > 100000) {
        usage();
        return 2;
    }
    if (parse_address(addr, &opt.addr, &opt.addr_len) < 0) {
        fprintf(stderr, "load_client: bad address %s\n", addr);
        return 2;
    }
    opt.connections = (unsigned)connections;
    opt.max_bytes = (uint64_t)max_bytes;
    opt.min_bytes = (uint64_t)min_bytes;
    opt.seed = (uint64_t)seed;
    signal(SIGPIPE, SIG_IGN);

    struct job *jobs = calloc(opt.connections, sizeof(*jobs));
    pthread_t *threads = calloc(opt.connections, sizeof(*threads));
    if (jobs == NULL || threads == NULL) {
        fprintf(stderr, "load_client: out of memory\n");
        return 1;
    }
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setstacksize(&attr, 256 * 1024);

    double start = now_seconds();
    unsigned started = 0;
    for (unsigned i = 0; i < opt.connections; i++) {
        jobs[i].opt = &opt;
        jobs[i].index = i;
        jobs[i].size = payload_size(&opt, i);
        int err = pthread_create(&threads[i], &attr, run_job, &jobs[i]);
        if (err != 0) {
            snprintf(jobs[i].error, sizeof(jobs[i].error), "pthread_create: %s", strerror(err));
            break;
        }
        started++;
    }
    for (unsigned i = 0; i < started; i++)
        pthread_join(threads[i], NULL);
    double elapsed = now_seconds() - start;

    unsigned ok = 0, failed = 0;
    unsigned long long total = 0;
    for (unsigned i = 0; i < opt.connections; i++) {
        if (jobs[i].ok) {
            ok++;
            total += jobs[i].size;
            if (opt.verbose)
                printf("load_client: connection %u ok: %llu bytes\n", i, (unsigned long long)jobs[i].size);
        } else {
            failed++;
            printf("load_client: connection %u failed: %s\n", i,
                   jobs[i].error[0] ? jobs[i].error : "not started");
        }
    }
    printf("load_client: %.2f s, %.1f MB/s each way\n", elapsed,
           elapsed > 0 ? (double)total / elapsed / 1e6 : 0.0);
    printf("load_client: %u ok, %u failed, %llu bytes each way\n", ok, failed, total);
    pthread_attr_destroy(&attr);
    free(threads);
    free(jobs);
    return failed == 0 ? 0 : 1;
}
