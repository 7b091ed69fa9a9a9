#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
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

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex_decode),
        cmocka_unit_test(test_hex_decode_rejects),
        cmocka_unit_test(test_hex_encode),
        cmocka_unit_test(test_hex_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
