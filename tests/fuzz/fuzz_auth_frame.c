/* fuzz_auth_frame — libFuzzer target for the login channel's frame parser
 * (auth_protocol_parse), read as a client stream and as a server stream.
 *
 * Beyond "does not crash" it checks what the parser promises: a frame never claims
 * more bytes than it was given or than the limits allow, its text stays inside the
 * frame, a parsed frame re-encodes to exactly the bytes it came from, and the
 * printable form of any text holds no control character.
 *
 *   make fuzz FUZZ_RUN=auth_frame
 * tests/unit/test_fuzz_corpus.c replays the corpus in `make check` without clang. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "proto/auth_protocol.h"

static void check_printable(const unsigned char *text, size_t len)
{
    char out[AUTH_TEXT_MAX * 4 + 1];
    for (int one_line = 0; one_line <= 1; one_line++) {
        auth_protocol_printable(text, len, one_line, out, sizeof(out));
        size_t shown = strlen(out);
        CHECK(shown < sizeof(out));
        for (size_t i = 0; i < shown; i++) {
            unsigned char c = (unsigned char)out[i];
            CHECK(c != 0x7f);
            CHECK(c >= 0x20 || (!one_line && (c == '\n' || c == '\t')));
        }
    }
    char tiny[4];
    auth_protocol_printable(text, len, 1, tiny, sizeof(tiny));
    CHECK(strlen(tiny) < sizeof(tiny));
}

static void check_reencodes(const uint8_t *frame_bytes, size_t used, const struct auth_frame *f)
{
    unsigned char out[AUTH_FRAME_MAX];
    size_t len;
    if (f->type == AUTH_FRAME_RESULT) {
        char text[AUTH_TEXT_MAX + 1];
        memcpy(text, f->text, f->text_len);
        text[f->text_len] = '\0';
        len = auth_protocol_encode_result(f->status, f->value, f->attempts_left, text, out,
                                          sizeof(out));
    } else {
        len = auth_protocol_encode(f->type, f->text, f->text_len, out, sizeof(out));
    }
    CHECK(len == used);
    CHECK(memcmp(out, frame_bytes, used) == 0);
}

static void parse_stream(const uint8_t *data, size_t size, enum auth_sender sender)
{
    size_t offset = 0;
    while (offset < size) {
        struct auth_frame frame;
        size_t used = 0;
        enum auth_parse_status status =
            auth_protocol_parse(data + offset, size - offset, sender, &frame, &used);
        CHECK(status >= AUTH_PARSE_OK && status <= AUTH_PARSE_BAD_PAYLOAD);
        CHECK(auth_protocol_parse_error(status) != NULL);
        if (status != AUTH_PARSE_OK)
            return;
        CHECK(used >= AUTH_FRAME_HEADER_LEN && used <= AUTH_FRAME_MAX && used <= size - offset);
        CHECK(frame.text_len <= AUTH_TEXT_MAX);
        if (frame.text_len > 0) {
            CHECK(frame.text >= data + offset + AUTH_FRAME_HEADER_LEN);
            CHECK(frame.text + frame.text_len <= data + offset + used);
            CHECK(memchr(frame.text, '\0', frame.text_len) == NULL);
        }
        if (sender == AUTH_FROM_CLIENT)
            CHECK(frame.type == AUTH_FRAME_START || frame.type == AUTH_FRAME_ANSWER);
        else
            CHECK(frame.type != AUTH_FRAME_START && frame.type != AUTH_FRAME_ANSWER);
        if (frame.type == AUTH_FRAME_RESULT)
            CHECK((unsigned)frame.status <= AUTH_RESULT_LAST && frame.attempts_left <= 255);
        check_reencodes(data + offset, used, &frame);
        check_printable(frame.text, frame.text_len);
        offset += used;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    parse_stream(data, size, AUTH_FROM_CLIENT);
    parse_stream(data, size, AUTH_FROM_SERVER);
    check_printable(data, size < AUTH_TEXT_MAX ? size : AUTH_TEXT_MAX);
    return 0;
}

#ifdef FUZZ_REPLAY
/* For the replay in make check: frames built from random bytes with headers that are
 * often valid, so the parser's deeper paths run too. X is the xorshift state. */
#define FUZZ_REPLAY_GENERATE generate_stream
static size_t generate_stream(uint64_t *x, uint8_t *buf, size_t cap)
{
    static const unsigned char types[] = { 0x01, 0x02, 0x11, 0x12, 0x13, 0x14, 0x20, 0x00, 0xff };
    if (cap > 3 * AUTH_FRAME_MAX)
        cap = 3 * AUTH_FRAME_MAX;
    size_t len = 0;
    while (len + AUTH_FRAME_HEADER_LEN < cap) {
        *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
        size_t payload = (size_t)(*x % 40 == 0 ? (*x >> 8) % 1100 : (*x >> 8) % 24);
        if (len + AUTH_FRAME_HEADER_LEN + payload > cap)
            break;
        buf[len] = types[(*x >> 20) % sizeof(types)];
        buf[len + 1] = (unsigned char)(payload >> 8);
        buf[len + 2] = (unsigned char)payload;
        for (size_t i = 0; i < payload; i++) {
            *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
            buf[len + AUTH_FRAME_HEADER_LEN + i] = (unsigned char)(*x % 7 == 0 ? *x >> 24 : 'a' + *x % 26);
        }
        len += AUTH_FRAME_HEADER_LEN + payload;
        if (*x % 5 == 0)
            break;
    }
    return len;
}
#endif
