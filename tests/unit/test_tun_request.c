#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/fd_passing.h"
#include "proto/tun_request.h"
#include "proto/tunnel_frame.h"

static struct ip_prefix parsed(const char *text)
{
    struct ip_prefix p;
    const char *reason = NULL;
    if (ip_prefix_parse(text, &p, &reason) != 0)
        fail_msg("'%s' rejected: %s", text, reason);
    return p;
}

/* Encodes MSG, checks its length and that it decodes back to the same fields. */
static size_t round_trip(const struct tun_message *msg, unsigned char *buf, size_t want)
{
    struct tun_message back;
    const char *reason = NULL;
    size_t len = tun_request_encode(msg, buf, TUN_REQUEST_MAX_LEN);
    assert_int_equal(len, want);
    assert_int_equal(buf[0], msg->type);
    assert_int_equal(buf[1], TUN_REQUEST_VERSION);
    assert_int_equal(tun_request_decode(buf, len, &back, &reason), 0);
    assert_string_equal(reason, "ok");
    assert_int_equal(back.type, msg->type);
    assert_int_equal(back.id, msg->id);
    assert_string_equal(back.tunnel, msg->tunnel);
    assert_string_equal(back.identity, msg->identity);
    assert_int_equal(back.config_len, msg->config_len);
    assert_memory_equal(back.config, msg->config, msg->config_len);
    assert_int_equal(back.refused, msg->refused);
    assert_string_equal(back.device, msg->device);
    assert_int_equal(back.address_count, msg->address_count);
    if (msg->address_count > 0)
        assert_memory_equal(back.addresses, msg->addresses,
                            msg->address_count * sizeof(msg->addresses[0]));
    assert_string_equal(back.reason, msg->reason);
    /* Every cut is refused, and so is a byte more. */
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(tun_request_decode(buf, cut, &back, NULL), -1);
    buf[len] = 0;
    assert_int_equal(tun_request_decode(buf, len + 1, &back, &reason), -1);
    return len;
}

/* A CONFIG payload as proto/tunnel_frame.c writes it. */
static size_t sample_config(unsigned char *out)
{
    struct tunnel_frame_config c = { .mtu = 1400, .keepalive_s = 10, .address_count = 2,
                               .route_count = 1 };
    unsigned char frame[TUNNEL_FRAME_HEADER_LEN + TUNNEL_CONFIG_MAX_PAYLOAD];
    struct tunnel_frame_writer w;
    c.addresses[0] = parsed("10.8.0.2/24");
    c.addresses[1] = parsed("fd08::2/64");
    c.routes[0] = parsed("192.168.1.0/24");
    tunnel_frame_writer_init(&w, frame, sizeof(frame));
    assert_int_equal(tunnel_frame_put_config(&w, &c), 1);
    memcpy(out, frame + TUNNEL_FRAME_HEADER_LEN, w.len - TUNNEL_FRAME_HEADER_LEN);
    return w.len - TUNNEL_FRAME_HEADER_LEN;
}

static void test_worker_messages(void **state)
{
    (void)state;
    unsigned char buf[TUN_REQUEST_MAX_LEN + 1];
    struct tun_message msg = { .type = TUN_MESSAGE_HUB, .id = 0x01020304 };
    strcpy(msg.tunnel, "hub-office");
    strcpy(msg.identity, "Site B");
    round_trip(&msg, buf, 6 + 11 + 7);
    assert_memory_equal(buf, "H\x02\x01\x02\x03\x04\x0ahub-office\x06Site B", 24);

    memset(&msg, 0, sizeof(msg));
    msg.type = TUN_MESSAGE_ATTACH;
    msg.id = 7;
    strcpy(msg.tunnel, "to-hub");
    round_trip(&msg, buf, 6 + 7);

    msg.type = TUN_MESSAGE_CONFIGURE;
    msg.config_len = sample_config(msg.config);
    round_trip(&msg, buf, 6 + 7 + msg.config_len);
    /* The longest CONFIGURE fits the bound. */
    memset(msg.tunnel, 'a', LIMIT_TUNNEL_NAME);
    msg.tunnel[LIMIT_TUNNEL_NAME] = '\0';
    struct tunnel_frame_config big = { .mtu = 1400, .keepalive_s = 10, .address_count = 2,
                                 .route_count = TUNNEL_CONFIG_MAX_ROUTES };
    big.addresses[0] = parsed("10.8.0.2/24");
    big.addresses[1] = parsed("fd08::2/64");
    for (size_t i = 0; i < TUNNEL_CONFIG_MAX_ROUTES; i++) {
        char text[32];
        snprintf(text, sizeof(text), "fd%02zx::/16", i);
        big.routes[i] = parsed(text);
    }
    unsigned char frame[TUNNEL_FRAME_HEADER_LEN + TUNNEL_CONFIG_MAX_PAYLOAD];
    struct tunnel_frame_writer w;
    tunnel_frame_writer_init(&w, frame, sizeof(frame));
    assert_int_equal(tunnel_frame_put_config(&w, &big), 1);
    msg.config_len = w.len - TUNNEL_FRAME_HEADER_LEN;
    memcpy(msg.config, frame + TUNNEL_FRAME_HEADER_LEN, msg.config_len);
    assert_true(round_trip(&msg, buf, 6 + 1 + LIMIT_TUNNEL_NAME + msg.config_len) <=
                TUN_REQUEST_MAX_LEN);

    memset(&msg, 0, sizeof(msg));
    msg.type = TUN_MESSAGE_RELEASE;
    msg.id = 99;
    round_trip(&msg, buf, 6);
}

