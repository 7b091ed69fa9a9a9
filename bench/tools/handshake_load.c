/* handshake_load — full mTLS handshakes per second against a TLS server (make bench).
 *
 *   handshake_load --connect 127.0.0.1:PORT --cert FILE --key FILE
 *                  [--concurrency N] [--duration SECONDS] [--ciphersuites LIST]
 *                  [--groups LIST] [--ca FILE --server-name NAME]
 *
 * Keeps N connections in flight (non-blocking sockets, one epoll loop, one thread).
 * Each one: TCP connect, a full TLS 1.3 handshake presenting the client certificate
 * (no session cache, no tickets, no resumption: every handshake is a full one), then
 * one byte written and the same byte read back. The echo is what proves the server
 * accepted the certificate: in TLS 1.3 the client finishes its handshake before the
 * server has checked the client's Certificate/CertificateVerify, and a tunnel's server
 * side only relays after its target connection is up. Then close_notify and close,
 * and the slot starts the next connection. Runs for a fixed duration; only
 * connections that finished within it count.
 *
 * Without --ca the server certificate is not verified: the tool shares the CPU with
 * the server it measures, and the client side's verify would only take CPU from it.
 *
 * Prints one line:
 *   handshake_load: handshakes=N failed=N seconds=S rate=R concurrency=N resumed=N
 *                   protocol=P cipher=C group=G p50_ms=T p99_ms=T
 * p50_ms and p99_ms: how long the counted connections took, from connect() to the
 * echo byte read back (0 when none completed).
 * Exit status 0 when at least one handshake completed and none failed, 1 otherwise,
 * 2 on bad usage. The first few failures are described on stderr. */
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
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_EVENTS 128
#define MAX_REPORTED_FAILURES 5
#define ECHO_BYTE 'k'

struct options {
    const char *connect;
    const char *cert;
    const char *key;
    const char *ca;
    const char *server_name;
    const char *ciphersuites;
    const char *groups;
    int concurrency;
    double duration;
};

enum slot_state { SLOT_IDLE, SLOT_CONNECTING, SLOT_HANDSHAKING, SLOT_WRITING, SLOT_READING };

struct slot {
    enum slot_state state;
    int fd;
    SSL *ssl;
    double started;
};

