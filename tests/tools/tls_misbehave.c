/* tls_misbehave — a TLS 1.3 client that misbehaves after the handshake, for the kTLS
 * guest tests (tests/vm/guest/ktls_control_records.sh).
 *
 *   tls_misbehave ADDR ACTION --cert PEM --key PEM --ca PEM
 *                 [--server-name NAME] [--ciphersuites LIST] [--timeout SECONDS]
 *                 [--then-echo]
 *
 * ADDR is IPv4:PORT of a ktlstun server tunnel in front of an echo server. The tool
 * completes a TLS 1.3 handshake, sends a probe line and reads its echo (so the tunnel
 * is relaying, through kTLS on the far end), then does ACTION:
 *
 *   alert                a fatal alert record {2, 40 handshake_failure}. OpenSSL has no
 *                        call that sends an arbitrary alert, so the tool asks OpenSSL for
 *                        kTLS send (SSL_OP_ENABLE_KTLS) and sends the record itself with
 *                        sendmsg + TLS_SET_RECORD_TYPE: the kernel encrypts it with the
 *                        session's key and next sequence number.
 *   garbage              non-TLS bytes (an HTTP request line) straight onto the TCP socket
 *   framed-garbage       a well-framed application_data record (17 03 03 00 40) whose
 *                        64 bytes are random: it can only fail to decrypt
 *   keyupdate            a TLS 1.3 KeyUpdate (update_not_requested), nothing after it
 *   keyupdate-requested  the same with update_requested
 *   close-notify         a plain close_notify (the well-behaved control case)
 *   fin                  a FIN (shutdown of the TCP write side) without close_notify
 *   reset                a reset (SO_LINGER {1,0} and close); the outcome is "we-reset"
 *   hold                 nothing: the connection stays open, idle, and the outcome is
 *                        how the server ends it (a withdrawn access, a lifetime)
 *
 * With --then-echo (for a kernel that rekeys kTLS) it then sends a second probe line,
 * reads its echo ("echo-after-action: ok") and sends close_notify.
 *
 * It then keeps its socket open and reads until the server ends the connection or
 * --timeout (default 60) seconds pass, and prints what it saw:
 *   handshake: VERSION CIPHER
 *   echo: ok
 *   action: WHAT
 *   outcome: close_notify | eof | reset | alert DESCRIPTION | timeout | error TEXT
 *   after-action: N bytes
 * ("after-action" counts application bytes that came back after the action.)
 * Exit status: 0 once an outcome was observed, 1 when the tool could not get as far as
 * the action (connection, handshake, echo, kTLS send), 2 on bad usage. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <linux/tls.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>

#ifndef SOL_TLS
#define SOL_TLS 282
#endif

#define RECORD_ALERT 21
#define ALERT_LEVEL_FATAL 2
#define ALERT_HANDSHAKE_FAILURE 40

struct options {
    const char *address;
    const char *action;
    const char *cert;
    const char *key;
    const char *ca;
    const char *server_name;
    const char *ciphersuites;
    int timeout;
    int then_echo;
};

static void print_openssl_errors(const char *what)
{
    fprintf(stderr, "tls_misbehave: %s failed:", what);
    unsigned long err;
    while ((err = ERR_get_error()) != 0) {
        char text[256];
        ERR_error_string_n(err, text, sizeof(text));
        fprintf(stderr, " %s", text);
    }
    fprintf(stderr, "\n");
}

static int connect_to(const char *address)
{
    char host[64];
    const char *colon = strrchr(address, ':');
    if (colon == NULL || (size_t)(colon - address) >= sizeof(host)) {
        fprintf(stderr, "tls_misbehave: %s is not IPv4:PORT\n", address);
        return -1;
    }
    memcpy(host, address, (size_t)(colon - address));
    host[colon - address] = '\0';
    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(colon + 1)) };
    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
        fprintf(stderr, "tls_misbehave: %s is not IPv4:PORT\n", address);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
        fprintf(stderr, "tls_misbehave: connect %s: %s\n", address, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

static SSL_CTX *make_context(const struct options *opt, int want_ktls_send)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (ctx == NULL)
        return NULL;
    if (want_ktls_send)
        SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1 ||
        (opt->ciphersuites != NULL && SSL_CTX_set_ciphersuites(ctx, opt->ciphersuites) != 1) ||
        SSL_CTX_use_certificate_chain_file(ctx, opt->cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, opt->key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_load_verify_locations(ctx, opt->ca, NULL) != 1) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

static int write_all(SSL *ssl, const void *data, size_t len)
{
    size_t written;
    if (SSL_write_ex(ssl, data, len, &written) != 1 || written != len) {
        print_openssl_errors("SSL_write");
        return -1;
    }
    return 0;
}

static int raw_write_all(int fd, const unsigned char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n < 0) {
            fprintf(stderr, "tls_misbehave: send: %s\n", strerror(errno));
            return -1;
        }
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Sends PROBE and reads it back from the echo behind the tunnel. */
static int probe_echo(SSL *ssl)
{
    char probe[64], back[64];
    int len = snprintf(probe, sizeof(probe), "probe-%ld\n", (long)getpid());
    if (write_all(ssl, probe, (size_t)len) < 0)
        return -1;
    size_t got = 0;
    while (got < (size_t)len) {
        size_t n;
        if (SSL_read_ex(ssl, back + got, (size_t)len - got, &n) != 1) {
            print_openssl_errors("reading the probe's echo");
            return -1;
        }
        got += n;
    }
    if (memcmp(probe, back, (size_t)len) != 0) {
        fprintf(stderr, "tls_misbehave: the echo differs from the probe\n");
        return -1;
    }
    return 0;
}

