/* post_handshake: the messages read from a handshake record after the handshake,
 * one at a time, never past the bytes given; and messages split across records,
 * joined in a bounded buffer. */
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

/* What post_handshake_feed handed on: each message's kind and bytes, in order. */
struct seen {
    size_t count;
    enum post_handshake_kind kinds[8];
    size_t lengths[8];
    unsigned char bytes[8][POST_HANDSHAKE_MAX_MESSAGE];
    size_t stop_at;             /* stop (non-zero) at this call, 0 = never */
};

static int remember(void *ctx, const unsigned char *data, const struct post_handshake_message *msg)
{
    struct seen *seen = ctx;
    assert_true(seen->count < 8);
    seen->kinds[seen->count] = msg->kind;
    seen->lengths[seen->count] = msg->length;
    memcpy(seen->bytes[seen->count], data, msg->length);
    seen->count++;
    return seen->stop_at != 0 && seen->count == seen->stop_at;
}

/* Feeds LEN bytes from a heap copy, so ASan sees any read past them. */
static enum post_handshake_feed_result feed(struct post_handshake_buffer *buffer,
                                            const unsigned char *bytes, size_t len,
                                            struct seen *seen)
{
    unsigned char *copy = malloc(len > 0 ? len : 1);
    assert_non_null(copy);
    if (len > 0)
        memcpy(copy, bytes, len);
    enum post_handshake_feed_result result = post_handshake_feed(buffer, copy, len, remember, seen);
    free(copy);
    return result;
}

static void test_feed_whole_records(void **state)
{
    (void)state;
    static struct seen seen;
    struct post_handshake_buffer buffer = { NULL, 0 };
    static const unsigned char record[] = {
        TLS_HANDSHAKE_NEW_SESSION_TICKET, 0, 0, 3, 'a', 'b', 'c',
        TLS_HANDSHAKE_KEY_UPDATE, 0, 0, 1, 1,
    };
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(feed(&buffer, record, sizeof(record), &seen), POST_HANDSHAKE_FED);
    assert_int_equal(seen.count, 2);
    assert_int_equal(seen.kinds[0], POST_HANDSHAKE_TICKET);
    assert_int_equal(seen.lengths[0], 7);
    assert_memory_equal(seen.bytes[0], record, 7);
    assert_int_equal(seen.kinds[1], POST_HANDSHAKE_KEY_UPDATE);
    assert_memory_equal(seen.bytes[1], record + 7, 5);
    assert_false(post_handshake_buffer_pending(&buffer));
    assert_null(buffer.bytes);
}

/* A ticket cut at every possible pair of places, three records each, then a KeyUpdate
 * in the last record: the same two messages every time. */
static void test_feed_split_everywhere(void **state)
{
    (void)state;
    static struct seen seen;
    unsigned char stream[300];
    size_t ticket_len = 290;
    stream[0] = TLS_HANDSHAKE_NEW_SESSION_TICKET;
    stream[1] = 0;
    stream[2] = (unsigned char)((ticket_len - 4) >> 8);
    stream[3] = (unsigned char)(ticket_len - 4);
    for (size_t i = 4; i < ticket_len; i++)
        stream[i] = (unsigned char)i;
    static const unsigned char key_update[] = { TLS_HANDSHAKE_KEY_UPDATE, 0, 0, 1, 0 };
    memcpy(stream + ticket_len, key_update, sizeof(key_update));
    size_t total = ticket_len + sizeof(key_update);
    for (size_t a = 1; a < ticket_len; a += 7) {
        for (size_t b = a + 1; b < ticket_len; b += 13) {
            struct post_handshake_buffer buffer = { NULL, 0 };
            memset(&seen, 0, sizeof(seen));
            assert_int_equal(feed(&buffer, stream, a, &seen), POST_HANDSHAKE_FED);
            assert_true(post_handshake_buffer_pending(&buffer));
            assert_int_equal(feed(&buffer, stream + a, b - a, &seen), POST_HANDSHAKE_FED);
            assert_int_equal(seen.count, 0);
            assert_int_equal(feed(&buffer, stream + b, total - b, &seen), POST_HANDSHAKE_FED);
            assert_int_equal(seen.count, 2);
            assert_int_equal(seen.kinds[0], POST_HANDSHAKE_TICKET);
            assert_int_equal(seen.lengths[0], ticket_len);
            assert_memory_equal(seen.bytes[0], stream, ticket_len);
            assert_int_equal(seen.kinds[1], POST_HANDSHAKE_KEY_UPDATE);
            assert_false(post_handshake_buffer_pending(&buffer));
            assert_null(buffer.bytes);
        }
    }
}

