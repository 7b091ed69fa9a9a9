/* Unit tests for ktls_crypto_info: the bytes handed to setsockopt(SOL_TLS) must be what
 * the kernel ABI (<linux/tls.h>) expects, for every cipher and both TLS versions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/evp.h>

#include "ktls/ktls_crypto_info.h"
#include "ktls/ktls_keys.h"
#include "core/log.h"

#define SEQUENCE 0x0102030405060708ULL
static const unsigned char sequence_bytes[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

static struct ktls_suite suite_of(uint16_t iana_id)
{
    struct ktls_suite suite;
    assert_int_equal(ktls_keys_suite_from_iana(iana_id, &suite), 0);
    return suite;
}

static struct ktls_direction_keys patterned_keys(size_t key_len, size_t iv_len)
{
    struct ktls_direction_keys keys;
    memset(&keys, 0, sizeof(keys));
    for (size_t i = 0; i < key_len; i++)
        keys.key[i] = (unsigned char)(0x10 + i);
    for (size_t i = 0; i < iv_len; i++)
        keys.iv[i] = (unsigned char)(0xA0 + i);
    keys.key_len = key_len;
    keys.iv_len = iv_len;
    return keys;
}

static int is_all_zero(const void *p, size_t len)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < len; i++)
        if (b[i] != 0)
            return 0;
    return 1;
}

/* The kernel ABI, spelled out byte by byte: u16 version, u16 cipher_type (host order),
 * then iv, key, salt, rec_seq with no padding. */
struct blob {
    unsigned char bytes[128];
    size_t len;
};

static void put(struct blob *b, const void *data, size_t len)
{
    assert_true(b->len + len <= sizeof(b->bytes));
    memcpy(b->bytes + b->len, data, len);
    b->len += len;
}

static struct blob expected_blob(uint16_t version, uint16_t cipher_type, const unsigned char *iv,
                                 size_t iv_len, const unsigned char *key, size_t key_len,
                                 const unsigned char *salt, size_t salt_len,
                                 const unsigned char rec_seq[8])
{
    struct blob b = { .len = 0 };
    put(&b, &version, 2);
    put(&b, &cipher_type, 2);
    put(&b, iv, iv_len);
    put(&b, key, key_len);
    if (salt_len > 0)
        put(&b, salt, salt_len);
    put(&b, rec_seq, 8);
    return b;
}

static void fill_and_compare(uint16_t iana_id, const struct ktls_direction_keys *keys,
                             const struct blob *expected)
{
    struct ktls_suite suite = suite_of(iana_id);
    struct ktls_crypto_info info;
    const void *optval = NULL;
    socklen_t optlen = 0;

    assert_int_equal(ktls_crypto_info_fill(&info, &suite, keys, SEQUENCE, &optval, &optlen), 0);
    assert_ptr_equal(optval, &info.u);
    assert_int_equal(optlen, info.length);
    assert_int_equal(optlen, expected->len);
    assert_memory_equal(optval, expected->bytes, expected->len);
    ktls_crypto_info_wipe(&info);
    assert_true(is_all_zero(&info, sizeof(info)));
}

/* TLS 1.3 AES: salt = first 4 bytes of the 12-byte IV, iv = the last 8. */
static void test_aes_gcm_128_tls13(void **state)
{
    (void)state;
    struct ktls_direction_keys keys = patterned_keys(16, 12);
    struct blob b = expected_blob(0x0304, 51, keys.iv + 4, 8, keys.key, 16, keys.iv, 4,
                                  sequence_bytes);
    assert_int_equal(b.len, sizeof(struct tls12_crypto_info_aes_gcm_128));
    fill_and_compare(0x1301, &keys, &b);
}

static void test_aes_gcm_256_tls13(void **state)
{
    (void)state;
    struct ktls_direction_keys keys = patterned_keys(32, 12);
    struct blob b = expected_blob(0x0304, 52, keys.iv + 4, 8, keys.key, 32, keys.iv, 4,
                                  sequence_bytes);
    assert_int_equal(b.len, sizeof(struct tls12_crypto_info_aes_gcm_256));
    fill_and_compare(0x1302, &keys, &b);
}

