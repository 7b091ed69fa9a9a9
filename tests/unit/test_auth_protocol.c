/* auth_protocol: the login channel's frames, both directions, and their limits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "proto/auth_protocol.h"

static enum auth_parse_status parse(const void *bytes, size_t len, enum auth_sender sender,
                                    struct auth_frame *frame, size_t *consumed)
{
    return auth_protocol_parse(bytes, len, sender, frame, consumed);
}

static void test_start_and_answer_round_trip(void **state)
{
    (void)state;
    unsigned char buf[64];
    struct auth_frame frame;
    size_t consumed = 0;

    size_t len = auth_protocol_encode(AUTH_FRAME_START, NULL, 0, buf, sizeof(buf));
    assert_int_equal(len, 3);
    assert_memory_equal(buf, "\x01\x00\x00", 3);
    assert_int_equal(parse(buf, len, AUTH_FROM_CLIENT, &frame, &consumed), AUTH_PARSE_OK);
    assert_int_equal(frame.type, AUTH_FRAME_START);
    assert_int_equal(consumed, 3);

    len = auth_protocol_encode(AUTH_FRAME_ANSWER, "123456", 6, buf, sizeof(buf));
    assert_int_equal(len, 9);
    assert_memory_equal(buf, "\x02\x00\x06" "123456", 9);
    assert_int_equal(parse(buf, len, AUTH_FROM_CLIENT, &frame, &consumed), AUTH_PARSE_OK);
    assert_int_equal(frame.type, AUTH_FRAME_ANSWER);
    assert_int_equal(frame.text_len, 6);
    assert_memory_equal(frame.text, "123456", 6);
    assert_int_equal(consumed, 9);
}

static void test_server_frames_round_trip(void **state)
{
    (void)state;
    static const enum auth_frame_type types[] = { AUTH_FRAME_PROMPT_ECHO_OFF,
                                                  AUTH_FRAME_PROMPT_ECHO_ON, AUTH_FRAME_INFO,
                                                  AUTH_FRAME_ERROR };
    unsigned char buf[64];
    for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        struct auth_frame frame;
        size_t consumed = 0;
        size_t len = auth_protocol_encode(types[i], "Code: ", 6, buf, sizeof(buf));
        assert_int_equal(len, 9);
        assert_int_equal(parse(buf, len, AUTH_FROM_SERVER, &frame, &consumed), AUTH_PARSE_OK);
        assert_int_equal(frame.type, types[i]);
        assert_memory_equal(frame.text, "Code: ", 6);
        /* A client never sends these: the server side refuses them at once. */
        assert_int_equal(parse(buf, len, AUTH_FROM_CLIENT, &frame, &consumed), AUTH_PARSE_BAD_TYPE);
    }
}

static void test_result_fields(void **state)
{
    (void)state;
    unsigned char buf[AUTH_FRAME_MAX];
    struct auth_frame frame;
    size_t consumed = 0;
    size_t len = auth_protocol_encode_result(AUTH_RESULT_LOCKED, 0x0102030405060708ull, 2,
                                             "too many failed attempts", buf, sizeof(buf));
    assert_int_equal(len, 3 + 10 + 24);
    assert_memory_equal(buf, "\x20\x00\x22\x02\x01\x02\x03\x04\x05\x06\x07\x08\x02", 13);
    assert_int_equal(parse(buf, len, AUTH_FROM_SERVER, &frame, &consumed), AUTH_PARSE_OK);
    assert_int_equal(frame.status, AUTH_RESULT_LOCKED);
    assert_true(frame.value == 0x0102030405060708ull);
    assert_int_equal(frame.attempts_left, 2);
    assert_int_equal(frame.text_len, 24);
    assert_memory_equal(frame.text, "too many failed attempts", 24);
    assert_int_equal(parse(buf, len, AUTH_FROM_CLIENT, &frame, &consumed), AUTH_PARSE_BAD_TYPE);
}

