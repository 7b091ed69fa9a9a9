/* worker/tun_link over a real SOCK_SEQPACKET socketpair, the test playing the
 * supervisor: answers by id with and without a descriptor, end orders, a cancelled
 * request's late descriptor closed and its hub lease released, a broken link
 * refusing every pending request. */
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

#include "core/event_loop.h"
#include "core/fd_passing.h"
#include "proto/tun_request.h"
#include "proto/tunnel_frame.h"
#include "worker/tun_link.h"

struct seen {
    int calls, refused, fd, ends;
    uint32_t end_id;
    char reason[256], device[16];
    size_t address_count;
};

static void done(void *arg, const struct tun_link_answer *answer)
{
    struct seen *s = arg;
    s->calls++;
    s->refused = answer->refused;
    s->fd = answer->fd;
    s->address_count = answer->address_count;
    snprintf(s->reason, sizeof(s->reason), "%s", answer->refused ? answer->reason : "");
    snprintf(s->device, sizeof(s->device), "%s", answer->refused ? "" : answer->device);
}

static void on_end(void *arg, uint32_t id, const char *reason)
{
    struct seen *s = arg;
    s->ends++;
    s->end_id = id;
    snprintf(s->reason, sizeof(s->reason), "%s", reason);
}

/* The supervisor's side: reads one message. */
static struct tun_message receive(int sock)
{
    unsigned char buf[TUN_REQUEST_MAX_LEN];
    struct tun_message msg;
    int fd = -1;
    ssize_t n = fd_passing_recv(sock, buf, sizeof(buf), &fd, 0);
    assert_true(n > 0);
    assert_int_equal(fd, -1);
    assert_int_equal(tun_request_decode(buf, (size_t)n, &msg, NULL), 0);
    return msg;
}

static void answer(int sock, const struct tun_message *msg, int fd)
{
    unsigned char buf[TUN_REQUEST_MAX_LEN];
    size_t len = tun_request_encode(msg, buf, sizeof(buf));
    assert_true(len > 0);
    assert_int_equal(fd_passing_send(sock, buf, len, fd, 0), 0);
}

static void run(struct event_loop *loop)
{
    while (event_loop_run_once(loop, 50) > 0)
        ;
}