static void assert_refused(const struct tun_message *msg, const char *why)
{
    unsigned char buf[TUN_REQUEST_MAX_LEN];
    const char *reason = NULL;
    assert_int_equal(tun_request_check(msg, &reason), -1);
    assert_string_equal(reason, why);
    assert_int_equal(tun_request_encode(msg, buf, sizeof(buf)), 0);
}

static void test_worker_checks(void **state)
{
    (void)state;
    struct tun_message msg = { .type = TUN_MESSAGE_HUB, .id = 1 };
    strcpy(msg.tunnel, "hub");
    assert_refused(&msg, "identity empty, too long or not printable");
    memset(msg.identity, 'x', TUN_REQUEST_IDENTITY_MAX + 1);
    assert_refused(&msg, "identity empty, too long or not printable");
    strcpy(msg.identity, "bob\n");
    assert_refused(&msg, "identity empty, too long or not printable");
    strcpy(msg.identity, "bob");
    strcpy(msg.tunnel, "a hub");
    assert_refused(&msg, "tunnel name empty, too long or not printable");
    msg.tunnel[0] = '\0';
    assert_refused(&msg, "tunnel name empty, too long or not printable");
    msg.type = TUN_MESSAGE_CONFIGURE;
    strcpy(msg.tunnel, "hub");
    assert_refused(&msg, "configuration does not decode");
    msg.config_len = sample_config(msg.config);
    msg.config[0] = 9;                      /* its version */
    assert_refused(&msg, "configuration does not decode");
    msg.type = (enum tun_message_type)'Z';
    assert_refused(&msg, "unknown message type");

    /* Decoding refuses an unknown tag or version, and a CONFIGURE with a byte more in
     * its CONFIG (the payload's own length check). */
    unsigned char buf[TUN_REQUEST_MAX_LEN + 2];
    struct tun_message back;
    const char *reason = NULL;
    memset(&msg, 0, sizeof(msg));
    msg.type = TUN_MESSAGE_CONFIGURE;
    strcpy(msg.tunnel, "hub");
    msg.config_len = sample_config(msg.config);
    size_t len = tun_request_encode(&msg, buf, sizeof(buf));
    assert_true(len > 0);
    buf[len] = 0;
    assert_int_equal(tun_request_decode(buf, len + 1, &back, &reason), -1);
    assert_string_equal(reason, "configuration does not decode");
    buf[1] = 1;
    assert_int_equal(tun_request_decode(buf, len, &back, &reason), -1);
    assert_string_equal(reason, "not a message of this version");
    buf[1] = TUN_REQUEST_VERSION;
    buf[0] = 'Q';
    assert_int_equal(tun_request_decode(buf, len, &back, &reason), -1);
    assert_string_equal(reason, "not a message of this version");
    /* Too small a buffer: nothing. */
    buf[0] = 'C';
    assert_int_equal(tun_request_encode(&msg, buf, len - 1), 0);
}