static void test_result_limits(void **state)
{
    (void)state;
    unsigned char buf[AUTH_FRAME_MAX];
    struct auth_frame frame;
    size_t consumed;
    /* Too short for its fixed part, an unknown status. */
    assert_int_equal(parse("\x20\x00\x09" "012345678", 12, AUTH_FROM_SERVER, &frame, &consumed),
                     AUTH_PARSE_BAD_PAYLOAD);
    assert_int_equal(parse("\x20\x00\x0a\x08" "012345678", 13, AUTH_FROM_SERVER, &frame, &consumed),
                     AUTH_PARSE_BAD_PAYLOAD);
    /* A long text is cut at the maximum, never past it. */
    char long_text[AUTH_TEXT_MAX + 100];
    memset(long_text, 'x', sizeof(long_text) - 1);
    long_text[sizeof(long_text) - 1] = '\0';
    size_t len = auth_protocol_encode_result(AUTH_RESULT_DENIED, 0, 300, long_text, buf, sizeof(buf));
    assert_int_equal(len, 3 + 10 + AUTH_TEXT_MAX);
    assert_int_equal(parse(buf, len, AUTH_FROM_SERVER, &frame, &consumed), AUTH_PARSE_OK);
    assert_int_equal(frame.text_len, AUTH_TEXT_MAX);
    assert_int_equal(frame.attempts_left, 255);
    assert_int_equal(auth_protocol_encode_result(AUTH_RESULT_DENIED, 0, 0, "x", buf, 12), 0);
}

static void test_partial_frames_need_more(void **state)
{
    (void)state;
    const unsigned char frame_bytes[] = "\x02\x00\x06" "123456";
    struct auth_frame frame = { .type = 0 };
    size_t consumed = 77;
    for (size_t cut = 0; cut < 9; cut++) {
        assert_int_equal(parse(frame_bytes, cut, AUTH_FROM_CLIENT, &frame, &consumed),
                         AUTH_PARSE_NEED_MORE);
        assert_int_equal(consumed, 77);
    }
    /* A bad type is judged on its first byte, before any length arrives. */
    assert_int_equal(parse("G", 1, AUTH_FROM_CLIENT, &frame, &consumed), AUTH_PARSE_BAD_TYPE);
}

static void test_size_limits(void **state)
{
    (void)state;
    struct auth_frame frame;
    size_t consumed;
    /* The header alone says "too large": no need to wait for 64 KiB. */
    assert_int_equal(parse("\x02\xff\xff", 3, AUTH_FROM_CLIENT, &frame, &consumed),
                     AUTH_PARSE_TOO_LARGE);
    assert_int_equal(parse("\x01\x04\x01", 3, AUTH_FROM_CLIENT, &frame, &consumed),
                     AUTH_PARSE_TOO_LARGE);
    /* The largest frame is fine as a frame, but an answer that long is malformed. */
    static unsigned char big[AUTH_FRAME_MAX];
    memset(big, 'a', sizeof(big));
    big[0] = AUTH_FRAME_ANSWER;
    big[1] = AUTH_FRAME_MAX_PAYLOAD >> 8;
    big[2] = AUTH_FRAME_MAX_PAYLOAD & 0xff;
    assert_int_equal(parse(big, sizeof(big), AUTH_FROM_CLIENT, &frame, &consumed),
                     AUTH_PARSE_BAD_PAYLOAD);
    big[1] = AUTH_TEXT_MAX >> 8;
    big[2] = AUTH_TEXT_MAX & 0xff;
    assert_int_equal(parse(big, 3 + AUTH_TEXT_MAX, AUTH_FROM_CLIENT, &frame, &consumed),
                     AUTH_PARSE_OK);
    assert_int_equal(frame.text_len, AUTH_TEXT_MAX);
}

static void test_malformed_payloads(void **state)
{
    (void)state;
    struct auth_frame frame;
    size_t consumed;
    assert_int_equal(parse("\x01\x00\x01x", 4, AUTH_FROM_CLIENT, &frame, &consumed),
                     AUTH_PARSE_BAD_PAYLOAD);
    assert_int_equal(parse("\x02\x00\x03" "a\0b", 6, AUTH_FROM_CLIENT, &frame, &consumed),
                     AUTH_PARSE_BAD_PAYLOAD);
    assert_int_equal(parse("\x11\x00\x01\0", 4, AUTH_FROM_SERVER, &frame, &consumed),
                     AUTH_PARSE_BAD_PAYLOAD);
    assert_int_equal(parse("\x00\x00\x00", 3, AUTH_FROM_SERVER, &frame, &consumed),
                     AUTH_PARSE_BAD_TYPE);
    assert_int_equal(parse("\x01\x00\x00", 3, AUTH_FROM_SERVER, &frame, &consumed),
                     AUTH_PARSE_BAD_TYPE);
    assert_string_equal(auth_protocol_parse_error(AUTH_PARSE_TOO_LARGE), "frame too large");
    assert_string_equal(auth_protocol_parse_error(AUTH_PARSE_BAD_TYPE), "unexpected frame type");
    assert_string_equal(auth_protocol_parse_error(AUTH_PARSE_BAD_PAYLOAD), "malformed frame");
}

