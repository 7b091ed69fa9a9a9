#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/text.h"

static void test_hex_decode(void **state)
{
    static const unsigned char expected[] = { 0x00, 0xff, 0x10, 0xab, 0x9c };
    unsigned char out[8];
    (void)state;

    assert_int_equal(text_hex_decode("00ff10Ab9C", 10, out, sizeof(out)), 5);
    assert_memory_equal(out, expected, sizeof(expected));
    /* Only HEX_LEN digits count: what follows is not read. */
    assert_int_equal(text_hex_decode("00ffzz", 4, out, sizeof(out)), 2);
    assert_memory_equal(out, expected, 2);
    /* Exactly full. */
    assert_int_equal(text_hex_decode("0001020304050607", 16, out, sizeof(out)), 8);
    assert_int_equal(out[7], 7);
}

static void test_hex_decode_rejects(void **state)
{
    unsigned char out[4];
    (void)state;

    assert_int_equal(text_hex_decode("", 0, out, sizeof(out)), -1);
    assert_int_equal(text_hex_decode("abc", 3, out, sizeof(out)), -1);         /* odd */
    assert_int_equal(text_hex_decode("0011223344", 10, out, sizeof(out)), -1); /* too long */
    assert_int_equal(text_hex_decode("0g", 2, out, sizeof(out)), -1);
    assert_int_equal(text_hex_decode("g0", 2, out, sizeof(out)), -1);
    assert_int_equal(text_hex_decode("0:", 2, out, sizeof(out)), -1);
    assert_int_equal(text_hex_decode(" 0", 2, out, sizeof(out)), -1);
    assert_int_equal(text_hex_decode("+1", 2, out, sizeof(out)), -1);
}

static void test_hex_encode(void **state)
{
    static const unsigned char bytes[] = { 0x00, 0xff, 0x10, 0xab, 0x9c };
    char out[2 * sizeof(bytes) + 1];
    (void)state;

    memset(out, 'x', sizeof(out));
    text_hex_encode(bytes, sizeof(bytes), out);
    assert_string_equal(out, "00ff10ab9c");
    text_hex_encode(bytes, 0, out);
    assert_string_equal(out, "");
}

static void test_hex_round_trip(void **state)
{
    unsigned char bytes[256], back[256];
    char hex[2 * sizeof(bytes) + 1];
    (void)state;

    for (size_t i = 0; i < sizeof(bytes); i++)
        bytes[i] = (unsigned char)i;
    text_hex_encode(bytes, sizeof(bytes), hex);
    assert_int_equal(strlen(hex), 2 * sizeof(bytes));
    assert_int_equal(text_hex_decode(hex, strlen(hex), back, sizeof(back)), sizeof(bytes));
    assert_memory_equal(back, bytes, sizeof(bytes));
}

static void test_hex_decode_fingerprint(void **state)
{
    unsigned char out[4];
    static const unsigned char expected[4] = { 0xab, 0xcd, 0x01, 0xef };
    (void)state;

    assert_int_equal(text_hex_decode_fingerprint("AB:cd:01:EF", out, sizeof(out)), 0);
    assert_memory_equal(out, expected, sizeof(out));
    assert_int_equal(text_hex_decode_fingerprint("abcd01ef", out, sizeof(out)), 0);
    assert_memory_equal(out, expected, sizeof(out));
    assert_int_equal(text_hex_decode_fingerprint("abcd01e", out, sizeof(out)), -1);     /* short */
    assert_int_equal(text_hex_decode_fingerprint("abcd01ef00", out, sizeof(out)), -1);  /* long */
    assert_int_equal(text_hex_decode_fingerprint("abcd01eg", out, sizeof(out)), -1);    /* not hex */
    assert_int_equal(text_hex_decode_fingerprint("ab cd01ef", out, sizeof(out)), -1);   /* blank */
    assert_int_equal(text_hex_decode_fingerprint("", out, sizeof(out)), -1);
}

static void test_log_quote(void **state)
{
    char buf[16];
    (void)state;

    assert_string_equal(text_log_quote("a \"b\" \\c", buf, sizeof(buf)), "a \\\"b\\\" \\\\c");
    assert_string_equal(text_log_quote("line\nnext\r", buf, sizeof(buf)), "line next ");
    assert_string_equal(text_log_quote(NULL, buf, sizeof(buf)), "");
    /* Cut, never past the buffer, never half an escape. */
    assert_string_equal(text_log_quote("0123456789abcdefghij", buf, sizeof(buf)), "0123456789abc");
    assert_string_equal(text_log_quote("0123456789abc\"", buf, sizeof(buf)), "0123456789abc");
    assert_string_equal(text_log_quote("0123456789a\"", buf, sizeof(buf)), "0123456789a\\\"");
}

static void test_json_string(void **state)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    (void)state;

    assert_non_null(out);
    text_json_string(out, "a\"b\\c\x01\n\xc3\xa9");
    fclose(out);
    assert_string_equal(text, "\"a\\\"b\\\\c\\u0001\\u000a\xc3\xa9\"");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex_decode),
        cmocka_unit_test(test_hex_decode_rejects),
        cmocka_unit_test(test_hex_encode),
        cmocka_unit_test(test_hex_round_trip),
        cmocka_unit_test(test_hex_decode_fingerprint),
        cmocka_unit_test(test_log_quote),
        cmocka_unit_test(test_json_string),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