static void test_supervisor_messages(void **state)
{
    (void)state;
    unsigned char buf[TUN_REQUEST_MAX_LEN + 1];
    struct tun_message msg;
    struct ip_prefix leased[3] = { parsed("10.8.0.2/32"), parsed("fd08::2/128"),
                                   parsed("10.9.0.2/32") };
    tun_request_reply(&msg, 5, "ktloffice.1", 2, leased, NULL);
    round_trip(&msg, buf, 6 + 1 + 12 + 1 + 6 + 18 + 1);
    tun_request_reply(&msg, 5, "ktloffice.1", 3, leased, NULL);
    assert_int_equal(msg.address_count, 2);
    tun_request_reply(&msg, 6, "ktlto-hub", 0, NULL, NULL);
    round_trip(&msg, buf, 6 + 1 + 10 + 1 + 1);
    tun_request_reply(&msg, 7, NULL, 0, NULL, "the pool of 10.8.0.1/24 is full");
    assert_int_equal(msg.refused, 1);
    round_trip(&msg, buf, 6 + 1 + 1 + 1 + 1 + 31);

    memset(&msg, 0, sizeof(msg));
    msg.type = TUN_MESSAGE_END;
    msg.id = 8;
    strcpy(msg.reason, "a newer connection of the same identity");
    round_trip(&msg, buf, 6 + 1 + strlen(msg.reason));

    /* A reason is cut and made printable on the way out; the check alone refuses it. */
    struct tun_message back;
    memset(msg.reason, 'r', sizeof(msg.reason));
    msg.reason[3] = '\n';
    size_t len = tun_request_encode(&msg, buf, sizeof(buf));
    assert_int_equal(len, 6 + 1 + TUN_REQUEST_REASON_MAX);
    assert_int_equal(tun_request_decode(buf, len, &back, NULL), 0);
    assert_int_equal(back.reason[3], '?');
    assert_int_equal(strlen(back.reason), TUN_REQUEST_REASON_MAX);
    const char *reason = NULL;
    assert_int_equal(tun_request_check(&msg, &reason), -1);
}

static void test_reply_checks(void **state)
{
    (void)state;
    struct tun_message msg;
    struct ip_prefix two_v4[2] = { parsed("10.8.0.2/32"), parsed("10.8.0.3/32") };
    struct ip_prefix net[1] = { parsed("10.8.0.0/24") };
    tun_request_reply(&msg, 1, "ktl0", 2, two_v4, NULL);
    assert_refused(&msg, "addresses that are not one host per family");
    tun_request_reply(&msg, 1, "ktl0", 1, net, NULL);
    assert_refused(&msg, "addresses that are not one host per family");
    tun_request_reply(&msg, 1, "..", 0, NULL, NULL);
    assert_refused(&msg, "a reply without a device, or with a reason");
    tun_request_reply(&msg, 1, "a/b", 0, NULL, NULL);
    assert_refused(&msg, "a reply without a device, or with a reason");
    tun_request_reply(&msg, 1, "ktl0", 0, NULL, NULL);
    strcpy(msg.reason, "both");
    assert_refused(&msg, "a reply without a device, or with a reason");
    tun_request_reply(&msg, 1, NULL, 0, NULL, "");
    assert_int_equal(tun_request_encode(&msg, (unsigned char[64]){ 0 }, 64), 0);
    tun_request_reply(&msg, 1, NULL, 0, NULL, "no");
    strcpy(msg.device, "ktl0");
    assert_refused(&msg, "a refusal without a reason, or with a device");
    memset(&msg, 0, sizeof(msg));
    msg.type = TUN_MESSAGE_END;
    assert_refused(&msg, "end order without a printable reason");

    /* Decoding: a status above 1 and a refusal with addresses are refused. */
    unsigned char buf[64] = "R\x02\x00\x00\x00\x01\x02\x00\x00\x01x";
    struct tun_message back;
    const char *reason = NULL;
    assert_int_equal(tun_request_decode(buf, 11, &back, &reason), -1);
    assert_string_equal(reason, "bad or truncated field");
    buf[6] = 1;
    assert_int_equal(tun_request_decode(buf, 11, &back, &reason), 0);
    assert_string_equal(back.reason, "x");
    static const unsigned char with_address[17] = { 'R', 2, 0, 0, 0, 1, 1, 0, 1, 4, 10, 8,
                                                    0, 2, 32, 1, 'x' };
    assert_int_equal(tun_request_decode(with_address, 17, &back, &reason), -1);
    assert_string_equal(reason, "a refusal without a reason, or with a device");
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
        cmocka_unit_test(test_worker_messages),
        cmocka_unit_test(test_worker_checks),
        cmocka_unit_test(test_supervisor_messages),
        cmocka_unit_test(test_reply_checks),
        cmocka_unit_test(test_fd_passing),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