static int send_fatal_alert(SSL *ssl, int fd)
{
    if (BIO_ctrl(SSL_get_wbio(ssl), BIO_CTRL_GET_KTLS_SEND, 0, NULL) <= 0) {
        fprintf(stderr, "tls_misbehave: OpenSSL did not enable kTLS send (%s); cannot send an alert\n",
                SSL_get_cipher_name(ssl));
        return -1;
    }
    unsigned char alert[2] = { ALERT_LEVEL_FATAL, ALERT_HANDSHAKE_FAILURE };
    char control[CMSG_SPACE(sizeof(unsigned char))];
    memset(control, 0, sizeof(control));
    struct iovec iov = { .iov_base = alert, .iov_len = sizeof(alert) };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                          .msg_controllen = sizeof(control) };
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_TLS;
    cmsg->cmsg_type = TLS_SET_RECORD_TYPE;
    cmsg->cmsg_len = CMSG_LEN(sizeof(unsigned char));
    *CMSG_DATA(cmsg) = RECORD_ALERT;
    if (sendmsg(fd, &msg, MSG_NOSIGNAL) != (ssize_t)sizeof(alert)) {
        fprintf(stderr, "tls_misbehave: sendmsg(alert record through kTLS): %s\n", strerror(errno));
        return -1;
    }
    return 0;
}