static void test_aes_ccm_128_tls13(void **state)
{
    (void)state;
    struct ktls_direction_keys keys = patterned_keys(16, 12);
    struct blob b = expected_blob(0x0304, 53, keys.iv + 4, 8, keys.key, 16, keys.iv, 4,
                                  sequence_bytes);
    assert_int_equal(b.len, sizeof(struct tls12_crypto_info_aes_ccm_128));
    fill_and_compare(0x1304, &keys, &b);
}

/* ChaCha20-Poly1305: the whole 12-byte IV in iv, no salt, in both versions. */
static void test_chacha20_poly1305_tls13(void **state)
{
    (void)state;
    struct ktls_direction_keys keys = patterned_keys(32, 12);
    struct blob b = expected_blob(0x0304, 54, keys.iv, 12, keys.key, 32, NULL, 0,
                                  sequence_bytes);
    assert_int_equal(b.len, sizeof(struct tls12_crypto_info_chacha20_poly1305));
    fill_and_compare(0x1303, &keys, &b);
}

/* TLS 1.2 AES: salt = the 4-byte implicit IV; iv = the first explicit nonce the kernel
 * sends, the record sequence number. */
static void test_aes_gcm_128_tls12(void **state)
{
    (void)state;
    struct ktls_direction_keys keys = patterned_keys(16, 4);
    struct blob b = expected_blob(0x0303, 51, sequence_bytes, 8, keys.key, 16, keys.iv, 4,
                                  sequence_bytes);
    fill_and_compare(0xC02B, &keys, &b);
}

static void test_aes_gcm_256_tls12(void **state)
{
    (void)state;
    struct ktls_direction_keys keys = patterned_keys(32, 4);
    struct blob b = expected_blob(0x0303, 52, sequence_bytes, 8, keys.key, 32, keys.iv, 4,
                                  sequence_bytes);
    fill_and_compare(0xC030, &keys, &b);
}

static void test_aes_ccm_128_tls12(void **state)
{
    (void)state;
    struct ktls_direction_keys keys = patterned_keys(16, 4);
    struct blob b = expected_blob(0x0303, 53, sequence_bytes, 8, keys.key, 16, keys.iv, 4,
                                  sequence_bytes);
    fill_and_compare(0xC0AC, &keys, &b);
}

static void test_chacha20_poly1305_tls12(void **state)
{
    (void)state;
    struct ktls_direction_keys keys = patterned_keys(32, 12);
    struct blob b = expected_blob(0x0303, 54, keys.iv, 12, keys.key, 32, NULL, 0,
                                  sequence_bytes);
    fill_and_compare(0xCCA9, &keys, &b);
}

/* The header's constants are the kernel's ABI numbers. */
static void test_kernel_constants(void **state)
{
    (void)state;
    assert_int_equal(TLS_1_2_VERSION, 0x0303);
    assert_int_equal(TLS_1_3_VERSION, 0x0304);
    assert_int_equal(TLS_CIPHER_AES_GCM_128, 51);
    assert_int_equal(TLS_CIPHER_AES_GCM_256, 52);
    assert_int_equal(TLS_CIPHER_AES_CCM_128, 53);
    assert_int_equal(TLS_CIPHER_CHACHA20_POLY1305, 54);
    assert_int_equal(sizeof(struct tls12_crypto_info_aes_gcm_128), 40);
    assert_int_equal(sizeof(struct tls12_crypto_info_aes_gcm_256), 56);
    assert_int_equal(sizeof(struct tls12_crypto_info_aes_ccm_128), 40);
    assert_int_equal(sizeof(struct tls12_crypto_info_chacha20_poly1305), 56);
}

