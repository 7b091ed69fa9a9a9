/* worker/conn_preamble.c over real loopback TCP sockets: the PROXY header survives a
 * target socket that is full when it is due (it waits, then goes out whole, after what
 * was queued and before anything else), and the CONNECT exchange waits for a reply
 * that arrives in pieces, passes a 200, and words a 407 (with and without
 * credentials), a 403 and bytes past the reply. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "proto/proxy_header.h"
#include "worker/conn_preamble.h"
#include "worker/conn_state.h"

#define SIGNATURE "\r\n\r\n\0\r\nQUIT\n"

/* A connected loopback TCP pair: *A (non-blocking) and *B. */
static void tcp_pair(int *a, int *b)
{
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    socklen_t len = sizeof(addr);
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(listener >= 0);
    assert_int_equal(bind(listener, (struct sockaddr *)&addr, sizeof(addr)), 0);
    assert_int_equal(listen(listener, 1), 0);
    assert_int_equal(getsockname(listener, (struct sockaddr *)&addr, &len), 0);
    *a = socket(AF_INET, SOCK_STREAM, 0);
    assert_int_equal(connect(*a, (struct sockaddr *)&addr, sizeof(addr)), 0);
    *b = accept(listener, NULL, NULL);
    assert_true(*b >= 0);
    close(listener);
    assert_int_equal(fcntl(*a, F_SETFL, O_NONBLOCK), 0);
}

struct fixture {
    struct tunnel_config config;
    struct tunnel tunnel;
    struct conn_host host;
    struct conn conn;
};

static void setup_conn(struct fixture *f, enum tunnel_mode mode)
{
    memset(f, 0, sizeof(*f));
    f->config.name = "t";
    f->config.mode = mode;
    f->tunnel.config = &f->config;
    f->conn.tunnel = &f->tunnel;
    f->conn.host = &f->host;
    f->conn.tls_fd = f->conn.plain_fd = -1;
    strcpy(f->conn.tls_version, "TLSv1.3");
    strcpy(f->conn.cipher, "TLS_AES_128_GCM_SHA256");
}

static size_t drain(int fd, unsigned char *buf, size_t cap)
{
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + got, cap - got, MSG_DONTWAIT);
        if (n <= 0)
            break;
        got += (size_t)n;
        if (got == cap)
            break;
    }
    return got;
}

/* Reads what FD has; of the stream, bytes from offset SKIP on go to HEADER (its
 * length in *HEADER_LEN); AT is how much was read before. Returns the bytes read. */
static size_t take(int fd, size_t skip, size_t at, unsigned char *header, size_t *header_len)
{
    static unsigned char buf[1 << 16];
    size_t got = drain(fd, buf, sizeof(buf));
    for (size_t i = 0; i < got; i++) {
        if (at + i >= skip && *header_len < PROXY_HEADER_MAX)
            header[(*header_len)++] = buf[i];
    }
    return got;
}

static void test_proxy_header_full_socket(void **state)
{
    (void)state;
    struct fixture f;
    int client_end, target_end;
    enum stats_result result;
    char reason[600];

    setup_conn(&f, TUNNEL_MODE_SERVER);
    f.config.proxy_protocol = PROXY_PROTOCOL_V2;
    tcp_pair(&client_end, &f.conn.tls_fd);
    tcp_pair(&f.conn.plain_fd, &target_end);

    /* Fill the target socket until it takes nothing more. */
    static unsigned char filler[1 << 16];
    memset(filler, 'x', sizeof(filler));
    size_t filled = 0;
    for (;;) {
        ssize_t n = send(f.conn.plain_fd, filler, sizeof(filler), MSG_DONTWAIT);
        if (n < 0) {
            assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
            break;
        }
        filled += (size_t)n;
    }
    assert_true(filled > 0);
    assert_int_equal(conn_preamble_step(&f.conn, &result, reason, sizeof(reason)), 0);
    assert_true(conn_preamble_started(&f.conn));

    /* The target reads; each turn sends what fits, until all of it is out. */
    unsigned char header[PROXY_HEADER_MAX];
    size_t total = 0, header_len = 0;
    int done = 0;
    for (int turn = 0; turn < 50000 && !done; turn++) {
        total += take(target_end, filled, total, header, &header_len);
        done = conn_preamble_step(&f.conn, &result, reason, sizeof(reason));
        assert_true(done >= 0);
        if (!done)
            usleep(100);
    }
    if (done != 1)
        fail_msg("filled %zu, read %zu, header %zu", filled, total, header_len);
    assert_false(conn_preamble_started(&f.conn));
    for (int turn = 0; turn < 1000 && (header_len < 16 || header_len < 16 + ((size_t)header[14] << 8 | header[15])); turn++) {
        total += take(target_end, filled, total, header, &header_len);
        usleep(1000);
    }
    assert_true(header_len > 16);
    assert_memory_equal(header, SIGNATURE, 12);
    assert_int_equal(header_len, 16 + ((size_t)header[14] << 8 | header[15]));
    assert_int_equal(header[13], 0x11);

    conn_preamble_free(&f.conn);
    close(client_end);
    close(target_end);
    close(f.conn.tls_fd);
    close(f.conn.plain_fd);
}