static void test_feed_one_byte_records(void **state)
{
    (void)state;
    static struct seen seen;
    struct post_handshake_buffer buffer = { NULL, 0 };
    static const unsigned char stream[] = {
        TLS_HANDSHAKE_NEW_SESSION_TICKET, 0, 0, 2, 'x', 'y',
        TLS_HANDSHAKE_NEW_SESSION_TICKET, 0, 0, 0,
        TLS_HANDSHAKE_KEY_UPDATE, 0, 0, 1, 1,
    };
    memset(&seen, 0, sizeof(seen));
    for (size_t i = 0; i < sizeof(stream); i++)
        assert_int_equal(feed(&buffer, stream + i, 1, &seen), POST_HANDSHAKE_FED);
    assert_int_equal(seen.count, 3);
    assert_int_equal(seen.lengths[0], 6);
    assert_int_equal(seen.lengths[1], 4);
    assert_int_equal(seen.kinds[2], POST_HANDSHAKE_KEY_UPDATE);
    assert_false(post_handshake_buffer_pending(&buffer));
}

static void test_feed_bound(void **state)
{
    (void)state;
    static struct seen seen;
    static unsigned char big[POST_HANDSHAKE_MAX_MESSAGE + 1];
    size_t body = POST_HANDSHAKE_MAX_MESSAGE - POST_HANDSHAKE_HEADER_LEN;
    struct post_handshake_buffer buffer = { NULL, 0 };

    /* Exactly the bound, in two records: joined. */
    memset(big, 'z', sizeof(big));
    big[0] = TLS_HANDSHAKE_NEW_SESSION_TICKET;
    big[1] = (unsigned char)(body >> 16);
    big[2] = (unsigned char)(body >> 8);
    big[3] = (unsigned char)body;
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(feed(&buffer, big, 1000, &seen), POST_HANDSHAKE_FED);
    assert_int_equal(feed(&buffer, big + 1000, POST_HANDSHAKE_MAX_MESSAGE - 1000, &seen),
                     POST_HANDSHAKE_FED);
    assert_int_equal(seen.count, 1);
    assert_int_equal(seen.lengths[0], POST_HANDSHAKE_MAX_MESSAGE);

    /* One byte more, whether the header comes whole or split: refused. */
    body++;
    big[2] = (unsigned char)(body >> 8);
    big[3] = (unsigned char)body;
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(feed(&buffer, big, 100, &seen), POST_HANDSHAKE_OVERSIZE);
    post_handshake_buffer_free(&buffer);
    assert_int_equal(feed(&buffer, big, 2, &seen), POST_HANDSHAKE_FED);
    assert_int_equal(feed(&buffer, big + 2, 100, &seen), POST_HANDSHAKE_OVERSIZE);
    assert_int_equal(seen.count, 0);
    post_handshake_buffer_free(&buffer);
    assert_null(buffer.bytes);
    assert_false(post_handshake_buffer_pending(&buffer));
}

static void test_feed_key_update_ends_record(void **state)
{
    (void)state;
    static struct seen seen;
    struct post_handshake_buffer buffer = { NULL, 0 };
    static const unsigned char record[] = {
        TLS_HANDSHAKE_KEY_UPDATE, 0, 0, 1, 0,
        TLS_HANDSHAKE_NEW_SESSION_TICKET, 0, 0, 0,
    };
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(feed(&buffer, record, sizeof(record), &seen), POST_HANDSHAKE_UNALIGNED);
    assert_int_equal(seen.count, 1);
    /* The same when the KeyUpdate was completed from the buffer. */
    memset(&seen, 0, sizeof(seen));
    assert_int_equal(feed(&buffer, record, 2, &seen), POST_HANDSHAKE_FED);
    assert_int_equal(feed(&buffer, record + 2, sizeof(record) - 2, &seen), POST_HANDSHAKE_UNALIGNED);
    assert_int_equal(seen.count, 1);
    post_handshake_buffer_free(&buffer);
}

static void test_feed_handler_stops(void **state)
{
    (void)state;
    static struct seen seen;
    struct post_handshake_buffer buffer = { NULL, 0 };
    static const unsigned char record[] = {
        TLS_HANDSHAKE_NEW_SESSION_TICKET, 0, 0, 0,
        2, 0, 0, 1, 0,
        TLS_HANDSHAKE_NEW_SESSION_TICKET, 0, 0, 0,
    };
    memset(&seen, 0, sizeof(seen));
    seen.stop_at = 2;
    assert_int_equal(feed(&buffer, record, sizeof(record), &seen), POST_HANDSHAKE_STOPPED);
    assert_int_equal(seen.count, 2);
    assert_int_equal(seen.kinds[1], POST_HANDSHAKE_UNEXPECTED);
    post_handshake_buffer_free(&buffer);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tickets),
        cmocka_unit_test(test_key_update),
        cmocka_unit_test(test_malformed_key_update),
        cmocka_unit_test(test_incomplete),
        cmocka_unit_test(test_unexpected_types),
        cmocka_unit_test(test_feed_whole_records),
        cmocka_unit_test(test_feed_split_everywhere),
        cmocka_unit_test(test_feed_one_byte_records),
        cmocka_unit_test(test_feed_bound),
        cmocka_unit_test(test_feed_key_update_ends_record),
        cmocka_unit_test(test_feed_handler_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
