/* fuzz_post_handshake — libFuzzer target for the messages read from a handshake
 * record after the handshake (post_handshake_parse), walked one message at a time
 * the way relay_splice walks a record the kernel hands over.
 *
 * Checked: the parser reads nothing past the bytes given, a message it returns whole
 * lies inside them and is as long as its header says, INCOMPLETE means exactly that
 * the bytes run out first, and only a one-byte KeyUpdate is a KeyUpdate. Then the
 * same bytes go to post_handshake_feed cut into records (the first byte picks the
 * cut length): every message it hands on is whole, within the bound, and the same
 * bytes, in order, as the walk over the uncut input found.
 *
 *   make fuzz FUZZ_RUN=post_handshake
 * tests/unit/test_fuzz_corpus.c replays the corpus in `make check` without clang. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "ktls/post_handshake.h"
#include "ktls/tls_record.h"

/* Checks the message at DATA (LEN bytes). Returns its length, or 0 when the walk
 * stops there. */
static size_t check_message(const uint8_t *data, size_t len)
{
    struct post_handshake_message msg;
    enum post_handshake_kind kind = post_handshake_parse(data, len, &msg);
    CHECK(kind == msg.kind);
    CHECK(msg.kind == POST_HANDSHAKE_KEY_UPDATE || !msg.update_requested);
    if (len < POST_HANDSHAKE_HEADER_LEN) {
        CHECK(kind == POST_HANDSHAKE_INCOMPLETE && msg.length == POST_HANDSHAKE_HEADER_LEN &&
              msg.type == 0);
        return 0;
    }
    size_t body = ((size_t)data[1] << 16) | ((size_t)data[2] << 8) | data[3];
    CHECK(msg.type == data[0] && msg.length == POST_HANDSHAKE_HEADER_LEN + body);
    if (msg.length > len) {
        CHECK(kind == POST_HANDSHAKE_INCOMPLETE);
        return 0;
    }
    switch (kind) {
    case POST_HANDSHAKE_TICKET:
        CHECK(msg.type == TLS_HANDSHAKE_NEW_SESSION_TICKET);
        return msg.length;
    case POST_HANDSHAKE_KEY_UPDATE:
        CHECK(msg.type == TLS_HANDSHAKE_KEY_UPDATE && body == 1);
        CHECK(msg.update_requested == (data[POST_HANDSHAKE_HEADER_LEN] == 1));
        return msg.length;
    case POST_HANDSHAKE_MALFORMED:
        CHECK(msg.type == TLS_HANDSHAKE_KEY_UPDATE && body != 1);
        return 0;
    case POST_HANDSHAKE_UNEXPECTED:
        CHECK(msg.type != TLS_HANDSHAKE_KEY_UPDATE &&
              msg.type != TLS_HANDSHAKE_NEW_SESSION_TICKET);
        return 0;
    case POST_HANDSHAKE_INCOMPLETE:
        break;
    }
    CHECK(0);
    return 0;
}

/* What the walk over the uncut input expects the feed to hand on next. */
struct expected {
    const uint8_t *data;
    size_t size;
    size_t pos;
};

static int compare_message(void *ctx, const unsigned char *message,
                           const struct post_handshake_message *msg)
{
    struct expected *expected = ctx;
    CHECK(msg->length >= POST_HANDSHAKE_HEADER_LEN && msg->length <= POST_HANDSHAKE_MAX_MESSAGE);
    CHECK(msg->length <= expected->size - expected->pos);
    CHECK(memcmp(message, expected->data + expected->pos, msg->length) == 0);
    expected->pos += msg->length;
    /* The relay stops at anything but a ticket or a KeyUpdate. */
    return msg->kind != POST_HANDSHAKE_TICKET && msg->kind != POST_HANDSHAKE_KEY_UPDATE;
}

static void check_feed(const uint8_t *data, size_t size)
{
    if (size < 1)
        return;
    size_t cut = (size_t)data[0] + 1;
    struct expected expected = { data + 1, size - 1, 0 };
    struct post_handshake_buffer buffer = { NULL, 0 };
    for (size_t pos = 1; pos < size; pos += cut) {
        size_t len = size - pos < cut ? size - pos : cut;
        if (post_handshake_feed(&buffer, data + pos, len, compare_message, &expected)
            != POST_HANDSHAKE_FED)
            break;
    }
    post_handshake_buffer_free(&buffer);
    CHECK(buffer.bytes == NULL && buffer.len == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t pos = 0;
    for (;;) {
        size_t used = check_message(data + pos, size - pos);
        if (used == 0)
            break;
        CHECK(used >= POST_HANDSHAKE_HEADER_LEN && used <= size - pos);
        pos += used;
    }
    check_feed(data, size);
    return 0;
}