/* Runs a CONNECT whose proxy answers REPLY in two pieces; returns the last step's
 * answer, the request the proxy read in REQUEST. */
static int run_connect(const char *reply, const char *basic, char *request, size_t cap,
                       char *reason, size_t reason_len)
{
    struct fixture f;
    int proxy_end;
    enum stats_result result;

    setup_conn(&f, TUNNEL_MODE_CLIENT);
    f.config.proxy.enabled = 1;
    f.config.proxy.basic = (char *)basic;
    f.config.proxy.credentials = "/etc/ktlstun/proxy.cred";
    f.config.proxy.address.kind = ADDRESS_INET;
    strcpy(f.config.proxy.address.host, "192.0.2.1");
    f.config.proxy.address.port = 3128;
    strcpy(f.config.target.host, "gateway.example.com");
    f.config.target.port = 443;
    tcp_pair(&f.conn.tls_fd, &proxy_end);

    assert_int_equal(conn_preamble_step(&f.conn, &result, reason, reason_len), 0);
    size_t got = drain(proxy_end, (unsigned char *)request, cap - 1);
    request[got] = '\0';
    size_t half = strlen(reply) / 2;
    assert_int_equal(send(proxy_end, reply, half, 0), (ssize_t)half);
    usleep(20000);
    assert_int_equal(conn_preamble_step(&f.conn, &result, reason, reason_len), 0);
    assert_int_equal(send(proxy_end, reply + half, strlen(reply) - half, 0),
                     (ssize_t)(strlen(reply) - half));
    usleep(20000);
    int done = conn_preamble_step(&f.conn, &result, reason, reason_len);
    if (done < 0)
        assert_int_equal(result, STATS_RESULT_TARGET_UNREACHABLE);
    conn_preamble_free(&f.conn);
    close(proxy_end);
    close(f.conn.tls_fd);
    return done;
}

static void test_connect(void **state)
{
    (void)state;
    char request[2048], reason[600];

    assert_int_equal(run_connect("HTTP/1.1 200 Connection established\r\n\r\n", NULL, request,
                                 sizeof(request), reason, sizeof(reason)), 1);
    assert_string_equal(request, "CONNECT gateway.example.com:443 HTTP/1.1\r\n"
                                 "Host: gateway.example.com:443\r\n\r\n");

    assert_int_equal(run_connect("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n", NULL,
                                 request, sizeof(request), reason, sizeof(reason)), -1);
    assert_string_equal(reason, "proxy 192.0.2.1:3128: proxy authentication required "
                                "(set proxy_credentials)");

    assert_int_equal(run_connect("HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
                                 "dTpw", request, sizeof(request), reason, sizeof(reason)), -1);
    assert_non_null(strstr(request, "\r\nProxy-Authorization: Basic dTpw\r\n"));
    assert_string_equal(reason, "proxy 192.0.2.1:3128 refused the credentials in "
                                "/etc/ktlstun/proxy.cred");

    assert_int_equal(run_connect("HTTP/1.0 403 Access violation\r\n\r\n", NULL, request,
                                 sizeof(request), reason, sizeof(reason)), -1);
    assert_string_equal(reason, "proxy 192.0.2.1:3128 refused CONNECT to gateway.example.com:443: "
                                "\"HTTP/1.0 403 Access violation\"");

    assert_int_equal(run_connect("HTTP/1.1 200 OK\r\n\r\n\x16\x03\x03", NULL, request,
                                 sizeof(request), reason, sizeof(reason)), -1);
    assert_string_equal(reason, "proxy 192.0.2.1:3128 sent data past its reply to CONNECT");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proxy_header_full_socket),
        cmocka_unit_test(test_connect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
