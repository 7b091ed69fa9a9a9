#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/fd_passing.h"
#include "proto/tun_request.h"

static struct ip_prefix parsed(const char *text)
{
    struct ip_prefix p;
    const char *reason = NULL;
    if (ip_prefix_parse(text, &p, &reason) != 0)
        fail_msg("'%s' rejected: %s", text, reason);
    return p;
}

static struct tun_request sample(void)
{
    struct tun_request req = { .id = 0x01020304, .mtu = 1400, .address_count = 2,
                               .network_count = 3 };
    strcpy(req.tunnel, "hub-office");
    req.addresses[0] = parsed("10.8.0.2/32");
    req.addresses[1] = parsed("fd08::2/128");
    req.networks[0] = parsed("10.20.0.0/16");
    req.networks[1] = parsed("192.168.7.0/24");
    req.networks[2] = parsed("fd20::/48");
    return req;
}

static void test_request_round_trip(void **state)
{
    (void)state;
    struct tun_request req = sample(), back;
    unsigned char buf[TUN_REQUEST_MAX_LEN];
    const char *reason = NULL;
    size_t len = tun_request_encode(&req, buf, sizeof(buf));
    /* 11 fixed + 10 name + 6 + 18 + 6 + 6 + 18 */
    assert_int_equal(len, 11 + 10 + 6 + 18 + 6 + 6 + 18);
    assert_int_equal(buf[0], 'Q');
    assert_int_equal(tun_request_decode(buf, len, &back, &reason), 0);
    assert_string_equal(reason, "ok");
    assert_int_equal(back.id, req.id);
    assert_int_equal(back.mtu, 1400);
    assert_string_equal(back.tunnel, "hub-office");
    assert_int_equal(back.address_count, 2);
    assert_int_equal(back.network_count, 3);
    assert_memory_equal(back.addresses, req.addresses, sizeof(req.addresses));
    assert_memory_equal(back.networks, req.networks, 3 * sizeof(req.networks[0]));
    /* Every cut is refused, and so is a byte more. */
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(tun_request_decode(buf, cut, &back, NULL), -1);
    buf[len] = 0;
    assert_int_equal(tun_request_decode(buf, len + 1, &back, &reason), -1);
    assert_string_equal(reason, "bytes after the request");
    /* The largest request fits the largest size. */
    req.network_count = TUN_REQUEST_MAX_NETWORKS;
    for (size_t i = 0; i < TUN_REQUEST_MAX_NETWORKS; i++)
        req.networks[i] = parsed("fd20::/48");
    memset(req.tunnel, 'x', LIMIT_TUNNEL_NAME);
    req.tunnel[LIMIT_TUNNEL_NAME] = '\0';
    assert_int_equal(tun_request_encode(&req, buf, sizeof(buf)), TUN_REQUEST_MAX_LEN);
    assert_int_equal(tun_request_encode(&req, buf, sizeof(buf) - 1), 0);
}

static void assert_request_refused(struct tun_request req, const char *why)
{
    unsigned char buf[TUN_REQUEST_MAX_LEN];
    const char *reason = NULL;
    assert_int_equal(tun_request_check(&req, &reason), -1);
    assert_string_equal(reason, why);
    assert_int_equal(tun_request_encode(&req, buf, sizeof(buf)), 0);
}

static void test_request_checks(void **state)
{
    (void)state;
    struct tun_request req = sample();
    req.tunnel[0] = '\0';
    assert_request_refused(req, "tunnel name empty, too long or not printable");
    req = sample();
    strcpy(req.tunnel, "a b");
    assert_request_refused(req, "tunnel name empty, too long or not printable");
    req = sample();
    req.mtu = 100;
    assert_request_refused(req, "MTU out of range");
    req = sample();
    req.address_count = 0;
    assert_request_refused(req, "address count out of range");
    req = sample();
    req.addresses[1] = parsed("10.8.0.3/32");
    assert_request_refused(req, "two client addresses of one family");
    req = sample();
    req.addresses[0] = parsed("10.8.0.2/24");
    assert_request_refused(req, "a client address is not a host address");
    req = sample();
    req.networks[1] = parsed("192.168.7.1/24");
    assert_request_refused(req, "a network has host bits set or no family");
    req = sample();
    req.network_count = TUN_REQUEST_MAX_NETWORKS + 1;
    assert_request_refused(req, "too many networks");

    /* What decoding refuses beyond the checks. */
    req = sample();
    unsigned char buf[TUN_REQUEST_MAX_LEN];
    struct tun_request back;
    const char *reason = NULL;
    size_t len = tun_request_encode(&req, buf, sizeof(buf));
    buf[1] = 2;
    assert_int_equal(tun_request_decode(buf, len, &back, &reason), -1);
    assert_string_equal(reason, "not a request of this version");
    buf[1] = 1;
    buf[11 + 10] = 5;   /* the first address's family */
    assert_int_equal(tun_request_decode(buf, len, &back, &reason), -1);
    assert_string_equal(reason, "bad address entry");
    buf[11 + 10] = 4;
    assert_int_equal(tun_request_decode(buf, len, &back, &reason), 0);
    buf[12] = 0;             /* a NUL in the name */
    assert_int_equal(tun_request_decode(buf, len, &back, &reason), -1);
}