static void test_requests(void **state)
{
    (void)state;
    int pair[2], pipe_fds[2];
    struct seen hub = { 0 }, attach = { 0 }, conf = { 0 }, ends = { 0 };
    struct event_loop *loop = event_loop_create();
    assert_non_null(loop);
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
    struct tun_link *link = tun_link_new(loop, pair[1], on_end, &ends);
    assert_non_null(link);

    uint32_t hub_id = tun_link_request_hub(link, "office", "Site B", done, &hub);
    uint32_t attach_id = tun_link_request_attach(link, "to-hub", done, &attach);
    struct tunnel_frame_config config = { .mtu = 1400, .keepalive_s = 10, .address_count = 1 };
    const char *why = NULL;
    assert_int_equal(ip_prefix_parse("10.8.0.2/24", &config.addresses[0], &why), 0);
    uint32_t conf_id = tun_link_request_configure(link, "to-hub", &config, done, &conf);
    assert_true(hub_id != 0 && attach_id != 0 && conf_id != 0);
    assert_true(hub_id != attach_id && attach_id != conf_id);

    struct tun_message m = receive(pair[0]);
    assert_int_equal(m.type, TUN_MESSAGE_HUB);
    assert_int_equal(m.id, hub_id);
    assert_string_equal(m.tunnel, "office");
    assert_string_equal(m.identity, "Site B");
    m = receive(pair[0]);
    assert_int_equal(m.type, TUN_MESSAGE_ATTACH);
    m = receive(pair[0]);
    assert_int_equal(m.type, TUN_MESSAGE_CONFIGURE);
    struct tunnel_frame_config back;
    assert_int_equal(tunnel_frame_config_decode(m.config, m.config_len, &back, NULL),
                     TUNNEL_FRAME_OK);
    assert_int_equal(back.mtu, 1400);
    assert_memory_equal(&back.addresses[0], &config.addresses[0], sizeof(config.addresses[0]));

    /* Answered out of order, by id. */
    struct tun_message reply;
    tun_request_reply(&reply, conf_id, "ktlto-hub", 0, NULL, NULL);
    answer(pair[0], &reply, -1);
    tun_request_reply(&reply, attach_id, NULL, 0, NULL, "no such client tunnel: to-hub");
    answer(pair[0], &reply, -1);
    assert_int_equal(pipe(pipe_fds), 0);
    tun_request_reply(&reply, hub_id, "ktloffice.1", 1, &config.addresses[0], NULL);
    reply.addresses[0].len = 32;
    answer(pair[0], &reply, pipe_fds[1]);
    close(pipe_fds[1]);
    struct tun_message end = { .type = TUN_MESSAGE_END, .id = hub_id };
    strcpy(end.reason, "a newer connection of the same identity");
    answer(pair[0], &end, -1);
    run(loop);
    assert_int_equal(conf.calls, 1);
    assert_int_equal(conf.refused, 0);
    assert_int_equal(conf.fd, -1);
    assert_int_equal(attach.calls, 1);
    assert_int_equal(attach.refused, 1);
    assert_string_equal(attach.reason, "no such client tunnel: to-hub");
    assert_int_equal(hub.calls, 1);
    assert_string_equal(hub.device, "ktloffice.1");
    assert_int_equal(hub.address_count, 1);
    assert_true(hub.fd >= 0);
    close(hub.fd);
    assert_int_equal(read(pipe_fds[0], (char[4]){ 0 }, 4), 0);   /* our copy was the last */
    close(pipe_fds[0]);
    assert_int_equal(ends.ends, 1);
    assert_int_equal(ends.end_id, hub_id);
    assert_string_equal(ends.reason, "a newer connection of the same identity");

    tun_link_release(link, hub_id);
    m = receive(pair[0]);
    assert_int_equal(m.type, TUN_MESSAGE_RELEASE);
    assert_int_equal(m.id, hub_id);

    /* Cancelled: no callback, the late descriptor closed, the lease given back. */
    struct seen late = { 0 };
    uint32_t late_id = tun_link_request_hub(link, "office", "bob", done, &late);
    (void)receive(pair[0]);
    tun_link_cancel(link, late_id);
    assert_int_equal(pipe(pipe_fds), 0);
    tun_request_reply(&reply, late_id, "ktloffice.2", 0, NULL, NULL);
    answer(pair[0], &reply, pipe_fds[1]);
    close(pipe_fds[1]);
    run(loop);
    assert_int_equal(late.calls, 0);
    assert_int_equal(read(pipe_fds[0], (char[4]){ 0 }, 4), 0);
    close(pipe_fds[0]);
    m = receive(pair[0]);
    assert_int_equal(m.type, TUN_MESSAGE_RELEASE);
    assert_int_equal(m.id, late_id);

    /* The supervisor gone: what is pending is refused, new requests are not sent. */
    struct seen a = { 0 }, b = { 0 }, c = { 0 };
    assert_true(tun_link_request_hub(link, "office", "carol", done, &a) != 0);
    assert_true(tun_link_request_attach(link, "to-hub", done, &b) != 0);
    uint32_t gone = tun_link_request_attach(link, "to-hub", done, &c);
    tun_link_cancel(link, gone);
    close(pair[0]);
    run(loop);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.refused, 1);
    assert_string_equal(a.reason, "the link to the supervisor is down");
    assert_int_equal(b.calls, 1);
    assert_int_equal(c.calls, 0);
    assert_int_equal(tun_link_request_attach(link, "to-hub", done, &c), 0);
    tun_link_free(link);
    event_loop_free(loop);
}

/* A callback may free the link; the handler finishes without touching it. */
static struct tun_link *freeing;
static void done_and_free(void *arg, const struct tun_link_answer *answer)
{
    done(arg, answer);
    tun_link_free(freeing);
}

static void test_free_in_callback(void **state)
{
    (void)state;
    int pair[2];
    struct seen a = { 0 }, b = { 0 };
    struct event_loop *loop = event_loop_create();
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair), 0);
    freeing = tun_link_new(loop, pair[1], on_end, &a);
    assert_non_null(freeing);
    assert_true(tun_link_request_attach(freeing, "x", done_and_free, &a) != 0);
    assert_true(tun_link_request_attach(freeing, "y", done_and_free, &b) != 0);
    close(pair[0]);
    run(loop);
    assert_int_equal(a.calls + b.calls, 1);
    event_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests),
        cmocka_unit_test(test_free_in_callback),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