struct load {
    const struct options *opt;
    SSL_CTX *ctx;
    int epoll_fd;
    struct sockaddr_in target;
    struct slot *slots;
    uint64_t handshakes;
    uint64_t failed;
    uint64_t resumed;
    double *times;     /* seconds each counted connection took, in completion order */
    size_t times_cap;
    char protocol[32];
    char cipher[64];
    char group[32];
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

static void usage(void)
{
    fprintf(stderr, "usage: handshake_load --connect IP:PORT --cert FILE --key FILE "
                    "[--concurrency N] [--duration SECONDS] [--ciphersuites LIST] "
                    "[--groups LIST] [--ca FILE --server-name NAME]\n");
}

static int parse_options(int argc, char **argv, struct options *opt)
{
    *opt = (struct options){ .concurrency = 1, .duration = 3.0 };
    for (int i = 1; i < argc; i++) {
        const char *name = argv[i];
        if (i + 1 >= argc) {
            fprintf(stderr, "handshake_load: %s needs a value\n", name);
            return -1;
        }
        const char *value = argv[++i];
        if (strcmp(name, "--connect") == 0)
            opt->connect = value;
        else if (strcmp(name, "--cert") == 0)
            opt->cert = value;
        else if (strcmp(name, "--key") == 0)
            opt->key = value;
        else if (strcmp(name, "--ca") == 0)
            opt->ca = value;
        else if (strcmp(name, "--server-name") == 0)
            opt->server_name = value;
        else if (strcmp(name, "--ciphersuites") == 0)
            opt->ciphersuites = value;
        else if (strcmp(name, "--groups") == 0)
            opt->groups = value;
        else if (strcmp(name, "--concurrency") == 0) {
            long n = strtol(value, NULL, 10);
            /* Out of range falls to 0, which the check below refuses. */
            opt->concurrency = n > 0 && n <= 10000 ? (int)n : 0;
        } else if (strcmp(name, "--duration") == 0)
            opt->duration = strtod(value, NULL);
        else {
            fprintf(stderr, "handshake_load: unknown option %s\n", name);
            return -1;
        }
    }
    if (opt->connect == NULL || opt->cert == NULL || opt->key == NULL || opt->concurrency < 1 ||
        opt->concurrency > 10000 || opt->duration <= 0 || (opt->ca != NULL) != (opt->server_name != NULL))
        return -1;
    return 0;
}

static SSL_CTX *create_context(const struct options *opt)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        goto fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
    if (opt->ciphersuites != NULL && !SSL_CTX_set_ciphersuites(ctx, opt->ciphersuites))
        goto fail_ctx;
    if (opt->groups != NULL && !SSL_CTX_set1_groups_list(ctx, opt->groups))
        goto fail_ctx;
    /* Every handshake a full one: nothing cached, nothing offered for resumption. */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    if (SSL_CTX_use_certificate_chain_file(ctx, opt->cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, opt->key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        goto fail_ctx;
    if (opt->ca != NULL) {
        if (SSL_CTX_load_verify_locations(ctx, opt->ca, NULL) != 1)
            goto fail_ctx;
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    return ctx;

fail_ctx:
    SSL_CTX_free(ctx);
fail:
    ERR_print_errors_fp(stderr);
    return NULL;
}

/* Records one counted connection's duration; the array grows by doubling. Returns -1
 * when out of memory. */
static int note_time(struct load *load, double seconds)
{
    if (load->handshakes == load->times_cap) {
        size_t cap = load->times_cap ? load->times_cap * 2 : 4096;
        double *grown = realloc(load->times, cap * sizeof(*grown));
        if (grown == NULL) {
            fprintf(stderr, "handshake_load: out of memory\n");
            return -1;
        }
        load->times = grown;
        load->times_cap = cap;
    }
    load->times[load->handshakes] = seconds;
    return 0;
}

static int compare_doubles(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The nearest-rank percentile P (0-100) of the recorded times, in milliseconds. */
static double percentile_ms(const struct load *load, double p)
{
    if (load->handshakes == 0)
        return 0.0;
    size_t rank = (size_t)(p / 100.0 * (double)load->handshakes + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > load->handshakes)
        rank = load->handshakes;
    return load->times[rank - 1] * 1000.0;
}

static void slot_reset(struct slot *s)
{
    if (s->ssl != NULL)
        SSL_free(s->ssl);
    if (s->fd >= 0)
        close(s->fd);
    s->ssl = NULL;
    s->fd = -1;
    s->state = SLOT_IDLE;
}

static void slot_failed(struct load *load, struct slot *s, const char *what)
{
    load->failed++;
    if (load->failed <= MAX_REPORTED_FAILURES) {
        unsigned long code = ERR_peek_error();
        char detail[256] = "";
        if (code != 0)
            ERR_error_string_n(code, detail, sizeof(detail));
        else if (errno != 0)
            snprintf(detail, sizeof(detail), "%s", strerror(errno));
        fprintf(stderr, "handshake_load: connection failed while %s: %s\n", what,
                detail[0] ? detail : "connection closed");
    }
    ERR_clear_error();
    slot_reset(s);
}

static int slot_start(struct load *load, struct slot *s)
{
    s->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s->fd < 0) {
        fprintf(stderr, "handshake_load: socket: %s\n", strerror(errno));
        return -1;
    }
    int one = 1;
    setsockopt(s->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = s };
    if (epoll_ctl(load->epoll_fd, EPOLL_CTL_ADD, s->fd, &ev) < 0) {
        fprintf(stderr, "handshake_load: epoll_ctl: %s\n", strerror(errno));
        close(s->fd);
        s->fd = -1;
        return -1;
    }
    s->state = SLOT_CONNECTING;
    s->started = now_seconds();
    if (connect(s->fd, (struct sockaddr *)&load->target, sizeof(load->target)) < 0 &&
        errno != EINPROGRESS) {
        slot_failed(load, s, "connecting");
        return 0;
    }
    return 0;
}

static void note_parameters(struct load *load, SSL *ssl)
{
    if (load->protocol[0] != '\0')
        return;
    snprintf(load->protocol, sizeof(load->protocol), "%s", SSL_get_version(ssl));
    snprintf(load->cipher, sizeof(load->cipher), "%s", SSL_get_cipher_name(ssl));
    int nid = SSL_get_negotiated_group(ssl);
    const char *name = nid > 0 ? OBJ_nid2sn(nid & ~TLSEXT_nid_unknown) : NULL;
    snprintf(load->group, sizeof(load->group), "%s", name != NULL ? name : "unknown");
}

/* Moves slot S as far as it can go without blocking. Returns 1 when its connection
 * completed, 0 when it waits for I/O, -1 when it failed (already counted). */
static int slot_step(struct load *load, struct slot *s)
{
    if (s->state == SLOT_CONNECTING) {
        int error = 0;
        socklen_t len = sizeof(error);
        if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
            error = errno;
        if (error == EINPROGRESS || error == EALREADY)
            return 0;
        if (error != 0) {
            errno = error;
            slot_failed(load, s, "connecting");
            return -1;
        }
        s->ssl = SSL_new(load->ctx);
        if (s->ssl == NULL || !SSL_set_fd(s->ssl, s->fd) ||
            (load->opt->server_name != NULL && !SSL_set1_host(s->ssl, load->opt->server_name))) {
            slot_failed(load, s, "creating the TLS session");
            return -1;
        }
        if (load->opt->server_name != NULL)
            SSL_set_tlsext_host_name(s->ssl, load->opt->server_name);
        SSL_set_connect_state(s->ssl);
        s->state = SLOT_HANDSHAKING;
    }
    if (s->state == SLOT_HANDSHAKING) {
        ERR_clear_error();
        errno = 0;
        int rc = SSL_do_handshake(s->ssl);
        if (rc != 1) {
            int error = SSL_get_error(s->ssl, rc);
            if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE) {
                /* Still connecting at the TCP level shows up as EAGAIN here too. */
                return 0;
            }
            slot_failed(load, s, "handshaking");
            return -1;
        }
        if (SSL_session_reused(s->ssl))
            load->resumed++;
        note_parameters(load, s->ssl);
        s->state = SLOT_WRITING;
    }
    if (s->state == SLOT_WRITING) {
        char byte = ECHO_BYTE;
        size_t written = 0;
        ERR_clear_error();
        if (!SSL_write_ex(s->ssl, &byte, 1, &written)) {
            int error = SSL_get_error(s->ssl, 0);
            if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE)
                return 0;
            slot_failed(load, s, "writing the echo byte");
            return -1;
        }
        s->state = SLOT_READING;
    }
    /* SLOT_READING: session tickets the server may send are consumed here too. */
    char byte = 0;
    size_t got = 0;
    ERR_clear_error();
    errno = 0;
    if (!SSL_read_ex(s->ssl, &byte, 1, &got)) {
        int error = SSL_get_error(s->ssl, 0);
        if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE)
            return 0;
        slot_failed(load, s, "reading the echo (server refused the certificate?)");
        return -1;
    }
    if (byte != ECHO_BYTE) {
        errno = 0;
        slot_failed(load, s, "checking the echo byte");
        return -1;
    }
    SSL_shutdown(s->ssl);
    ERR_clear_error();
    slot_reset(s);
    return 1;
}