static void test_rec_seq_is_big_endian(void **state)
{
    (void)state;
    static const struct {
        uint64_t sequence;
        unsigned char bytes[8];
    } cases[] = {
        { 0, { 0, 0, 0, 0, 0, 0, 0, 0 } },
        { 1, { 0, 0, 0, 0, 0, 0, 0, 1 } },
        { 0x1234, { 0, 0, 0, 0, 0, 0, 0x12, 0x34 } },
        { 0xFEDCBA9876543210ULL, { 0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10 } },
        { UINT64_MAX, { 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF } },
    };
    struct ktls_suite tls13 = suite_of(0x1303), tls12 = suite_of(0xC02F);
    struct ktls_direction_keys chacha_keys = patterned_keys(32, 12);
    struct ktls_direction_keys gcm_keys = patterned_keys(16, 4);
    struct ktls_crypto_info info;
    const void *optval;
    socklen_t optlen;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(ktls_crypto_info_fill(&info, &tls13, &chacha_keys, cases[i].sequence,
                                               &optval, &optlen), 0);
        assert_memory_equal(info.u.chacha20_poly1305.rec_seq, cases[i].bytes, 8);
        assert_int_equal(ktls_crypto_info_fill(&info, &tls12, &gcm_keys, cases[i].sequence,
                                               &optval, &optlen), 0);
        assert_memory_equal(info.u.aes_gcm_128.rec_seq, cases[i].bytes, 8);
        assert_memory_equal(info.u.aes_gcm_128.iv, cases[i].bytes, 8);
    }
    ktls_crypto_info_wipe(&info);
}

static void expect_refused(uint16_t iana_id, size_t key_len, size_t iv_len)
{
    struct ktls_suite suite = suite_of(iana_id);
    struct ktls_direction_keys keys = patterned_keys(key_len, iv_len);
    struct ktls_crypto_info info;
    const void *optval = NULL;
    socklen_t optlen = 0;

    memset(&info, 0xAA, sizeof(info));
    assert_int_equal(ktls_crypto_info_fill(&info, &suite, &keys, 1, &optval, &optlen), -1);
    assert_true(is_all_zero(&info, sizeof(info)));
    assert_null(optval);
    assert_int_equal(optlen, 0);
}

static void test_refuses_keys_that_do_not_fit(void **state)
{
    (void)state;
    expect_refused(0x1301, 32, 12); /* AES-128 with a 256-bit key */
    expect_refused(0x1302, 16, 12); /* AES-256 with a 128-bit key */
    expect_refused(0x1301, 16, 4);  /* TLS 1.3 needs the 12-byte IV */
    expect_refused(0xC02B, 16, 12); /* TLS 1.2 AES takes the 4-byte implicit IV */
    expect_refused(0xC0AC, 16, 12);
    expect_refused(0x1303, 32, 4);  /* ChaCha20 needs 12 bytes in both versions */
    expect_refused(0xCCA9, 32, 4);
    expect_refused(0x1304, 0, 12);

    struct ktls_direction_keys keys = patterned_keys(16, 12);
    struct ktls_crypto_info info;
    const void *optval = NULL;
    socklen_t optlen = 0;
    struct ktls_suite suite = suite_of(0x1301);
    suite.tls_version = 0x0302; /* TLS 1.1 */
    assert_int_equal(ktls_crypto_info_fill(&info, &suite, &keys, 0, &optval, &optlen), -1);
    suite = suite_of(0x1301);
    suite.cipher = (enum ktls_cipher)99;
    assert_int_equal(ktls_crypto_info_fill(&info, &suite, &keys, 0, &optval, &optlen), -1);
    assert_null(optval);
}

/* RFC 8448 section 3: the client's application key/IV and its first application
 * record (sequence 0), and the server's (sequence 1). Decrypting them with nothing but
 * the filled crypto_info, building the nonce the way the kernel does (salt || iv,
 * XOR rec_seq), proves the salt/iv split. */
#define RFC8448_CLIENT_AP_KEY "17422dda596ed5d9acd890e3c63f5051"
#define RFC8448_CLIENT_AP_IV  "5b78923dee08579033e523d9"
#define RFC8448_SERVER_AP_KEY "9f02283b6c9c07efc26bb9f2ac92e356"
#define RFC8448_SERVER_AP_IV  "cf782b88dd83549aadf1e984"
#define RFC8448_CLIENT_AP_RECORD \
    "1703030043a23f7054b62c94d0affafe8228ba55cbefacea42f914aa66bcab3f2b9819a8a5b46b395bd54a9a20441e2b" \
    "62974e1f5a6292a2977014bd1e3deae63aeebb21694915e4"
