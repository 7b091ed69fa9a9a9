/* post_handshake: the messages read from a handshake record after the handshake,
 * one at a time, never past the bytes given. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ktls/post_handshake.h"
#include "ktls/tls_record.h"

/* Parses LEN bytes from a heap copy, so ASan sees any read past them. */
static enum post_handshake_kind parse(const unsigned char *bytes, size_t len,
                                      struct post_handshake_message *msg)
{
    unsigned char *copy = malloc(len > 0 ? len : 1);
    assert_non_null(copy);
    if (len > 0)
        memcpy(copy, bytes, len);
    enum post_handshake_kind kind = post_handshake_parse(copy, len, msg);
    free(copy);
    assert_int_equal(kind, msg->kind);
    return kind;
}

static void test_tickets(void **state)
{
    (void)state;
    struct post_handshake_message msg;
    static const unsigned char two_tickets[] = {
        TLS_HANDSHAKE_NEW_SESSION_TICKET, 0, 0, 3, 'a', 'b', 'c',
        TLS_HANDSHAKE_NEW_SESSION_TICKET, 0, 0, 0,
    };
    assert_int_equal(parse(two_tickets, sizeof(two_tickets), &msg), POST_HANDSHAKE_TICKET);
    assert_int_equal(msg.type, TLS_HANDSHAKE_NEW_SESSION_TICKET);
    assert_int_equal(msg.length, 7);
    assert_int_equal(parse(two_tickets + 7, 4, &msg), POST_HANDSHAKE_TICKET);
    assert_int_equal(msg.length, 4);
}

static void test_key_update(void **state)
{
    (void)state;
    struct post_handshake_message msg;
    unsigned char key_update[] = { TLS_HANDSHAKE_KEY_UPDATE, 0, 0, 1, 0 };
    assert_int_equal(parse(key_update, sizeof(key_update), &msg), POST_HANDSHAKE_KEY_UPDATE);
    assert_int_equal(msg.length, 5);
    assert_false(msg.update_requested);
    key_update[4] = 1;
    assert_int_equal(parse(key_update, sizeof(key_update), &msg), POST_HANDSHAKE_KEY_UPDATE);
    assert_true(msg.update_requested);
    /* Only 1 is update_requested. */
    key_update[4] = 2;
    assert_int_equal(parse(key_update, sizeof(key_update), &msg), POST_HANDSHAKE_KEY_UPDATE);
    assert_false(msg.update_requested);
}

static void test_malformed_key_update(void **state)
{
    (void)state;
    struct post_handshake_message msg;
    static const unsigned char empty[] = { TLS_HANDSHAKE_KEY_UPDATE, 0, 0, 0 };
    static const unsigned char two_bytes[] = { TLS_HANDSHAKE_KEY_UPDATE, 0, 0, 2, 1, 1 };
    assert_int_equal(parse(empty, sizeof(empty), &msg), POST_HANDSHAKE_MALFORMED);
    assert_int_equal(msg.length, 4);
    assert_false(msg.update_requested);
    assert_int_equal(parse(two_bytes, sizeof(two_bytes), &msg), POST_HANDSHAKE_MALFORMED);
    assert_int_equal(msg.length, 6);
    assert_false(msg.update_requested);
}

static void test_incomplete(void **state)
{
    (void)state;
    struct post_handshake_message msg;
    static const unsigned char ticket[] = { TLS_HANDSHAKE_NEW_SESSION_TICKET, 0, 1, 0, 'x' };
    static const unsigned char huge[] = { TLS_HANDSHAKE_KEY_UPDATE, 0xff, 0xff, 0xff, 1 };
    /* The header cut short. */
    for (size_t len = 0; len < POST_HANDSHAKE_HEADER_LEN; len++) {
        assert_int_equal(parse(ticket, len, &msg), POST_HANDSHAKE_INCOMPLETE);
        assert_int_equal(msg.length, POST_HANDSHAKE_HEADER_LEN);
        assert_int_equal(msg.type, 0);
    }
    /* The body cut short: what the whole message needs. */
    assert_int_equal(parse(ticket, sizeof(ticket), &msg), POST_HANDSHAKE_INCOMPLETE);
    assert_int_equal(msg.type, TLS_HANDSHAKE_NEW_SESSION_TICKET);
    assert_int_equal(msg.length, 4 + 256);
    /* A KeyUpdate claiming 16 MiB is incomplete before it is malformed. */
    assert_int_equal(parse(huge, sizeof(huge), &msg), POST_HANDSHAKE_INCOMPLETE);
    assert_int_equal(msg.length, 4 + 0xffffff);
}

static void test_unexpected_types(void **state)
{
    (void)state;
    struct post_handshake_message msg;
    /* HelloRequest, ClientHello, ServerHello, Certificate, Finished, 255 */
    static const unsigned types[] = { 0, 1, 2, 11, 20, 255 };
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        const unsigned char message[] = { (unsigned char)types[i], 0, 0, 1, 0 };
        assert_int_equal(parse(message, sizeof(message), &msg), POST_HANDSHAKE_UNEXPECTED);
        assert_int_equal(msg.type, types[i]);
        assert_int_equal(msg.length, 5);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tickets),
        cmocka_unit_test(test_key_update),
        cmocka_unit_test(test_malformed_key_update),
        cmocka_unit_test(test_incomplete),
        cmocka_unit_test(test_unexpected_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
