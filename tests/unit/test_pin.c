#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "config/pin.h"

/* One SubjectPublicKeyInfo digest in every spelling pin_sha256 accepts. */
static const unsigned char digest_a[PIN_SHA256_LEN] = {
    0x60, 0xcb, 0x95, 0xe6, 0x64, 0x50, 0xc7, 0x1e, 0xca, 0xd8, 0x94, 0x8a, 0x35, 0xbb, 0x71, 0xa8,
    0x2b, 0x44, 0xb1, 0xc1, 0x0c, 0x0b, 0x30, 0xcb, 0x93, 0xe5, 0xe1, 0x48, 0x1b, 0xa0, 0x06, 0xd2,
};
#define HEX_A "60cb95e66450c71ecad8948a35bb71a82b44b1c10c0b30cb93e5e1481ba006d2"
#define BASE64_A "YMuV5mRQxx7K2JSKNbtxqCtEscEMCzDLk+XhSBugBtI="

static void assert_decodes(const char *text, const unsigned char expected[PIN_SHA256_LEN])
{
    unsigned char digest[PIN_SHA256_LEN];

    memset(digest, 0xee, sizeof(digest));
    if (pin_decode(text, digest) != 0)
        fail_msg("'%s' rejected", text);
    assert_memory_equal(digest, expected, PIN_SHA256_LEN);
}

static void assert_rejected(const char *text)
{
    unsigned char digest[PIN_SHA256_LEN];

    if (pin_decode(text, digest) == 0)
        fail_msg("'%s' accepted", text);
}

static void test_hex(void **state)
{
    (void)state;
    assert_decodes(HEX_A, digest_a);
    assert_decodes("60CB95E66450C71ECAD8948A35BB71A82B44B1C10C0B30CB93E5E1481BA006D2", digest_a);
    /* openssl x509 -fingerprint's form, and colons anywhere. */
    assert_decodes("60:CB:95:E6:64:50:C7:1E:CA:D8:94:8A:35:BB:71:A8:2B:44:B1:C1:0C:0B:30:CB:"
                   "93:E5:E1:48:1B:A0:06:D2", digest_a);
    assert_decodes("::60cb95e66450c71ecad8948a35bb71a82b44b1c10c0b30cb93e5e1481ba006d2:", digest_a);
}

static void test_base64(void **state)
{
    static const unsigned char counting[PIN_SHA256_LEN] = {
        0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
        16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
    };
    (void)state;
    assert_decodes(BASE64_A, digest_a);
    assert_decodes("YMuV5mRQxx7K2JSKNbtxqCtEscEMCzDLk+XhSBugBtI", digest_a);   /* no '=' */
    assert_decodes("sha256//" BASE64_A, digest_a);                            /* curl */
    assert_decodes("SHA256//AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", counting);
}

static void test_rejects(void **state)
{
    (void)state;
    assert_rejected("");
    assert_rejected("zz");
    assert_rejected(":");
    /* 62 and 66 hex digits: one byte short, one byte over. */
    assert_rejected("60cb95e66450c71ecad8948a35bb71a82b44b1c10c0b30cb93e5e1481ba006");
    assert_rejected(HEX_A "aa");
    assert_rejected("60cb95e66450c71ecad8948a35bb71a82b44b1c10c0b30cb93e5e1481ba006g2");
    assert_rejected("0x60cb95e66450c71ecad8948a35bb71a82b44b1c10c0b30cb93e5e1481ba006d2");
    /* The prefix is for base64 only. */
    assert_rejected("sha256//" HEX_A);
    /* Base64 of another length, a symbol outside the alphabet, padding twice. */
    assert_rejected("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd");
    assert_rejected("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8AA");
    assert_rejected("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh-=");
    assert_rejected("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8==");
    /* The last symbol's 2 spare bits set: not the canonical encoding of any digest. */
    assert_rejected("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=");
    assert_rejected("sha256:" BASE64_A);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_rejects),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