static int do_action(const struct options *opt, SSL *ssl, int fd)
{
    if (strcmp(opt->action, "alert") == 0) {
        if (send_fatal_alert(ssl, fd) < 0)
            return -1;
        printf("action: sent fatal alert handshake_failure(40) through kTLS\n");
    } else if (strcmp(opt->action, "garbage") == 0) {
        static const char garbage[] = "GET / HTTP/1.1\r\nHost: not-tls.example\r\n\r\n";
        if (raw_write_all(fd, (const unsigned char *)garbage, sizeof(garbage) - 1) < 0)
            return -1;
        printf("action: wrote %zu non-TLS bytes on the TCP socket\n", sizeof(garbage) - 1);
    } else if (strcmp(opt->action, "framed-garbage") == 0) {
        unsigned char record[5 + 64] = { 0x17, 0x03, 0x03, 0x00, 0x40 };
        if (RAND_bytes(record + 5, 64) != 1)
            return -1;
        if (raw_write_all(fd, record, sizeof(record)) < 0)
            return -1;
        printf("action: wrote an application_data record of 64 random bytes\n");
    } else if (strcmp(opt->action, "keyupdate") == 0 ||
               strcmp(opt->action, "keyupdate-requested") == 0) {
        int requested = strcmp(opt->action, "keyupdate-requested") == 0;
        if (SSL_key_update(ssl, requested ? SSL_KEY_UPDATE_REQUESTED : SSL_KEY_UPDATE_NOT_REQUESTED) != 1) {
            print_openssl_errors("SSL_key_update");
            return -1;
        }
        /* Sent on its own, with nothing after it: if the server closes now, its receive
         * queue is empty, so what we see is its own close (FIN or close_notify), not a
         * reset provoked by our next record. */
        if (SSL_do_handshake(ssl) != 1) {
            print_openssl_errors("sending the KeyUpdate");
            return -1;
        }
        printf("action: sent KeyUpdate (%s)\n",
               requested ? "update_requested" : "update_not_requested");
    } else if (strcmp(opt->action, "hold") == 0) {
        printf("action: holding the connection open\n");
    } else if (strcmp(opt->action, "fin") == 0) {
        if (shutdown(fd, SHUT_WR) < 0)
            return -1;
        printf("action: sent a FIN without close_notify\n");
    } else if (strcmp(opt->action, "reset") == 0) {
        struct linger reset = { 1, 0 };
        if (setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset)) < 0)
            return -1;
        printf("action: reset the connection\n");
    } else if (strcmp(opt->action, "close-notify") == 0) {
        if (SSL_shutdown(ssl) < 0) {
            print_openssl_errors("SSL_shutdown");
            return -1;
        }
        printf("action: sent close_notify\n");
    } else {
        fprintf(stderr, "tls_misbehave: unknown action %s\n", opt->action);
        return -1;
    }
    fflush(stdout);
    return 0;
}

/* Reads until the connection ends or TIMEOUT seconds pass; prints the outcome. */
static void observe(SSL *ssl, int fd, int timeout)
{
    unsigned long long after = 0;
    char outcome[300] = "";
    time_t deadline = time(NULL) + timeout;
    while (outcome[0] == '\0') {
        time_t left = deadline - time(NULL);
        if (left <= 0) {
            snprintf(outcome, sizeof(outcome), "timeout (still open after %d s)", timeout);
            break;
        }
        if (SSL_pending(ssl) == 0) {
            struct pollfd pfd = { .fd = fd, .events = POLLIN };
            int ready = poll(&pfd, 1, (int)left * 1000);
            if (ready == 0)
                continue;
            if (ready < 0 && errno != EINTR) {
                snprintf(outcome, sizeof(outcome), "error poll: %s", strerror(errno));
                break;
            }
        }
        char buf[16384];
        size_t n;
        ERR_clear_error();
        errno = 0;
        if (SSL_read_ex(ssl, buf, sizeof(buf), &n) == 1) {
            after += n;
            continue;
        }
        int error = SSL_get_error(ssl, 0);
        unsigned long err = ERR_peek_error();
        if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE)
            continue;
        if (error == SSL_ERROR_ZERO_RETURN) {
            snprintf(outcome, sizeof(outcome), "close_notify");
        } else if (error == SSL_ERROR_SSL && ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
            snprintf(outcome, sizeof(outcome), "eof");
        } else if (error == SSL_ERROR_SYSCALL && (errno == ECONNRESET || errno == EPIPE)) {
            snprintf(outcome, sizeof(outcome), "reset");
        } else if (error == SSL_ERROR_SSL && ERR_GET_REASON(err) >= SSL_AD_REASON_OFFSET &&
                   ERR_GET_REASON(err) < SSL_AD_REASON_OFFSET + 256) {
            snprintf(outcome, sizeof(outcome), "alert %s",
                     SSL_alert_desc_string_long(ERR_GET_REASON(err) - SSL_AD_REASON_OFFSET));
        } else {
            char text[256] = "";
            if (err != 0)
                ERR_error_string_n(err, text, sizeof(text));
            snprintf(outcome, sizeof(outcome), "error ssl_error=%d errno=%s %s", error,
                     strerror(errno), text);
        }
    }
    printf("outcome: %s\nafter-action: %llu bytes\n", outcome, after);
}