#define RFC8448_SERVER_AP_RECORD \
    "17030300432e937e11ef4ac740e538ad36005fc4a46932fc3225d05f82aa1b36e30efaf97d90e6dffc602dcb501a59a8" \
    "fcc49c4bf2e5f0a21c0047c2abf332540dd032e167c2955d"

static size_t unhex(const char *hex, unsigned char *out, size_t cap)
{
    size_t len = strlen(hex) / 2;
    assert_true(strlen(hex) % 2 == 0 && len <= cap);
    for (size_t i = 0; i < len; i++) {
        unsigned int byte;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &byte), 1);
        out[i] = (unsigned char)byte;
    }
    return len;
}

static void open_rfc8448_record(const char *key_hex, const char *iv_hex, uint64_t sequence,
                                const char *record_hex)
{
    struct ktls_suite suite = suite_of(0x1301);
    struct ktls_direction_keys keys;
    struct ktls_crypto_info info;
    const void *optval;
    socklen_t optlen;
    unsigned char record[128], nonce[12], plain[128];
    int len = 0;

    memset(&keys, 0, sizeof(keys));
    keys.key_len = unhex(key_hex, keys.key, sizeof(keys.key));
    keys.iv_len = unhex(iv_hex, keys.iv, sizeof(keys.iv));
    size_t record_len = unhex(record_hex, record, sizeof(record));
    assert_int_equal(ktls_crypto_info_fill(&info, &suite, &keys, sequence, &optval, &optlen), 0);

    const struct tls12_crypto_info_aes_gcm_128 *gcm = optval;
    memcpy(nonce, gcm->salt, 4);
    memcpy(nonce + 4, gcm->iv, 8);
    for (int i = 0; i < 8; i++)
        nonce[4 + i] ^= gcm->rec_seq[i];

    size_t ciphertext_len = record_len - 5 - 16;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    assert_non_null(ctx);
    assert_int_equal(EVP_DecryptInit_ex(ctx, EVP_aes_128_gcm(), NULL, gcm->key, nonce), 1);
    assert_int_equal(EVP_DecryptUpdate(ctx, NULL, &len, record, 5), 1);
    assert_int_equal(EVP_DecryptUpdate(ctx, plain, &len, record + 5, (int)ciphertext_len), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16,
                                         record + 5 + ciphertext_len), 1);
    int tag_ok = EVP_DecryptFinal_ex(ctx, plain + len, &len);
    EVP_CIPHER_CTX_free(ctx);
    ktls_crypto_info_wipe(&info);

    assert_int_equal(tag_ok, 1);
    assert_int_equal(ciphertext_len, 51);
    for (int i = 0; i < 50; i++)
        assert_int_equal(plain[i], i);
    assert_int_equal(plain[50], 0x17); /* inner content type: application_data */
}

static void test_rfc8448_records_open_through_crypto_info(void **state)
{
    (void)state;
    open_rfc8448_record(RFC8448_CLIENT_AP_KEY, RFC8448_CLIENT_AP_IV, 0, RFC8448_CLIENT_AP_RECORD);
    open_rfc8448_record(RFC8448_SERVER_AP_KEY, RFC8448_SERVER_AP_IV, 1, RFC8448_SERVER_AP_RECORD);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kernel_constants),
        cmocka_unit_test(test_aes_gcm_128_tls13),
        cmocka_unit_test(test_aes_gcm_256_tls13),
        cmocka_unit_test(test_aes_ccm_128_tls13),
        cmocka_unit_test(test_chacha20_poly1305_tls13),
        cmocka_unit_test(test_aes_gcm_128_tls12),
        cmocka_unit_test(test_aes_gcm_256_tls12),
        cmocka_unit_test(test_aes_ccm_128_tls12),
        cmocka_unit_test(test_chacha20_poly1305_tls12),
        cmocka_unit_test(test_rec_seq_is_big_endian),
        cmocka_unit_test(test_refuses_keys_that_do_not_fit),
        cmocka_unit_test(test_rfc8448_records_open_through_crypto_info),
    };
    log_init("test_ktls_crypto_info", LOG_LEVEL_ERROR);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