static int run(struct load *load)
{
    const struct options *opt = load->opt;
    double start = now_seconds();
    double end = start + opt->duration;
    for (int i = 0; i < opt->concurrency; i++)
        if (slot_start(load, &load->slots[i]) < 0)
            return -1;
    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        double now = now_seconds();
        if (now >= end)
            break;
        int timeout_ms = (int)((end - now) * 1000.0) + 1;
        int n = epoll_wait(load->epoll_fd, events, MAX_EVENTS, timeout_ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            fprintf(stderr, "handshake_load: epoll_wait: %s\n", strerror(errno));
            return -1;
        }
        int past_end = now_seconds() >= end;
        for (int i = 0; i < n; i++) {
            struct slot *s = events[i].data.ptr;
            if (s->state == SLOT_IDLE)
                continue;
            int rc = slot_step(load, s);
            if (rc == 0)
                continue;
            if (rc == 1 && !past_end) {
                if (note_time(load, now_seconds() - s->started) < 0)
                    return -1;
                load->handshakes++;
            }
            if (!past_end && slot_start(load, s) < 0)
                return -1;
        }
        if (past_end)
            break;
        /* A failed connect restarts immediately, which could leave a slot idle. */
        for (int i = 0; i < opt->concurrency; i++)
            if (load->slots[i].state == SLOT_IDLE && slot_start(load, &load->slots[i]) < 0)
                return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    int status = 2;
    struct options opt;
    struct load load = { .opt = &opt, .epoll_fd = -1 };
    if (parse_options(argc, argv, &opt) < 0) {
        usage();
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    status = 1;
    if (parse_ipv4_address(opt.connect, &load.target) < 0) {
        fprintf(stderr, "handshake_load: --connect wants IPv4:PORT, got %s\n", opt.connect);
        status = 2;
        goto out;
    }
    load.ctx = create_context(&opt);
    if (load.ctx == NULL) {
        fprintf(stderr, "handshake_load: cannot set up the client TLS context\n");
        goto out;
    }
    load.slots = calloc((size_t)opt.concurrency, sizeof(*load.slots));
    if (load.slots == NULL) {
        fprintf(stderr, "handshake_load: out of memory\n");
        goto out_ctx;
    }
    for (int i = 0; i < opt.concurrency; i++)
        load.slots[i].fd = -1;
    load.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (load.epoll_fd < 0) {
        fprintf(stderr, "handshake_load: epoll_create1: %s\n", strerror(errno));
        goto out_slots;
    }
    if (run(&load) < 0)
        goto out_slots;
    if (load.handshakes > 0)
        qsort(load.times, (size_t)load.handshakes, sizeof(*load.times), compare_doubles);
    printf("handshake_load: handshakes=%llu failed=%llu seconds=%.3f rate=%.1f concurrency=%d "
           "resumed=%llu protocol=%s cipher=%s group=%s p50_ms=%.3f p99_ms=%.3f\n",
           (unsigned long long)load.handshakes, (unsigned long long)load.failed, opt.duration,
           (double)load.handshakes / opt.duration, opt.concurrency,
           (unsigned long long)load.resumed, load.protocol[0] ? load.protocol : "-",
           load.cipher[0] ? load.cipher : "-", load.group[0] ? load.group : "-",
           percentile_ms(&load, 50.0), percentile_ms(&load, 99.0));
    status = load.handshakes > 0 && load.failed == 0 ? 0 : 1;

out_slots:
    if (load.slots != NULL)
        for (int i = 0; i < opt.concurrency; i++)
            slot_reset(&load.slots[i]);
    free(load.slots);
    free(load.times);
    if (load.epoll_fd >= 0)
        close(load.epoll_fd);
out_ctx:
    SSL_CTX_free(load.ctx);
out:
    return status;
}