static void usage(void)
{
    fprintf(stderr, "usage: tls_misbehave ADDR alert|garbage|framed-garbage|keyupdate|keyupdate-requested|close-notify|fin|reset|hold\n"
                    "                     --cert PEM --key PEM --ca PEM [--server-name NAME]\n"
                    "                     [--ciphersuites LIST] [--timeout SECONDS] [--then-echo]\n");
    exit(2);
}

static void parse_options(int argc, char **argv, struct options *opt)
{
    memset(opt, 0, sizeof(*opt));
    opt->server_name = "localhost";
    opt->timeout = 60;
    int positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--then-echo") == 0) {
            opt->then_echo = 1;
        } else if (strncmp(a, "--", 2) == 0) {
            if (i + 1 >= argc)
                usage();
            const char *value = argv[++i];
            if (strcmp(a, "--cert") == 0)
                opt->cert = value;
            else if (strcmp(a, "--key") == 0)
                opt->key = value;
            else if (strcmp(a, "--ca") == 0)
                opt->ca = value;
            else if (strcmp(a, "--server-name") == 0)
                opt->server_name = value;
            else if (strcmp(a, "--ciphersuites") == 0)
                opt->ciphersuites = value;
            else if (strcmp(a, "--timeout") == 0)
                opt->timeout = atoi(value);
            else
                usage();
        } else if (positional == 0) {
            opt->address = a;
            positional++;
        } else if (positional == 1) {
            opt->action = a;
            positional++;
        } else {
            usage();
        }
    }
    if (opt->address == NULL || opt->action == NULL || opt->cert == NULL || opt->key == NULL ||
        opt->ca == NULL || opt->timeout <= 0)
        usage();
}

int main(int argc, char **argv)
{
    struct options opt;
    int status = 1;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    int fd = -1;

    parse_options(argc, argv, &opt);
    /* A server that closes on us must show up as an outcome, not kill the tool. */
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    ctx = make_context(&opt, strcmp(opt.action, "alert") == 0);
    if (ctx == NULL) {
        print_openssl_errors("setting up the TLS context");
        goto out;
    }
    fd = connect_to(opt.address);
    if (fd < 0)
        goto out;
    ssl = SSL_new(ctx);
    if (ssl == NULL || SSL_set_fd(ssl, fd) != 1 ||
        SSL_set_tlsext_host_name(ssl, opt.server_name) != 1 || SSL_set1_host(ssl, opt.server_name) != 1) {
        print_openssl_errors("SSL_new");
        goto out;
    }
    if (SSL_connect(ssl) != 1) {
        print_openssl_errors("handshake");
        goto out;
    }
    printf("handshake: %s %s\n", SSL_get_version(ssl), SSL_get_cipher_name(ssl));
    if (probe_echo(ssl) < 0)
        goto out;
    printf("echo: ok\n");
    if (do_action(&opt, ssl, fd) < 0)
        goto out;
    if (opt.then_echo) {
        if (probe_echo(ssl) < 0)
            goto out;
        printf("echo-after-action: ok\n");
        if (SSL_shutdown(ssl) < 0) {
            print_openssl_errors("SSL_shutdown");
            goto out;
        }
    }
    if (strcmp(opt.action, "reset") == 0)
        printf("outcome: we-reset\nafter-action: 0 bytes\n");
    else
        observe(ssl, fd, opt.timeout);
    status = 0;
out:
    SSL_free(ssl);
    if (fd >= 0)
        close(fd);
    SSL_CTX_free(ctx);
    return status;
}
