/* helper_msg: the fixed, length-checked messages between workers, the PAM helper and
 * its per-login children. Whatever arrives malformed is refused whole. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "proto/helper_msg.h"

static struct helper_msg begin(void)
{
    struct helper_msg msg;
    helper_msg_init(&msg, HELPER_MSG_BEGIN, 7);
    strcpy(msg.tunnel, "vpn");
    strcpy(msg.identity, "alice");
    strcpy(msg.user, "alice");
    memset(msg.sha256, 'a', 64);
    strcpy(msg.source, "192.0.2.7");
    return msg;
}

static void test_valid_messages(void **state)
{
    (void)state;
    struct helper_msg msg = begin();
    assert_true(helper_msg_valid(&msg, sizeof(msg)));
    helper_msg_init(&msg, HELPER_MSG_PROMPT, 1);
    msg.style = AUTH_FRAME_PROMPT_ECHO_OFF;
    helper_msg_set_text(&msg, "Code: ", 6);
    assert_true(helper_msg_valid(&msg, sizeof(msg)));
    helper_msg_init(&msg, HELPER_MSG_RESULT, 1);
    msg.style = AUTH_RESULT_PROTOCOL_ERROR;
    assert_true(helper_msg_valid(&msg, sizeof(msg)));
    helper_msg_init(&msg, HELPER_MSG_CANCEL, 1);
    assert_true(helper_msg_valid(&msg, sizeof(msg)));
    helper_msg_init(&msg, HELPER_MSG_RECHECK, 0);
    assert_true(helper_msg_valid(&msg, sizeof(msg)));
}

static void test_wrong_size_or_type(void **state)
{
    (void)state;
    struct helper_msg msg = begin();
    assert_false(helper_msg_valid(&msg, sizeof(msg) - 1));
    assert_false(helper_msg_valid(&msg, sizeof(msg) + 1));
    msg.type = 0;
    assert_false(helper_msg_valid(&msg, sizeof(msg)));
    msg.type = 99;
    assert_false(helper_msg_valid(&msg, sizeof(msg)));
}

static void test_unterminated_strings(void **state)
{
    (void)state;
    struct helper_msg msg = begin();
    memset(msg.tunnel, 'x', sizeof(msg.tunnel));
    assert_false(helper_msg_valid(&msg, sizeof(msg)));
    msg = begin();
    memset(msg.identity, 'x', sizeof(msg.identity));
    assert_false(helper_msg_valid(&msg, sizeof(msg)));
    msg = begin();
    memset(msg.source, 'x', sizeof(msg.source));
    assert_false(helper_msg_valid(&msg, sizeof(msg)));
}

static void test_text_length_checked(void **state)
{
    (void)state;
    struct helper_msg msg;
    helper_msg_init(&msg, HELPER_MSG_ANSWER, 1);
    helper_msg_set_text(&msg, "123456", 6);
    assert_true(helper_msg_valid(&msg, sizeof(msg)));
    msg.text_len = 7;                       /* past the text's end */
    assert_false(helper_msg_valid(&msg, sizeof(msg)));
    msg.text_len = AUTH_TEXT_MAX + 1;
    assert_false(helper_msg_valid(&msg, sizeof(msg)));
    helper_msg_set_text(&msg, "12\0" "34", 5);   /* a NUL ends the text there */
    assert_int_equal(msg.text_len, 2);
    assert_true(helper_msg_valid(&msg, sizeof(msg)));
    msg.text_len = 5;
    assert_false(helper_msg_valid(&msg, sizeof(msg)));
}

static void test_required_fields_and_styles(void **state)
{
    (void)state;
    struct helper_msg msg = begin();
    msg.id = 0;
    assert_false(helper_msg_valid(&msg, sizeof(msg)));
    msg = begin();
    msg.user[0] = '\0';
    assert_false(helper_msg_valid(&msg, sizeof(msg)));
    msg = begin();
    msg.sha256[10] = '\0';
    assert_false(helper_msg_valid(&msg, sizeof(msg)));
    helper_msg_init(&msg, HELPER_MSG_PROMPT, 1);
    msg.style = AUTH_FRAME_RESULT;
    assert_false(helper_msg_valid(&msg, sizeof(msg)));
    helper_msg_init(&msg, HELPER_MSG_RESULT, 1);
    msg.style = AUTH_RESULT_LAST + 1;
    assert_false(helper_msg_valid(&msg, sizeof(msg)));
    helper_msg_init(&msg, HELPER_MSG_HANDSHAKE_FAILURE, 0);
    assert_false(helper_msg_valid(&msg, sizeof(msg)));
    strcpy(msg.tunnel, "vpn");
    strcpy(msg.source, "192.0.2.7");
    assert_true(helper_msg_valid(&msg, sizeof(msg)));
}

static void test_send_and_receive(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK, 0, fds), 0);
    struct helper_msg sent = begin(), got;
    assert_int_equal(helper_msg_send(fds[0], &sent), 0);
    assert_int_equal(helper_msg_recv(fds[1], &got), 1);
    assert_memory_equal(&sent, &got, sizeof(got));
    /* Nothing yet, then a datagram of the wrong size, then a malformed one. */
    assert_int_equal(helper_msg_recv(fds[1], &got), -1);
    assert_int_equal(errno, EAGAIN);
    char small[10] = "short";
    assert_int_equal(send(fds[0], small, sizeof(small), 0), (ssize_t)sizeof(small));
    assert_int_equal(helper_msg_recv(fds[1], &got), -1);
    assert_int_equal(errno, EBADMSG);
    static char big[sizeof(struct helper_msg) + 100];
    memcpy(big, &sent, sizeof(sent));
    assert_int_equal(send(fds[0], big, sizeof(big), 0), (ssize_t)sizeof(big));
    assert_int_equal(helper_msg_recv(fds[1], &got), -1);
    assert_int_equal(errno, EBADMSG);
    sent.type = 42;
    assert_int_equal(helper_msg_send(fds[0], &sent), 0);
    assert_int_equal(helper_msg_recv(fds[1], &got), -1);
    assert_int_equal(errno, EBADMSG);
    close(fds[0]);
    assert_int_equal(helper_msg_recv(fds[1], &got), 0);
    close(fds[1]);
}

static void test_wipe(void **state)
{
    (void)state;
    struct helper_msg msg;
    helper_msg_init(&msg, HELPER_MSG_ANSWER, 1);
    helper_msg_set_text(&msg, "123456", 6);
    helper_msg_wipe(&msg);
    static const struct helper_msg zero;
    assert_memory_equal(&msg, &zero, sizeof(msg));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_messages),
        cmocka_unit_test(test_wrong_size_or_type),
        cmocka_unit_test(test_unterminated_strings),
        cmocka_unit_test(test_text_length_checked),
        cmocka_unit_test(test_required_fields_and_styles),
        cmocka_unit_test(test_send_and_receive),
        cmocka_unit_test(test_wipe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