static void test_encode_refuses_what_parse_would_refuse(void **state)
{
    (void)state;
    unsigned char buf[AUTH_FRAME_MAX];
    char text[AUTH_TEXT_MAX + 1];
    memset(text, 'a', sizeof(text));
    assert_int_equal(auth_protocol_encode(AUTH_FRAME_ANSWER, text, sizeof(text), buf, sizeof(buf)), 0);
    assert_int_equal(auth_protocol_encode(AUTH_FRAME_ANSWER, "a\0b", 3, buf, sizeof(buf)), 0);
    assert_int_equal(auth_protocol_encode(AUTH_FRAME_START, "x", 1, buf, sizeof(buf)), 0);
    assert_int_equal(auth_protocol_encode(AUTH_FRAME_RESULT, "x", 1, buf, sizeof(buf)), 0);
    assert_int_equal(auth_protocol_encode((enum auth_frame_type)0x7f, "x", 1, buf, sizeof(buf)), 0);
    assert_int_equal(auth_protocol_encode(AUTH_FRAME_ANSWER, "123456", 6, buf, 8), 0);
}

static void test_several_frames_in_one_buffer(void **state)
{
    (void)state;
    const unsigned char stream[] = "\x01\x00\x00\x02\x00\x02" "42\x01\x00";
    struct auth_frame frame;
    size_t consumed, offset = 0;
    assert_int_equal(parse(stream, 10, AUTH_FROM_CLIENT, &frame, &consumed), AUTH_PARSE_OK);
    assert_int_equal(frame.type, AUTH_FRAME_START);
    offset += consumed;
    assert_int_equal(parse(stream + offset, 10 - offset, AUTH_FROM_CLIENT, &frame, &consumed),
                     AUTH_PARSE_OK);
    assert_int_equal(frame.type, AUTH_FRAME_ANSWER);
    assert_memory_equal(frame.text, "42", 2);
    offset += consumed;
    assert_int_equal(parse(stream + offset, 10 - offset, AUTH_FROM_CLIENT, &frame, &consumed),
                     AUTH_PARSE_NEED_MORE);
}

static void test_printable_neutralises_terminal_controls(void **state)
{
    (void)state;
    char out[128];
    const char *evil = "\x1b]0;pwned\x07" "Code:\r\n\tnext \x7f";
    assert_string_equal(auth_protocol_printable((const unsigned char *)evil, strlen(evil), 0, out,
                                                sizeof(out)),
                        "?]0;pwned?Code:?\n\tnext ?");
    assert_string_equal(auth_protocol_printable((const unsigned char *)evil, strlen(evil), 1, out,
                                                sizeof(out)),
                        "?]0;pwned?Code:???next ?");
    /* UTF-8 stays; C1 controls (CSI as U+009B), overlongs, surrogates and strays go. */
    const char *text = "caf\xc3\xa9 \xc2\x9b \xc0\xaf \xed\xa0\x80 \x9b \xf0\x9f\x94\x91";
    assert_string_equal(auth_protocol_printable((const unsigned char *)text, strlen(text), 1, out,
                                                sizeof(out)),
                        "caf\xc3\xa9 ?? ?? ??? ? \xf0\x9f\x94\x91");
    /* Never past the buffer, never a split sequence. */
    assert_string_equal(auth_protocol_printable((const unsigned char *)"ab\xc3\xa9", 4, 1, out, 4),
                        "ab?");
    assert_string_equal(auth_protocol_printable((const unsigned char *)"abc", 3, 1, out, 1), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_start_and_answer_round_trip),
        cmocka_unit_test(test_server_frames_round_trip),
        cmocka_unit_test(test_result_fields),
        cmocka_unit_test(test_result_limits),
        cmocka_unit_test(test_partial_frames_need_more),
        cmocka_unit_test(test_size_limits),
        cmocka_unit_test(test_malformed_payloads),
        cmocka_unit_test(test_encode_refuses_what_parse_would_refuse),
        cmocka_unit_test(test_several_frames_in_one_buffer),
        cmocka_unit_test(test_printable_neutralises_terminal_controls),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