static void test_reply_round_trip(void **state)
{
    (void)state;
    struct tun_reply done = { .id = 7 }, refused = { .id = 8, .refused = 1 }, back;
    unsigned char buf[TUN_REPLY_MAX_LEN];
    const char *reason = NULL;
    strcpy(done.device, "ktlhub12");
    size_t len = tun_request_reply_encode(&done, buf, sizeof(buf));
    assert_int_equal(len, 9 + 8);
    assert_int_equal(tun_request_reply_decode(buf, len, &back, &reason), 0);
    assert_int_equal(back.id, 7);
    assert_int_equal(back.refused, 0);
    assert_string_equal(back.device, "ktlhub12");
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(tun_request_reply_decode(buf, cut, &back, NULL), -1);

    strcpy(refused.reason, "adding route via device ktlhub3: 10.20.0.0/16: Object exists\n");
    len = tun_request_reply_encode(&refused, buf, sizeof(buf));
    assert_int_equal(tun_request_reply_decode(buf, len, &back, &reason), 0);
    assert_int_equal(back.refused, 1);
    assert_string_equal(back.device, "");
    assert_string_equal(back.reason, "adding route via device ktlhub3: 10.20.0.0/16: Object exists?");

    /* The longest reason is cut to fit. */
    memset(refused.reason, 'r', sizeof(refused.reason) - 1);
    len = tun_request_reply_encode(&refused, buf, sizeof(buf));
    assert_int_equal(len, TUN_REPLY_MAX_LEN - TUN_REQUEST_DEVICE_MAX);
    assert_int_equal(tun_request_reply_decode(buf, len, &back, NULL), 0);
    assert_int_equal(strlen(back.reason), TUN_REQUEST_REASON_MAX);

    /* Nothing that disagrees with its status. */
    refused.reason[0] = '\0';
    assert_int_equal(tun_request_reply_encode(&refused, buf, sizeof(buf)), 0);
    strcpy(done.device, "a/b");
    assert_int_equal(tun_request_reply_encode(&done, buf, sizeof(buf)), 0);
    strcpy(done.device, "ktlhub012345678");   /* IFNAMSIZ - 1 */
    assert_int_equal(tun_request_reply_encode(&done, buf, sizeof(buf)), 9 + 15);
    strcpy(done.device, "..");
    assert_int_equal(tun_request_reply_encode(&done, buf, sizeof(buf)), 0);
    static const unsigned char no_device[] = { 'R', 1, 0, 0, 0, 1, 0, 0, 0 };
    assert_int_equal(tun_request_reply_decode(no_device, sizeof(no_device), &back, &reason), -1);
    assert_string_equal(reason, "status, device name and reason do not agree");
    static const unsigned char both[] = { 'R', 1, 0, 0, 0, 1, 1, 1, 'x', 1, 'y' };
    assert_int_equal(tun_request_reply_decode(both, sizeof(both), &back, &reason), -1);
    static const unsigned char control[] = { 'R', 1, 0, 0, 0, 1, 1, 0, 2, 'x', 7 };
    assert_int_equal(tun_request_reply_decode(control, sizeof(control), &back, &reason), -1);
    assert_string_equal(reason, "reason not printable");
}

/* The request goes one way, the reply with a descriptor the other; the receiver's copy
 * works after the sender closed its own. */
static void test_fd_passing(void **state)
{
    (void)state;
    int pair[2], pipe_fds[2], fd = -2;
    char buf[64];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
    assert_int_equal(pipe(pipe_fds), 0);

    assert_int_equal(fd_passing_send(pair[0], "hello", 5, -1, 0), 0);
    assert_int_equal(fd_passing_recv(pair[1], buf, sizeof(buf), &fd, 0), 5);
    assert_int_equal(fd, -1);
    assert_memory_equal(buf, "hello", 5);

    assert_int_equal(fd_passing_send(pair[1], "fd", 2, pipe_fds[1], 0), 0);
    close(pipe_fds[1]);
    assert_int_equal(fd_passing_recv(pair[0], buf, sizeof(buf), &fd, 0), 2);
    assert_true(fd >= 0);
    assert_int_equal(fcntl(fd, F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    assert_int_equal(write(fd, "x", 1), 1);
    close(fd);
    assert_int_equal(read(pipe_fds[0], buf, sizeof(buf)), 1);
    assert_int_equal(read(pipe_fds[0], buf, sizeof(buf)), 0);   /* every write end closed */

    /* A message too large for the buffer is refused and its descriptor closed. */
    int other[2];
    assert_int_equal(pipe(other), 0);
    assert_int_equal(fd_passing_send(pair[0], "0123456789", 10, other[1], 0), 0);
    close(other[1]);
    fd = -2;
    assert_int_equal(fd_passing_recv(pair[1], buf, 4, &fd, 0), -1);
    assert_int_equal(errno, EMSGSIZE);
    assert_int_equal(fd, -1);
    assert_int_equal(read(other[0], buf, sizeof(buf)), 0);
    close(other[0]);

    /* Nothing waiting: EAGAIN with MSG_DONTWAIT; the peer gone: 0. */
    assert_int_equal(fd_passing_recv(pair[1], buf, sizeof(buf), &fd, MSG_DONTWAIT), -1);
    assert_int_equal(errno, EAGAIN);
    close(pair[0]);
    assert_int_equal(fd_passing_recv(pair[1], buf, sizeof(buf), &fd, 0), 0);
    assert_int_equal(fd_passing_send(pair[1], "x", 1, -1, 0), -1);
    assert_int_equal(errno, EPIPE);
    close(pair[1]);
    close(pipe_fds[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request_round_trip),
        cmocka_unit_test(test_request_checks),
        cmocka_unit_test(test_reply_round_trip),
        cmocka_unit_test(test_fd_passing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
