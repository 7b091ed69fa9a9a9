/* Unit tests for ktls_keys: published vectors (RFC 8448, the TLS 1.2 PRF vector),
 * independent recomputations, and real OpenSSL handshakes whose records we decrypt with
 * the derived keys. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "ktls/ktls_crypto_info.h"
#include "ktls/ktls_keys.h"
#include "core/log.h"

/* ---- helpers ----------------------------------------------------------------------- */

/* Decodes hex, ignoring blanks (vectors are transcribed in the RFC's spaced layout). */
static size_t unhex(const char *text, unsigned char *out, size_t cap)
{
    size_t n = 0;
    int high = -1;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == ' ' || *p == '\n')
            continue;
        int v = (*p >= '0' && *p <= '9') ? *p - '0'
              : (*p >= 'a' && *p <= 'f') ? *p - 'a' + 10
              : (*p >= 'A' && *p <= 'F') ? *p - 'A' + 10 : -1;
        assert_true(v >= 0);
        if (high < 0) {
            high = v;
        } else {
            assert_true(n < cap);
            out[n++] = (unsigned char)(high << 4 | v);
            high = -1;
        }
    }
    assert_int_equal(high, -1);
    return n;
}

static void hex_of(const unsigned char *bytes, size_t len, char *out)
{
    for (size_t i = 0; i < len; i++)
        sprintf(out + 2 * i, "%02x", bytes[i]);
    out[2 * len] = '\0';
}

/* "LABEL <client_random hex> <secret hex>", as OpenSSL's keylog callback writes it. */
static void keylog_line(char *out, size_t cap, const char *label, const unsigned char *random,
                        const unsigned char *secret, size_t secret_len)
{
    char random_hex[2 * KTLS_KEYS_RANDOM_LEN + 1];
    char secret_hex[2 * 64 + 1];
    assert_true(secret_len <= 64);
    hex_of(random, KTLS_KEYS_RANDOM_LEN, random_hex);
    hex_of(secret, secret_len, secret_hex);
    int n = snprintf(out, cap, "%s %s %s", label, random_hex, secret_hex);
    assert_true(n > 0 && (size_t)n < cap);
}

static void assert_hex_equal(const unsigned char *bytes, size_t len, const char *expected_hex)
{
    unsigned char expected[256];
    size_t expected_len = unhex(expected_hex, expected, sizeof(expected));
    assert_int_equal(len, expected_len);
    assert_memory_equal(bytes, expected, len);
}

static struct ktls_suite suite_of(uint16_t iana_id)
{
    struct ktls_suite suite;
    assert_int_equal(ktls_keys_suite_from_iana(iana_id, &suite), 0);
    return suite;
}

static int is_all_zero(const void *p, size_t len)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < len; i++)
        if (b[i] != 0)
            return 0;
    return 1;
}

/* Field by field: structure padding is not part of the value. */
static void assert_direction_keys_equal(const struct ktls_direction_keys *a,
                                        const struct ktls_direction_keys *b)
{
    assert_int_equal(a->key_len, b->key_len);
    assert_int_equal(a->iv_len, b->iv_len);
    assert_memory_equal(a->key, b->key, a->key_len);
    assert_memory_equal(a->iv, b->iv, a->iv_len);
}

static void assert_secret_equal(const struct ktls_secret *a, const struct ktls_secret *b)
{
    assert_int_equal(a->len, b->len);
    assert_memory_equal(a->bytes, b->bytes, a->len);
}

static void assert_secrets_equal(const struct ktls_secrets *a, const struct ktls_secrets *b)
{
    assert_int_equal(a->have_client_random, b->have_client_random);
    assert_memory_equal(a->client_random, b->client_random, sizeof(a->client_random));
    assert_secret_equal(&a->client_traffic, &b->client_traffic);
    assert_secret_equal(&a->server_traffic, &b->server_traffic);
    assert_secret_equal(&a->master, &b->master);
}

static const EVP_CIPHER *evp_cipher_of(enum ktls_cipher cipher)
{
    switch (cipher) {
    case KTLS_CIPHER_AES_128_GCM:
        return EVP_aes_128_gcm();
    case KTLS_CIPHER_AES_256_GCM:
        return EVP_aes_256_gcm();
    case KTLS_CIPHER_AES_128_CCM:
        return EVP_aes_128_ccm();
    case KTLS_CIPHER_CHACHA20_POLY1305:
        return EVP_chacha20_poly1305();
    }
    return NULL;
}

/* AEAD decryption with EVP. Returns 0 when the tag verifies. */
static int aead_open(enum ktls_cipher cipher, const unsigned char *key,
                     const unsigned char nonce[12], const unsigned char *aad, size_t aad_len,
                     const unsigned char *ciphertext, size_t ciphertext_len,
                     const unsigned char tag[16], unsigned char *plain)
{
    int ok = 0, len = 0;
    int ccm = cipher == KTLS_CIPHER_AES_128_CCM;
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    assert_non_null(ctx);
    assert_int_equal(EVP_DecryptInit_ex(ctx, evp_cipher_of(cipher), NULL, NULL, NULL), 1);
    assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL), 1);
    if (ccm)
        assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, (void *)tag), 1);
    assert_int_equal(EVP_DecryptInit_ex(ctx, NULL, NULL, key, nonce), 1);
    if (ccm)
        assert_int_equal(EVP_DecryptUpdate(ctx, NULL, &len, NULL, (int)ciphertext_len), 1);
    assert_int_equal(EVP_DecryptUpdate(ctx, NULL, &len, aad, (int)aad_len), 1);
    ok = EVP_DecryptUpdate(ctx, plain, &len, ciphertext, (int)ciphertext_len) > 0;
    if (ok && !ccm) {
        assert_int_equal(EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, 16, (void *)tag), 1);
        ok = EVP_DecryptFinal_ex(ctx, plain + len, &len) > 0;
    }
    EVP_CIPHER_CTX_free(ctx);
    return ok ? 0 : -1;
}

static void store_be64(unsigned char out[8], uint64_t value)
{
    for (int i = 7; i >= 0; i--) {
        out[i] = (unsigned char)value;
        value >>= 8;
    }
}

/* Nonce of RFC 8446 section 5.3 / RFC 7905: the 12-byte IV XOR the padded sequence. */
static void xor_sequence(unsigned char nonce[12], const unsigned char rec_seq[8])
{
    for (int i = 0; i < 8; i++)
        nonce[4 + i] ^= rec_seq[i];
}

#define RECORD_HEADER_LEN 5
#define TAG_LEN           16
#define EXPLICIT_NONCE_LEN 8

/* Decrypts one application_data record with KEY/IV-style inputs the way a TLS peer
 * does. IV is 12 bytes (TLS 1.3, ChaCha20) or 4 (TLS 1.2 AES: the explicit nonce comes
 * from the record). Returns the payload length, or -1 when authentication fails. */
static long open_record(int version, enum ktls_cipher cipher, const unsigned char *key,
                        const unsigned char *iv, size_t iv_len, const unsigned char rec_seq[8],
                        const unsigned char *record, size_t record_len, unsigned char *plain)
{
    assert_true(record_len > RECORD_HEADER_LEN + TAG_LEN);
    assert_int_equal(record[0], 0x17);
    size_t body_len = (size_t)record[3] << 8 | record[4];
    assert_int_equal(record_len, RECORD_HEADER_LEN + body_len);
    const unsigned char *body = record + RECORD_HEADER_LEN;
    unsigned char nonce[12];
    unsigned char aad[13];
    size_t aad_len;

    if (version == TLS1_3_VERSION) {
        assert_int_equal(iv_len, 12);
        memcpy(nonce, iv, 12);
        xor_sequence(nonce, rec_seq);
        size_t ct_len = body_len - TAG_LEN;
        if (aead_open(cipher, key, nonce, record, RECORD_HEADER_LEN, body, ct_len,
                      body + ct_len, plain) != 0)
            return -1;
        /* TLSInnerPlaintext: content, content type, zero padding. */
        long end = (long)ct_len;
        while (end > 0 && plain[end - 1] == 0)
            end--;
        assert_true(end > 0);
        assert_int_equal(plain[end - 1], 0x17);
        return end - 1;
    }
    const unsigned char *ciphertext = body;
    size_t ct_len = body_len - TAG_LEN;
    if (cipher == KTLS_CIPHER_CHACHA20_POLY1305) {
        assert_int_equal(iv_len, 12);
        memcpy(nonce, iv, 12);
        xor_sequence(nonce, rec_seq);
    } else {
        assert_int_equal(iv_len, 4);
        memcpy(nonce, iv, 4);
        memcpy(nonce + 4, body, EXPLICIT_NONCE_LEN);
        ciphertext += EXPLICIT_NONCE_LEN;
        ct_len -= EXPLICIT_NONCE_LEN;
    }
    /* RFC 5246 section 6.2.3.3: seq_num + type + version + length. */
    memcpy(aad, rec_seq, 8);
    aad[8] = 0x17;
    aad[9] = 0x03;
    aad[10] = 0x03;
    aad[11] = (unsigned char)(ct_len >> 8);
    aad[12] = (unsigned char)ct_len;
    aad_len = 13;
    if (aead_open(cipher, key, nonce, aad, aad_len, ciphertext, ct_len, ciphertext + ct_len,
                  plain) != 0)
        return -1;
    return (long)ct_len;
}

static long open_record_with_keys(const struct ktls_suite *suite,
                                  const struct ktls_direction_keys *keys, uint64_t sequence,
                                  const unsigned char *record, size_t record_len,
                                  unsigned char *plain)
{
    unsigned char rec_seq[8];
    store_be64(rec_seq, sequence);
    return open_record(suite->tls_version, suite->cipher, keys->key, keys->iv, keys->iv_len,
                       rec_seq, record, record_len, plain);
}

/* Decrypts RECORD from nothing but a filled crypto_info, building the nonce the way the
 * kernel does: salt || iv, XORed with rec_seq for TLS 1.3 and ChaCha20; for TLS 1.2
 * AES the explicit nonce is read from the record. */
static long open_record_as_kernel(const struct ktls_crypto_info *info,
                                  const unsigned char *record, size_t record_len,
                                  unsigned char *plain)
{
    const unsigned char *key, *salt, *iv, *rec_seq;
    size_t salt_len, iv_len;
    enum ktls_cipher cipher;
    switch (info->u.info.cipher_type) {
    case TLS_CIPHER_AES_GCM_128:
        cipher = KTLS_CIPHER_AES_128_GCM;
        key = info->u.aes_gcm_128.key, salt = info->u.aes_gcm_128.salt;
        iv = info->u.aes_gcm_128.iv, rec_seq = info->u.aes_gcm_128.rec_seq;
        salt_len = 4, iv_len = 8;
        break;
    case TLS_CIPHER_AES_GCM_256:
        cipher = KTLS_CIPHER_AES_256_GCM;
        key = info->u.aes_gcm_256.key, salt = info->u.aes_gcm_256.salt;
        iv = info->u.aes_gcm_256.iv, rec_seq = info->u.aes_gcm_256.rec_seq;
        salt_len = 4, iv_len = 8;
        break;
    case TLS_CIPHER_AES_CCM_128:
        cipher = KTLS_CIPHER_AES_128_CCM;
        key = info->u.aes_ccm_128.key, salt = info->u.aes_ccm_128.salt;
        iv = info->u.aes_ccm_128.iv, rec_seq = info->u.aes_ccm_128.rec_seq;
        salt_len = 4, iv_len = 8;
        break;
    case TLS_CIPHER_CHACHA20_POLY1305:
        cipher = KTLS_CIPHER_CHACHA20_POLY1305;
        key = info->u.chacha20_poly1305.key, salt = NULL;
        iv = info->u.chacha20_poly1305.iv, rec_seq = info->u.chacha20_poly1305.rec_seq;
        salt_len = 0, iv_len = 12;
        break;
    default:
        fail_msg("unexpected cipher_type %u", info->u.info.cipher_type);
        return -1;
    }
    unsigned char kernel_iv[12];
    if (salt_len > 0)
        memcpy(kernel_iv, salt, salt_len);
    memcpy(kernel_iv + salt_len, iv, iv_len);
    int implicit_only = info->u.info.version == TLS_1_2_VERSION
                        && cipher != KTLS_CIPHER_CHACHA20_POLY1305;
    return open_record(info->u.info.version, cipher, key, kernel_iv,
                       implicit_only ? salt_len : salt_len + iv_len, rec_seq, record,
                       record_len, plain);
}

/* ---- RFC 8448 section 3, "Simple 1-RTT Handshake" (TLS_AES_128_GCM_SHA256) ---------- */

#define RFC8448_CLIENT_RANDOM \
    "cb 34 ec b1 e7 81 63 ba 1c 38 c6 da cb 19 6a 6d ff a2 1a 8d 99 12 ec 18 a2 ef 62 83 02 4d ec e7"
#define RFC8448_SERVER_HS_SECRET \
    "b6 7b 7d 69 0c c1 6c 4e 75 e5 42 13 cb 2d 37 b4 e9 c9 12 bc de d9 10 5d 42 be fd 59 d3 91 ad 38"
#define RFC8448_SERVER_HS_KEY "3f ce 51 60 09 c2 17 27 d0 f2 e4 e8 6e e4 03 bc"
#define RFC8448_SERVER_HS_IV  "5d 31 3e b2 67 12 76 ee 13 00 0b 30"
#define RFC8448_CLIENT_HS_SECRET \
    "b3 ed db 12 6e 06 7f 35 a7 80 b3 ab f4 5e 2d 8f 3b 1a 95 07 38 f5 2e 96 00 74 6a 0e 27 a5 5a 21"
#define RFC8448_CLIENT_HS_KEY "db fa a6 93 d1 76 2c 5b 66 6a f5 d9 50 25 8d 01"
#define RFC8448_CLIENT_HS_IV  "5b d3 c7 1b 83 6e 0b 76 bb 73 26 5f"
#define RFC8448_CLIENT_AP_SECRET \
    "9e 40 64 6c e7 9a 7f 9d c0 5a f8 88 9b ce 65 52 87 5a fa 0b 06 df 00 87 f7 92 eb b7 c1 75 04 a5"
#define RFC8448_SERVER_AP_SECRET \
    "a1 1a f9 f0 55 31 f8 56 ad 47 11 6b 45 a9 50 32 82 04 b4 f4 4b fb 6b 3a 4b 4f 1f 3f cb 63 16 43"
#define RFC8448_CLIENT_AP_KEY "17 42 2d da 59 6e d5 d9 ac d8 90 e3 c6 3f 50 51"
#define RFC8448_CLIENT_AP_IV  "5b 78 92 3d ee 08 57 90 33 e5 23 d9"
#define RFC8448_SERVER_AP_KEY "9f 02 28 3b 6c 9c 07 ef c2 6b b9 f2 ac 92 e3 56"
#define RFC8448_SERVER_AP_IV  "cf 78 2b 88 dd 83 54 9a ad f1 e9 84"
/* The client's first application_data record (sequence 0) and the server's (sequence
 * 1: its NewSessionTicket went first); both carry the 50 bytes 00 01 .. 31. */
#define RFC8448_CLIENT_AP_RECORD \
    "17 03 03 00 43 a2 3f 70 54 b6 2c 94 d0 af fa fe 82 28 ba 55 cb ef ac ea" \
    "42 f9 14 aa 66 bc ab 3f 2b 98 19 a8 a5 b4 6b 39 5b d5 4a 9a 20 44 1e 2b" \
    "62 97 4e 1f 5a 62 92 a2 97 70 14 bd 1e 3d ea e6 3a ee bb 21 69 49 15 e4"
#define RFC8448_SERVER_AP_RECORD \
    "17 03 03 00 43 2e 93 7e 11 ef 4a c7 40 e5 38 ad 36 00 5f c4 a4 69 32 fc" \
    "32 25 d0 5f 82 aa 1b 36 e3 0e fa f9 7d 90 e6 df fc 60 2d cb 50 1a 59 a8" \
    "fc c4 9c 4b f2 e5 f0 a2 1c 00 47 c2 ab f3 32 54 0d d0 32 e1 67 c2 95 5d"

static void test_rfc8448_handshake_traffic_keys(void **state)
{
    (void)state;
    struct ktls_suite suite = suite_of(0x1301);
    unsigned char secret[48];
    struct ktls_direction_keys keys;

    size_t len = unhex(RFC8448_SERVER_HS_SECRET, secret, sizeof(secret));
    assert_int_equal(ktls_keys_tls13_traffic_keys(&suite, secret, len, &keys), 0);
    assert_hex_equal(keys.key, keys.key_len, RFC8448_SERVER_HS_KEY);
    assert_hex_equal(keys.iv, keys.iv_len, RFC8448_SERVER_HS_IV);

    len = unhex(RFC8448_CLIENT_HS_SECRET, secret, sizeof(secret));
    assert_int_equal(ktls_keys_tls13_traffic_keys(&suite, secret, len, &keys), 0);
    assert_hex_equal(keys.key, keys.key_len, RFC8448_CLIENT_HS_KEY);
    assert_hex_equal(keys.iv, keys.iv_len, RFC8448_CLIENT_HS_IV);
}

/* Feeds the RFC's application traffic secrets through the keylog path. */
static void note_rfc8448_secrets(struct ktls_secrets *secrets, struct ktls_randoms *randoms)
{
    unsigned char secret[48];
    char line[256];
    size_t len;

    memset(secrets, 0, sizeof(*secrets));
    memset(randoms, 0, sizeof(*randoms));
    unhex(RFC8448_CLIENT_RANDOM, randoms->client, sizeof(randoms->client));
    len = unhex(RFC8448_CLIENT_AP_SECRET, secret, sizeof(secret));
    keylog_line(line, sizeof(line), "CLIENT_TRAFFIC_SECRET_0", randoms->client, secret, len);
    assert_int_equal(ktls_keys_note_keylog_line(secrets, line), 1);
    len = unhex(RFC8448_SERVER_AP_SECRET, secret, sizeof(secret));
    keylog_line(line, sizeof(line), "SERVER_TRAFFIC_SECRET_0", randoms->client, secret, len);
    assert_int_equal(ktls_keys_note_keylog_line(secrets, line), 1);
    /* Handshake-phase lines arrive too and must not disturb anything. */
    len = unhex(RFC8448_SERVER_HS_SECRET, secret, sizeof(secret));
    keylog_line(line, sizeof(line), "SERVER_HANDSHAKE_TRAFFIC_SECRET", randoms->client, secret,
                len);
    assert_int_equal(ktls_keys_note_keylog_line(secrets, line), 0);
}

static void test_rfc8448_application_keys_both_roles(void **state)
{
    (void)state;
    struct ktls_suite suite = suite_of(0x1301);
    struct ktls_secrets secrets;
    struct ktls_randoms randoms;
    struct ktls_keys keys;

    note_rfc8448_secrets(&secrets, &randoms);

    assert_int_equal(ktls_keys_derive(&secrets, &suite, KTLS_ROLE_SERVER, &randoms, &keys), 0);
    assert_hex_equal(keys.tx.key, keys.tx.key_len, RFC8448_SERVER_AP_KEY);
    assert_hex_equal(keys.tx.iv, keys.tx.iv_len, RFC8448_SERVER_AP_IV);
    assert_hex_equal(keys.rx.key, keys.rx.key_len, RFC8448_CLIENT_AP_KEY);
    assert_hex_equal(keys.rx.iv, keys.rx.iv_len, RFC8448_CLIENT_AP_IV);

    assert_int_equal(ktls_keys_derive(&secrets, &suite, KTLS_ROLE_CLIENT, &randoms, &keys), 0);
    assert_hex_equal(keys.tx.key, keys.tx.key_len, RFC8448_CLIENT_AP_KEY);
    assert_hex_equal(keys.tx.iv, keys.tx.iv_len, RFC8448_CLIENT_AP_IV);
    assert_hex_equal(keys.rx.key, keys.rx.key_len, RFC8448_SERVER_AP_KEY);
    assert_hex_equal(keys.rx.iv, keys.rx.iv_len, RFC8448_SERVER_AP_IV);

    ktls_keys_wipe_keys(&keys);
    assert_true(is_all_zero(&keys, sizeof(keys)));
    ktls_keys_wipe(&secrets);
}

/* The RFC's own application records open with the derived keys at the right
 * sequence numbers, and not at a wrong one. */
static void test_rfc8448_records_decrypt(void **state)
{
    (void)state;
    struct ktls_suite suite = suite_of(0x1301);
    struct ktls_secrets secrets;
    struct ktls_randoms randoms;
    struct ktls_keys keys;
    unsigned char record[128], plain[128], payload[50];
    size_t record_len;

    for (size_t i = 0; i < sizeof(payload); i++)
        payload[i] = (unsigned char)i;
    note_rfc8448_secrets(&secrets, &randoms);
    assert_int_equal(ktls_keys_derive(&secrets, &suite, KTLS_ROLE_SERVER, &randoms, &keys), 0);

    record_len = unhex(RFC8448_CLIENT_AP_RECORD, record, sizeof(record));
    assert_int_equal(open_record_with_keys(&suite, &keys.rx, 0, record, record_len, plain),
                     (long)sizeof(payload));
    assert_memory_equal(plain, payload, sizeof(payload));
    assert_int_equal(open_record_with_keys(&suite, &keys.rx, 1, record, record_len, plain), -1);

    record_len = unhex(RFC8448_SERVER_AP_RECORD, record, sizeof(record));
    assert_int_equal(open_record_with_keys(&suite, &keys.tx, 1, record, record_len, plain),
                     (long)sizeof(payload));
    assert_memory_equal(plain, payload, sizeof(payload));
    assert_int_equal(open_record_with_keys(&suite, &keys.tx, 0, record, record_len, plain), -1);
    ktls_keys_wipe_keys(&keys);
    ktls_keys_wipe(&secrets);
}

/* ---- TLS 1.3 KeyUpdate ("traffic upd") ------------------------------------------------ */

/* HKDF-Expand(secret, HkdfLabel, Hash.length) with the HkdfLabel built by hand
 * (RFC 8446 section 7.1) and plain HKDF, independent of the code under test's
 * use of TLS13-KDF. */
static void independent_traffic_upd(const char *digest, const unsigned char *secret,
                                    size_t len, unsigned char *out)
{
    static const char label[] = "tls13 traffic upd";
    unsigned char info[2 + 1 + sizeof(label) - 1 + 1];
    info[0] = (unsigned char)(len >> 8);
    info[1] = (unsigned char)len;
    info[2] = (unsigned char)(sizeof(label) - 1);
    memcpy(info + 3, label, sizeof(label) - 1);
    info[3 + sizeof(label) - 1] = 0; /* empty context */

    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)digest, 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_INFO, info, sizeof(info)),
        OSSL_PARAM_construct_end(),
    };
    EVP_KDF *kdf = EVP_KDF_fetch(NULL, "HKDF", NULL);
    assert_non_null(kdf);
    EVP_KDF_CTX *ctx = EVP_KDF_CTX_new(kdf);
    assert_non_null(ctx);
    assert_int_equal(EVP_KDF_derive(ctx, out, len, params), 1);
    EVP_KDF_CTX_free(ctx);
    EVP_KDF_free(kdf);
}

static void test_traffic_update_matches_independent_hkdf(void **state)
{
    (void)state;
    unsigned char secret[48], next[48], expected[48];
    size_t len = unhex(RFC8448_SERVER_AP_SECRET, secret, sizeof(secret));

    assert_int_equal(ktls_keys_tls13_next_secret(KTLS_HASH_SHA256, secret, len, next, len), 0);
    independent_traffic_upd("SHA256", secret, len, expected);
    assert_memory_equal(next, expected, len);
    assert_memory_not_equal(next, secret, len);

    for (size_t i = 0; i < 48; i++)
        secret[i] = (unsigned char)(0x80 + 3 * i);
    assert_int_equal(ktls_keys_tls13_next_secret(KTLS_HASH_SHA384, secret, 48, next, 48), 0);
    independent_traffic_upd("SHA384", secret, 48, expected);
    assert_memory_equal(next, expected, 48);

    /* A secret whose length does not match the hash is refused. */
    assert_int_equal(ktls_keys_tls13_next_secret(KTLS_HASH_SHA384, secret, 32, next, 48), -1);
    assert_int_equal(ktls_keys_tls13_next_secret(KTLS_HASH_SHA256, secret, 32, next, 48), -1);
}

static void test_key_update_replaces_one_direction(void **state)
{
    (void)state;
    struct ktls_suite suite = suite_of(0x1301);
    struct ktls_secrets secrets;
    struct ktls_randoms randoms;
    struct ktls_direction_keys updated, expected_keys;
    unsigned char client0[32], server0[32], server1[32], server2[32], client1[32];

    note_rfc8448_secrets(&secrets, &randoms);
    unhex(RFC8448_CLIENT_AP_SECRET, client0, sizeof(client0));
    unhex(RFC8448_SERVER_AP_SECRET, server0, sizeof(server0));
    independent_traffic_upd("SHA256", server0, 32, server1);
    independent_traffic_upd("SHA256", server1, 32, server2);
    independent_traffic_upd("SHA256", client0, 32, client1);

    /* The server updates its sending keys: only server_traffic moves. */
    assert_int_equal(ktls_keys_update(&secrets, &suite, KTLS_ROLE_SERVER, KTLS_DIRECTION_TX,
                                      &updated), 0);
    assert_memory_equal(secrets.server_traffic.bytes, server1, 32);
    assert_memory_equal(secrets.client_traffic.bytes, client0, 32);
    assert_int_equal(ktls_keys_tls13_traffic_keys(&suite, server1, 32, &expected_keys), 0);
    assert_direction_keys_equal(&updated, &expected_keys);

    /* A client receiving that KeyUpdate moves the same secret, one generation on. */
    assert_int_equal(ktls_keys_update(&secrets, &suite, KTLS_ROLE_CLIENT, KTLS_DIRECTION_RX,
                                      &updated), 0);
    assert_memory_equal(secrets.server_traffic.bytes, server2, 32);
    assert_int_equal(ktls_keys_tls13_traffic_keys(&suite, server2, 32, &expected_keys), 0);
    assert_direction_keys_equal(&updated, &expected_keys);

    /* The server receiving the client's KeyUpdate moves client_traffic. */
    assert_int_equal(ktls_keys_update(&secrets, &suite, KTLS_ROLE_SERVER, KTLS_DIRECTION_RX,
                                      &updated), 0);
    assert_memory_equal(secrets.client_traffic.bytes, client1, 32);

    /* TLS 1.2 has no KeyUpdate. */
    struct ktls_suite tls12 = suite_of(0xC02B);
    assert_int_equal(ktls_keys_update(&secrets, &tls12, KTLS_ROLE_SERVER, KTLS_DIRECTION_TX,
                                      &updated), -1);
    assert_true(is_all_zero(&updated, sizeof(updated)));
    assert_memory_equal(secrets.client_traffic.bytes, client1, 32);
    ktls_keys_wipe(&secrets);
}

/* ---- TLS 1.2 PRF and key block -------------------------------------------------------- */

/* The widely circulated TLS 1.2 PRF vectors (IETF TLS list): "test label". */
#define PRF_SHA256_SECRET "9b be 43 6b a9 40 f0 17 b1 76 52 84 9a 71 db 35"
#define PRF_SHA256_SEED   "a0 ba 9f 93 6c da 31 18 27 a6 f7 96 ff d5 19 8c"
#define PRF_SHA256_OUTPUT \
    "e3 f2 29 ba 72 7b e1 7b 8d 12 26 20 55 7c d4 53 c2 aa b2 1d 07 c3 d4 95 32 9b 52 d4 e6 1e db 5a" \
    "6b 30 17 91 e9 0d 35 c9 c9 a4 6b 4e 14 ba f9 af 0f a0 22 f7 07 7d ef 17 ab fd 37 97 c0 56 4b ab" \
    "4f bc 91 66 6e 9d ef 9b 97 fc e3 4f 79 67 89 ba a4 80 82 d1 22 ee 42 c5 a7 2e 5a 51 10 ff f7 01" \
    "87 34 7b 66"
#define PRF_SHA384_SECRET "b8 0b 73 3d 6c ee fc dc 71 56 6e a4 8e 55 67 df"
#define PRF_SHA384_SEED   "cd 66 5c f6 a8 44 7d d6 ff 8b 27 55 5e db 74 65"
#define PRF_SHA384_OUTPUT_48 \
    "7b 0c 18 e9 ce d4 10 ed 18 04 f2 cf a3 4a 33 6a 1c 14 df fb 49 00 bb 5f d7 94 21 07 e8 1c 83 cd" \
    "e9 ca 0f aa 60 be 9f e3 4f 82 b1 23 3c 91 46 a0"

static void test_tls12_prf_published_vectors(void **state)
{
    (void)state;
    unsigned char secret[16], seed[16], out[100];
    size_t secret_len = unhex(PRF_SHA256_SECRET, secret, sizeof(secret));
    size_t seed_len = unhex(PRF_SHA256_SEED, seed, sizeof(seed));

    assert_int_equal(ktls_keys_tls12_prf(KTLS_HASH_SHA256, secret, secret_len, "test label",
                                         seed, seed_len, out, 100), 0);
    assert_hex_equal(out, 100, PRF_SHA256_OUTPUT);

    secret_len = unhex(PRF_SHA384_SECRET, secret, sizeof(secret));
    seed_len = unhex(PRF_SHA384_SEED, seed, sizeof(seed));
    assert_int_equal(ktls_keys_tls12_prf(KTLS_HASH_SHA384, secret, secret_len, "test label",
                                         seed, seed_len, out, 48), 0);
    assert_hex_equal(out, 48, PRF_SHA384_OUTPUT_48);
}

/* P_hash of RFC 5246 section 5 on top of HMAC, independent of TLS1-PRF. */
static void independent_p_hash(const char *digest, const unsigned char *secret,
                               size_t secret_len, const unsigned char *seed, size_t seed_len,
                               unsigned char *out, size_t out_len)
{
    unsigned char a[64], block[64], input[64 + 256];
    size_t a_len, block_len, done = 0;

    assert_true(seed_len <= 256);
    assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, digest, NULL, secret, secret_len, seed,
                              seed_len, a, sizeof(a), &a_len)); /* A(1) */
    while (done < out_len) {
        memcpy(input, a, a_len);
        memcpy(input + a_len, seed, seed_len);
        assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, digest, NULL, secret, secret_len, input,
                                  a_len + seed_len, block, sizeof(block), &block_len));
        size_t take = out_len - done < block_len ? out_len - done : block_len;
        memcpy(out + done, block, take);
        done += take;
        assert_non_null(EVP_Q_mac(NULL, "HMAC", NULL, digest, NULL, secret, secret_len, a,
                                  a_len, a, sizeof(a), &a_len)); /* A(i+1) */
    }
}

static void test_independent_p_hash_matches_published_vector(void **state)
{
    (void)state;
    unsigned char secret[16], seed[10 + 16], out[100];
    size_t secret_len = unhex(PRF_SHA256_SECRET, secret, sizeof(secret));
    memcpy(seed, "test label", 10);
    size_t seed_len = 10 + unhex(PRF_SHA256_SEED, seed + 10, sizeof(seed) - 10);
    independent_p_hash("SHA256", secret, secret_len, seed, seed_len, out, sizeof(out));
    assert_hex_equal(out, sizeof(out), PRF_SHA256_OUTPUT);
}

static void test_tls12_key_block_split(void **state)
{
    (void)state;
    static const uint16_t suites[] = { 0xC02B, 0xC02C, 0xC0AC, 0xCCA9, 0x009D };
    struct ktls_randoms randoms;
    unsigned char master[48];
    char line[256];

    for (size_t i = 0; i < sizeof(master); i++)
        master[i] = (unsigned char)(7 * i + 1);
    for (size_t i = 0; i < KTLS_KEYS_RANDOM_LEN; i++) {
        randoms.client[i] = (unsigned char)(0xA0 + i);
        randoms.server[i] = (unsigned char)(0x50 + 3 * i);
    }
    for (size_t s = 0; s < sizeof(suites) / sizeof(suites[0]); s++) {
        struct ktls_suite suite = suite_of(suites[s]);
        struct ktls_secrets secrets = { .have_client_random = 0 };
        struct ktls_keys client, server;
        size_t key_len = suite.cipher == KTLS_CIPHER_AES_128_GCM
                                 || suite.cipher == KTLS_CIPHER_AES_128_CCM ? 16 : 32;
        size_t iv_len = suite.cipher == KTLS_CIPHER_CHACHA20_POLY1305 ? 12 : 4;
        unsigned char seed[13 + 64], block[2 * 32 + 2 * 12];

        assert_int_equal(suite.tls_version, TLS1_2_VERSION);
        keylog_line(line, sizeof(line), "CLIENT_RANDOM", randoms.client, master, sizeof(master));
        assert_int_equal(ktls_keys_note_keylog_line(&secrets, line), 1);

        memcpy(seed, "key expansion", 13);
        memcpy(seed + 13, randoms.server, 32);
        memcpy(seed + 45, randoms.client, 32);
        independent_p_hash(suite.hash == KTLS_HASH_SHA384 ? "SHA384" : "SHA256", master,
                           sizeof(master), seed, sizeof(seed), block, 2 * key_len + 2 * iv_len);
        const unsigned char *client_key = block, *server_key = block + key_len;
        const unsigned char *client_iv = block + 2 * key_len;
        const unsigned char *server_iv = client_iv + iv_len;

        assert_int_equal(ktls_keys_derive(&secrets, &suite, KTLS_ROLE_CLIENT, &randoms, &client),
                         0);
        assert_int_equal(ktls_keys_derive(&secrets, &suite, KTLS_ROLE_SERVER, &randoms, &server),
                         0);
        assert_int_equal(client.tx.key_len, key_len);
        assert_int_equal(client.tx.iv_len, iv_len);
        assert_memory_equal(client.tx.key, client_key, key_len);
        assert_memory_equal(client.tx.iv, client_iv, iv_len);
        assert_memory_equal(client.rx.key, server_key, key_len);
        assert_memory_equal(client.rx.iv, server_iv, iv_len);
        assert_direction_keys_equal(&server.tx, &client.rx);
        assert_direction_keys_equal(&server.rx, &client.tx);
        ktls_keys_wipe_keys(&client);
        ktls_keys_wipe_keys(&server);
        ktls_keys_wipe(&secrets);
    }
}

/* ---- cipher suite mapping ----------------------------------------------------------- */

static void test_suite_from_iana(void **state)
{
    (void)state;
    struct ktls_suite suite;
    static const struct {
        uint16_t id;
        int version;
        enum ktls_cipher cipher;
        enum ktls_hash hash;
    } offloadable[] = {
        { 0x1301, TLS1_3_VERSION, KTLS_CIPHER_AES_128_GCM, KTLS_HASH_SHA256 },
        { 0x1302, TLS1_3_VERSION, KTLS_CIPHER_AES_256_GCM, KTLS_HASH_SHA384 },
        { 0x1303, TLS1_3_VERSION, KTLS_CIPHER_CHACHA20_POLY1305, KTLS_HASH_SHA256 },
        { 0x1304, TLS1_3_VERSION, KTLS_CIPHER_AES_128_CCM, KTLS_HASH_SHA256 },
        { 0xC02B, TLS1_2_VERSION, KTLS_CIPHER_AES_128_GCM, KTLS_HASH_SHA256 },
        { 0xC030, TLS1_2_VERSION, KTLS_CIPHER_AES_256_GCM, KTLS_HASH_SHA384 },
        { 0xCCA9, TLS1_2_VERSION, KTLS_CIPHER_CHACHA20_POLY1305, KTLS_HASH_SHA256 },
        { 0xC0AC, TLS1_2_VERSION, KTLS_CIPHER_AES_128_CCM, KTLS_HASH_SHA256 },
    };
    for (size_t i = 0; i < sizeof(offloadable) / sizeof(offloadable[0]); i++) {
        memset(&suite, 0xff, sizeof(suite));
        assert_int_equal(ktls_keys_suite_from_iana(offloadable[i].id, &suite), 0);
        assert_int_equal(suite.iana_id, offloadable[i].id);
        assert_int_equal(suite.tls_version, offloadable[i].version);
        assert_int_equal(suite.cipher, offloadable[i].cipher);
        assert_int_equal(suite.hash, offloadable[i].hash);
    }
    /* CCM_8 (1.3 and 1.2), AES-256-CCM, CBC, ARIA-GCM, NULL. */
    static const uint16_t refused[] = { 0x1305, 0xC0AE, 0xC0AD, 0x002F, 0xC027, 0xC05C, 0x0000 };
    for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++)
        assert_int_equal(ktls_keys_suite_from_iana(refused[i], &suite), -1);
    assert_int_equal(ktls_keys_suite_from_ssl_cipher(NULL, &suite), -1);
}

/* Every cipher OpenSSL knows maps as OpenSSL's own metadata says it should: AEAD cipher
 * with a 16-byte tag the kernel has -> offloadable, with the suite's handshake hash. */
static void test_suite_mapping_agrees_with_openssl(void **state)
{
    (void)state;
    SSL_CTX *ctx = SSL_CTX_new(TLS_method());
    assert_non_null(ctx);
    SSL_CTX_set_security_level(ctx, 0);
    assert_int_equal(SSL_CTX_set_cipher_list(ctx, "ALL:COMPLEMENTOFALL"), 1);
    assert_int_equal(SSL_CTX_set_ciphersuites(ctx, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:"
                                              "TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_CCM_SHA256:"
                                              "TLS_AES_128_CCM_8_SHA256"), 1);
    STACK_OF(SSL_CIPHER) *ciphers = SSL_CTX_get_ciphers(ctx);
    int offloadable = 0, refused = 0;

    for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); i++) {
        const SSL_CIPHER *cipher = sk_SSL_CIPHER_value(ciphers, i);
        const char *name = SSL_CIPHER_get_name(cipher);
        int nid = SSL_CIPHER_get_cipher_nid(cipher);
        int short_tag = strstr(name, "CCM8") != NULL || strstr(name, "CCM_8") != NULL;
        int expected = -1;
        enum ktls_cipher expected_cipher = KTLS_CIPHER_AES_128_GCM;
        if (nid == NID_aes_128_gcm) {
            expected = 0, expected_cipher = KTLS_CIPHER_AES_128_GCM;
        } else if (nid == NID_aes_256_gcm) {
            expected = 0, expected_cipher = KTLS_CIPHER_AES_256_GCM;
        } else if (nid == NID_aes_128_ccm && !short_tag) {
            expected = 0, expected_cipher = KTLS_CIPHER_AES_128_CCM;
        } else if (nid == NID_chacha20_poly1305) {
            expected = 0, expected_cipher = KTLS_CIPHER_CHACHA20_POLY1305;
        }
        struct ktls_suite suite;
        int rc = ktls_keys_suite_from_ssl_cipher(cipher, &suite);
        if (rc != expected)
            fail_msg("%s: mapped %d, expected %d", name, rc, expected);
        if (rc != 0) {
            refused++;
            continue;
        }
        offloadable++;
        assert_int_equal(suite.cipher, expected_cipher);
        int md_nid = EVP_MD_get_type(SSL_CIPHER_get_handshake_digest(cipher));
        assert_int_equal(suite.hash, md_nid == NID_sha384 ? KTLS_HASH_SHA384 : KTLS_HASH_SHA256);
        assert_true(md_nid == NID_sha384 || md_nid == NID_sha256);
        assert_int_equal(suite.tls_version, strcmp(SSL_CIPHER_get_version(cipher), "TLSv1.3") == 0
                                                ? TLS1_3_VERSION : TLS1_2_VERSION);
    }
    /* The loop must have seen both kinds in numbers, or it proved nothing. */
    assert_true(offloadable >= 30);
    assert_true(refused >= 30);
    SSL_CTX_free(ctx);
}

/* ---- keylog parsing ----------------------------------------------------------------- */

static void test_keylog_lines(void **state)
{
    (void)state;
    struct ktls_secrets secrets;
    unsigned char random[32], other_random[32], secret[48];
    char line[300];

    memset(&secrets, 0, sizeof(secrets));
    for (size_t i = 0; i < 32; i++) {
        random[i] = (unsigned char)(i + 1);
        other_random[i] = (unsigned char)(i + 2);
    }
    for (size_t i = 0; i < 48; i++)
        secret[i] = (unsigned char)(0xF0 - i);

    keylog_line(line, sizeof(line), "CLIENT_TRAFFIC_SECRET_0", random, secret, 32);
    assert_int_equal(ktls_keys_note_keylog_line(&secrets, line), 1);
    assert_int_equal(secrets.client_traffic.len, 32);
    assert_memory_equal(secrets.client_traffic.bytes, secret, 32);
    assert_true(secrets.have_client_random);
    assert_memory_equal(secrets.client_random, random, 32);

    keylog_line(line, sizeof(line), "SERVER_TRAFFIC_SECRET_0", random, secret, 48);
    assert_int_equal(ktls_keys_note_keylog_line(&secrets, line), 1);
    assert_int_equal(secrets.server_traffic.len, 48);
    assert_memory_equal(secrets.server_traffic.bytes, secret, 48);

    keylog_line(line, sizeof(line), "CLIENT_RANDOM", random, secret, 48);
    assert_int_equal(ktls_keys_note_keylog_line(&secrets, line), 1);
    assert_int_equal(secrets.master.len, 48);
    assert_memory_equal(secrets.master.bytes, secret, 48);

    /* Labels that do not matter here, even from another handshake, change nothing. */
    struct ktls_secrets before = secrets;
    static const char *const ignored[] = {
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET", "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_EARLY_TRAFFIC_SECRET", "EARLY_EXPORTER_SECRET", "EXPORTER_SECRET",
        "CLIENT_TRAFFIC_SECRET_1", "CLIENT_RANDOMX",
    };
    for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
        keylog_line(line, sizeof(line), ignored[i], other_random, secret, 32);
        assert_int_equal(ktls_keys_note_keylog_line(&secrets, line), 0);
    }
    assert_secrets_equal(&secrets, &before);

    /* A trailing newline and upper-case hex are accepted. */
    keylog_line(line, sizeof(line), "CLIENT_TRAFFIC_SECRET_0", random, secret + 1, 32);
    for (char *p = strchr(line, ' '); *p != '\0'; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    strcat(line, "\n");
    assert_int_equal(ktls_keys_note_keylog_line(&secrets, line), 1);
    assert_memory_equal(secrets.client_traffic.bytes, secret + 1, 32);

    /* Another handshake's random is refused and changes nothing. */
    before = secrets;
    keylog_line(line, sizeof(line), "SERVER_TRAFFIC_SECRET_0", other_random, secret, 32);
    assert_int_equal(ktls_keys_note_keylog_line(&secrets, line), -1);
    assert_secrets_equal(&secrets, &before);
    ktls_keys_wipe(&secrets);
    assert_true(is_all_zero(&secrets, sizeof(secrets)));
}

static void test_keylog_malformed_lines(void **state)
{
    (void)state;
    struct ktls_secrets secrets;
    unsigned char random[32], secret[48];
    char good[300], line[400];

    memset(&secrets, 0, sizeof(secrets));
    memset(random, 0x11, sizeof(random));
    memset(secret, 0x22, sizeof(secret));

    /* Secret lengths that fit no hash; a master secret must be 48 bytes. */
    keylog_line(line, sizeof(line), "CLIENT_TRAFFIC_SECRET_0", random, secret, 40);
    assert_int_equal(ktls_keys_note_keylog_line(&secrets, line), -1);
    keylog_line(line, sizeof(line), "CLIENT_RANDOM", random, secret, 32);
    assert_int_equal(ktls_keys_note_keylog_line(&secrets, line), -1);
    keylog_line(line, sizeof(line), "CLIENT_TRAFFIC_SECRET_0", random, secret, 16);
    assert_int_equal(ktls_keys_note_keylog_line(&secrets, line), -1);

    keylog_line(good, sizeof(good), "SERVER_TRAFFIC_SECRET_0", random, secret, 32);
    size_t good_len = strlen(good);
    size_t secret_at = strlen("SERVER_TRAFFIC_SECRET_0 ") + 65;

    snprintf(line, sizeof(line), "%s", good);
    line[good_len - 1] = '\0'; /* odd number of digits */
    assert_int_equal(ktls_keys_note_keylog_line(&secrets, line), -1);
    snprintf(line, sizeof(line), "%s", good);
    line[secret_at + 3] = 'g'; /* not hex */
    assert_int_equal(ktls_keys_note_keylog_line(&secrets, line), -1);
    snprintf(line, sizeof(line), "%s", good);
    line[20 + 5] = 'x'; /* bad random */
    assert_int_equal(ktls_keys_note_keylog_line(&secrets, line), -1);
    snprintf(line, sizeof(line), "%s extra", good);
    assert_int_equal(ktls_keys_note_keylog_line(&secrets, line), -1);
    snprintf(line, sizeof(line), "%s\nmore", good);
    assert_int_equal(ktls_keys_note_keylog_line(&secrets, line), -1);
    snprintf(line, sizeof(line), "%.*s", (int)(secret_at - 1), good); /* no secret */
    assert_int_equal(ktls_keys_note_keylog_line(&secrets, line), -1);
    snprintf(line, sizeof(line), "%.*s", (int)secret_at, good); /* empty secret */
    assert_int_equal(ktls_keys_note_keylog_line(&secrets, line), -1);
    snprintf(line, sizeof(line), "SERVER_TRAFFIC_SECRET_0 %s", good + secret_at); /* short random */
    assert_int_equal(ktls_keys_note_keylog_line(&secrets, line), -1);
    assert_int_equal(ktls_keys_note_keylog_line(&secrets, "CLIENT_RANDOM"), -1);
    assert_int_equal(ktls_keys_note_keylog_line(&secrets, ""), -1);

    /* None of it stored anything. */
    assert_true(is_all_zero(&secrets, sizeof(secrets)));
    assert_int_equal(ktls_keys_note_keylog_line(&secrets, good), 1);
}

/* Error paths log a reason, never the secret: capture stderr and look. */
static void test_errors_never_log_secrets(void **state)
{
    (void)state;
    struct ktls_secrets secrets;
    struct ktls_randoms randoms;
    struct ktls_keys keys;
    unsigned char random[32], secret[48];
    char line[300], secret_hex[97];
    char path[] = "/tmp/test_ktls_keys_log_XXXXXX";

    memset(&secrets, 0, sizeof(secrets));
    memset(random, 0x33, sizeof(random));
    for (size_t i = 0; i < 48; i++)
        secret[i] = (unsigned char)(0x5A ^ i);
    hex_of(secret, 40, secret_hex);

    int log_fd = mkstemp(path);
    assert_true(log_fd >= 0);
    fflush(stderr);
    int saved = dup(STDERR_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(log_fd, STDERR_FILENO) >= 0);

    keylog_line(line, sizeof(line), "CLIENT_TRAFFIC_SECRET_0", random, secret, 40);
    int bad_length = ktls_keys_note_keylog_line(&secrets, line);
    keylog_line(line, sizeof(line), "CLIENT_TRAFFIC_SECRET_0", random, secret, 32);
    int stored = ktls_keys_note_keylog_line(&secrets, line);
    memset(&randoms, 0, sizeof(randoms));
    memcpy(randoms.client, random, 32);
    struct ktls_suite sha384_suite = suite_of(0x1302);
    int missing = ktls_keys_derive(&secrets, &sha384_suite, KTLS_ROLE_CLIENT, &randoms, &keys);

    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    char logged[4096];
    ssize_t n = pread(log_fd, logged, sizeof(logged) - 1, 0);
    close(log_fd);
    unlink(path);

    assert_int_equal(bad_length, -1);
    assert_int_equal(stored, 1);
    assert_int_equal(missing, -1);
    assert_true(n > 0);
    logged[n] = '\0';
    assert_non_null(strstr(logged, "CLIENT_TRAFFIC_SECRET_0 keylog line"));
    assert_non_null(strstr(logged, "never reached the keylog callback"));
    /* Neither the secret's hex nor any 8-digit run of it. */
    for (size_t i = 0; i + 8 <= 64; i += 2) {
        char piece[9];
        memcpy(piece, secret_hex + i, 8);
        piece[8] = '\0';
        assert_null(strstr(logged, piece));
    }
    ktls_keys_wipe(&secrets);
}

/* ---- derivation errors ---------------------------------------------------------------- */

static void test_derive_refuses_what_does_not_fit(void **state)
{
    (void)state;
    struct ktls_secrets secrets;
    struct ktls_randoms randoms;
    struct ktls_keys keys;
    struct ktls_suite tls13 = suite_of(0x1301), tls13_sha384 = suite_of(0x1302);
    struct ktls_suite tls12 = suite_of(0xC02B);

    /* No secrets at all. */
    memset(&secrets, 0, sizeof(secrets));
    memset(&randoms, 0, sizeof(randoms));
    memset(&keys, 0xAA, sizeof(keys));
    assert_int_equal(ktls_keys_derive(&secrets, &tls13, KTLS_ROLE_CLIENT, &randoms, &keys), -1);
    assert_true(is_all_zero(&keys, sizeof(keys)));

    note_rfc8448_secrets(&secrets, &randoms);
    /* SHA-256-sized secrets for a SHA-384 suite. */
    memset(&keys, 0xAA, sizeof(keys));
    assert_int_equal(ktls_keys_derive(&secrets, &tls13_sha384, KTLS_ROLE_CLIENT, &randoms, &keys),
                     -1);
    assert_true(is_all_zero(&keys, sizeof(keys)));
    /* A TLS 1.2 suite but only TLS 1.3 secrets. */
    assert_int_equal(ktls_keys_derive(&secrets, &tls12, KTLS_ROLE_CLIENT, &randoms, &keys), -1);
    /* Another connection's randoms. */
    randoms.client[31] ^= 1;
    assert_int_equal(ktls_keys_derive(&secrets, &tls13, KTLS_ROLE_CLIENT, &randoms, &keys), -1);
    randoms.client[31] ^= 1;
    assert_int_equal(ktls_keys_derive(&secrets, &tls13, KTLS_ROLE_CLIENT, &randoms, &keys), 0);
    /* Only one direction's secret. */
    memset(&secrets.server_traffic, 0, sizeof(secrets.server_traffic));
    assert_int_equal(ktls_keys_derive(&secrets, &tls13, KTLS_ROLE_CLIENT, &randoms, &keys), -1);
    /* A version that is not 1.2 or 1.3. */
    struct ktls_suite odd = tls12;
    odd.tls_version = TLS1_1_VERSION;
    assert_int_equal(ktls_keys_derive(&secrets, &odd, KTLS_ROLE_CLIENT, &randoms, &keys), -1);
    ktls_keys_wipe(&secrets);
}

/* ---- end to end: real OpenSSL handshakes in memory ------------------------------------ */

static EVP_PKEY *test_key;
static X509 *test_cert;

static int make_certificate(void **state)
{
    (void)state;
    test_key = EVP_EC_gen("P-256");
    test_cert = X509_new();
    if (test_key == NULL || test_cert == NULL)
        return -1;
    X509_NAME *name = X509_NAME_new();
    if (name == NULL
        || !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                       (const unsigned char *)"ktls-keys-test", -1, -1, 0)
        || !X509_set_version(test_cert, 2)
        || !ASN1_INTEGER_set(X509_get_serialNumber(test_cert), 1)
        || X509_gmtime_adj(X509_getm_notBefore(test_cert), -60) == NULL
        || X509_gmtime_adj(X509_getm_notAfter(test_cert), 3600) == NULL
        || !X509_set_subject_name(test_cert, name) || !X509_set_issuer_name(test_cert, name)
        || !X509_set_pubkey(test_cert, test_key)
        || X509_sign(test_cert, test_key, EVP_sha256()) <= 0) {
        X509_NAME_free(name);
        return -1;
    }
    X509_NAME_free(name);
    return 0;
}

static int free_certificate(void **state)
{
    (void)state;
    X509_free(test_cert);
    EVP_PKEY_free(test_key);
    return 0;
}

struct peer {
    SSL_CTX *ctx;
    SSL *ssl;
    struct ktls_secrets secrets;
    int keylog_failures;
};

static void keylog_callback(const SSL *ssl, const char *line)
{
    struct peer *peer = SSL_get_app_data(ssl);
    if (ktls_keys_note_keylog_line(&peer->secrets, line) < 0)
        peer->keylog_failures++;
}

struct e2e_case {
    int version;
    const char *cipher;           /* ciphersuites (1.3) or cipher list (1.2) */
    enum ktls_cipher expected;
};

static void peer_start(struct peer *peer, int server, const struct e2e_case *c)
{
    memset(peer, 0, sizeof(*peer));
    peer->ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    assert_non_null(peer->ctx);
    assert_int_equal(SSL_CTX_set_min_proto_version(peer->ctx, c->version), 1);
    assert_int_equal(SSL_CTX_set_max_proto_version(peer->ctx, c->version), 1);
    if (c->version == TLS1_3_VERSION)
        assert_int_equal(SSL_CTX_set_ciphersuites(peer->ctx, c->cipher), 1);
    else
        assert_int_equal(SSL_CTX_set_cipher_list(peer->ctx, c->cipher), 1);
    /* What the daemon does: no tickets, so sequence numbers are known after the
     * handshake (DESIGN.md, "kTLS handoff"). */
    SSL_CTX_set_options(peer->ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_keylog_callback(peer->ctx, keylog_callback);
    if (server) {
        assert_int_equal(SSL_CTX_set_num_tickets(peer->ctx, 0), 1);
        assert_int_equal(SSL_CTX_use_certificate(peer->ctx, test_cert), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey(peer->ctx, test_key), 1);
    } else {
        SSL_CTX_set_verify(peer->ctx, SSL_VERIFY_NONE, NULL);
    }
    peer->ssl = SSL_new(peer->ctx);
    assert_non_null(peer->ssl);
    SSL_set_app_data(peer->ssl, peer);
    BIO *rbio = BIO_new(BIO_s_mem()), *wbio = BIO_new(BIO_s_mem());
    assert_non_null(rbio);
    assert_non_null(wbio);
    BIO_set_mem_eof_return(rbio, -1);
    BIO_set_mem_eof_return(wbio, -1);
    SSL_set_bio(peer->ssl, rbio, wbio);
    if (server)
        SSL_set_accept_state(peer->ssl);
    else
        SSL_set_connect_state(peer->ssl);
}

static void peer_free(struct peer *peer)
{
    SSL_free(peer->ssl);
    SSL_CTX_free(peer->ctx);
    ktls_keys_wipe(&peer->secrets);
}

/* Takes everything FROM has written; returns the byte count. */
static size_t take_output(struct peer *from, unsigned char *out, size_t cap)
{
    size_t total = 0;
    int n;
    while ((n = BIO_read(SSL_get_wbio(from->ssl), out + total, (int)(cap - total))) > 0)
        total += (size_t)n;
    return total;
}

static void pump(struct peer *from, struct peer *to)
{
    unsigned char buffer[32768];
    size_t n = take_output(from, buffer, sizeof(buffer));
    if (n > 0)
        assert_int_equal(BIO_write(SSL_get_rbio(to->ssl), buffer, (int)n), (int)n);
}

static int handshake_step(struct peer *peer)
{
    int rc = SSL_do_handshake(peer->ssl);
    if (rc == 1)
        return 1;
    assert_int_equal(SSL_get_error(peer->ssl, rc), SSL_ERROR_WANT_READ);
    return 0;
}

static void handshake(struct peer *client, struct peer *server)
{
    int client_done = 0, server_done = 0;
    for (int round = 0; round < 20 && !(client_done && server_done); round++) {
        if (!client_done)
            client_done = handshake_step(client);
        pump(client, server);
        if (!server_done)
            server_done = handshake_step(server);
        pump(server, client);
    }
    assert_true(client_done && server_done);
}

/* Writes MESSAGE on FROM and returns the single record it produced. */
static size_t write_record(struct peer *from, const char *message, unsigned char *record,
                           size_t cap)
{
    assert_int_equal(SSL_write(from->ssl, message, (int)strlen(message)), (int)strlen(message));
    size_t n = take_output(from, record, cap);
    assert_true(n > RECORD_HEADER_LEN);
    assert_int_equal(n, RECORD_HEADER_LEN + ((size_t)record[3] << 8 | record[4]));
    return n;
}

/* Checks RECORD (the N-th application record, sequence SEQUENCE) opens with the
 * sender's tx keys, with the receiver's rx keys through a crypto_info filled for
 * TLS_RX, and with the sender's keys through a crypto_info filled for TLS_TX; and
 * that the wrong sequence number does not open it. */
static void check_record(const struct ktls_keys *sender, const struct ktls_keys *receiver,
                         uint64_t sequence, const unsigned char *record, size_t record_len,
                         const char *message)
{
    unsigned char plain[1024];
    struct ktls_crypto_info info;
    const void *optval;
    socklen_t optlen;
    size_t message_len = strlen(message);

    assert_int_equal(open_record_with_keys(&sender->suite, &sender->tx, sequence, record,
                                           record_len, plain), (long)message_len);
    assert_memory_equal(plain, message, message_len);
    assert_int_equal(open_record_with_keys(&sender->suite, &sender->tx, sequence + 1, record,
                                           record_len, plain), -1);

    assert_int_equal(ktls_crypto_info_fill(&info, &receiver->suite, &receiver->rx, sequence,
                                           &optval, &optlen), 0);
    assert_ptr_equal(optval, &info.u);
    assert_int_equal(open_record_as_kernel(&info, record, record_len, plain), (long)message_len);
    assert_memory_equal(plain, message, message_len);

    assert_int_equal(ktls_crypto_info_fill(&info, &sender->suite, &sender->tx, sequence,
                                           &optval, &optlen), 0);
    assert_int_equal(open_record_as_kernel(&info, record, record_len, plain), (long)message_len);
    assert_memory_equal(plain, message, message_len);
    if (sender->suite.tls_version == TLS1_2_VERSION
        && sender->suite.cipher != KTLS_CIPHER_CHACHA20_POLY1305) {
        /* Sending, the kernel puts iv on the wire as the explicit nonce: it must
         * count with the sequence number. */
        unsigned char rec_seq[8];
        store_be64(rec_seq, sequence);
        const unsigned char *explicit_iv = info.u.info.cipher_type == TLS_CIPHER_AES_GCM_256
                                               ? info.u.aes_gcm_256.iv
                                           : info.u.info.cipher_type == TLS_CIPHER_AES_CCM_128
                                               ? info.u.aes_ccm_128.iv
                                               : info.u.aes_gcm_128.iv;
        assert_memory_equal(explicit_iv, rec_seq, 8);
    }
    ktls_crypto_info_wipe(&info);
}

static void run_end_to_end(const struct e2e_case *c)
{
    struct peer client, server;
    struct ktls_suite suite, server_suite;
    struct ktls_randoms client_randoms, server_randoms;
    struct ktls_keys client_keys, server_keys;
    unsigned char record[4096], plain[1024];
    size_t record_len;
    char received[64];

    peer_start(&client, 0, c);
    peer_start(&server, 1, c);
    handshake(&client, &server);

    assert_int_equal(SSL_version(client.ssl), c->version);
    assert_int_equal(SSL_has_pending(client.ssl), 0);
    assert_int_equal(SSL_has_pending(server.ssl), 0);
    assert_int_equal(client.keylog_failures, 0);
    assert_int_equal(server.keylog_failures, 0);

    assert_int_equal(ktls_keys_suite_from_ssl_cipher(SSL_get_current_cipher(client.ssl),
                                                     &suite), 0);
    assert_int_equal(ktls_keys_suite_from_ssl_cipher(SSL_get_current_cipher(server.ssl),
                                                     &server_suite), 0);
    assert_int_equal(suite.cipher, c->expected);
    assert_int_equal(suite.tls_version, c->version);
    assert_int_equal(suite.iana_id, server_suite.iana_id);
    assert_int_equal(suite.tls_version, server_suite.tls_version);
    assert_int_equal(suite.cipher, server_suite.cipher);
    assert_int_equal(suite.hash, server_suite.hash);

    assert_int_equal(ktls_keys_randoms_from_ssl(client.ssl, &client_randoms), 0);
    assert_int_equal(ktls_keys_randoms_from_ssl(server.ssl, &server_randoms), 0);
    assert_memory_equal(&client_randoms, &server_randoms, sizeof(client_randoms));

    assert_int_equal(ktls_keys_derive(&client.secrets, &suite, KTLS_ROLE_CLIENT, &client_randoms,
                                      &client_keys), 0);
    assert_int_equal(ktls_keys_derive(&server.secrets, &suite, KTLS_ROLE_SERVER, &server_randoms,
                                      &server_keys), 0);
    /* Symmetric... */
    assert_direction_keys_equal(&client_keys.tx, &server_keys.rx);
    assert_direction_keys_equal(&client_keys.rx, &server_keys.tx);
    assert_memory_not_equal(client_keys.tx.key, client_keys.rx.key, client_keys.tx.key_len);
    assert_int_equal(client_keys.tx.iv_len,
                     c->version == TLS1_2_VERSION && c->expected != KTLS_CIPHER_CHACHA20_POLY1305
                         ? 4 : 12);

    /* ...and right: OpenSSL's own records open with them. TLS 1.3 application records
     * start at 0; in TLS 1.2 each side's Finished took sequence 0. */
    uint64_t first = c->version == TLS1_3_VERSION ? 0 : 1;
    static const char *const upstream[] = { "GET / HTTP/1.0\r\n\r\n", "second record, client" };
    static const char *const downstream[] = { "HTTP/1.0 200 OK\r\n\r\nhello", "second, server" };
    for (uint64_t i = 0; i < 2; i++) {
        record_len = write_record(&client, upstream[i], record, sizeof(record));
        check_record(&client_keys, &server_keys, first + i, record, record_len, upstream[i]);
        /* OpenSSL on the other side agrees it is a fine record. */
        assert_int_equal(BIO_write(SSL_get_rbio(server.ssl), record, (int)record_len),
                         (int)record_len);
        int n = SSL_read(server.ssl, received, sizeof(received));
        assert_int_equal(n, (int)strlen(upstream[i]));
        assert_memory_equal(received, upstream[i], (size_t)n);

        record_len = write_record(&server, downstream[i], record, sizeof(record));
        check_record(&server_keys, &client_keys, first + i, record, record_len, downstream[i]);
    }
    /* A flipped bit in the last record is caught: the check above can fail. */
    record[record_len - 1] ^= 1;
    assert_int_equal(open_record_with_keys(&suite, &client_keys.rx, first + 1, record, record_len,
                                           plain), -1);

    ktls_keys_wipe_keys(&client_keys);
    ktls_keys_wipe_keys(&server_keys);
    peer_free(&client);
    peer_free(&server);
}

static const struct e2e_case tls13_aes_128_gcm = {
    TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", KTLS_CIPHER_AES_128_GCM };
static const struct e2e_case tls13_aes_256_gcm = {
    TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384", KTLS_CIPHER_AES_256_GCM };
static const struct e2e_case tls13_chacha20 = {
    TLS1_3_VERSION, "TLS_CHACHA20_POLY1305_SHA256", KTLS_CIPHER_CHACHA20_POLY1305 };
static const struct e2e_case tls13_aes_128_ccm = {
    TLS1_3_VERSION, "TLS_AES_128_CCM_SHA256", KTLS_CIPHER_AES_128_CCM };
static const struct e2e_case tls12_aes_128_gcm = {
    TLS1_2_VERSION, "ECDHE-ECDSA-AES128-GCM-SHA256", KTLS_CIPHER_AES_128_GCM };
static const struct e2e_case tls12_aes_256_gcm = {
    TLS1_2_VERSION, "ECDHE-ECDSA-AES256-GCM-SHA384", KTLS_CIPHER_AES_256_GCM };
static const struct e2e_case tls12_chacha20 = {
    TLS1_2_VERSION, "ECDHE-ECDSA-CHACHA20-POLY1305", KTLS_CIPHER_CHACHA20_POLY1305 };
static const struct e2e_case tls12_aes_128_ccm = {
    TLS1_2_VERSION, "ECDHE-ECDSA-AES128-CCM", KTLS_CIPHER_AES_128_CCM };

static void test_e2e_tls13_aes_128_gcm(void **state)
{
    (void)state;
    run_end_to_end(&tls13_aes_128_gcm);
}

static void test_e2e_tls13_aes_256_gcm(void **state)
{
    (void)state;
    run_end_to_end(&tls13_aes_256_gcm);
}

static void test_e2e_tls13_chacha20_poly1305(void **state)
{
    (void)state;
    run_end_to_end(&tls13_chacha20);
}

static void test_e2e_tls13_aes_128_ccm(void **state)
{
    (void)state;
    run_end_to_end(&tls13_aes_128_ccm);
}

static void test_e2e_tls12_ecdhe_ecdsa_aes128_gcm(void **state)
{
    (void)state;
    run_end_to_end(&tls12_aes_128_gcm);
}

static void test_e2e_tls12_ecdhe_ecdsa_aes256_gcm_sha384(void **state)
{
    (void)state;
    run_end_to_end(&tls12_aes_256_gcm);
}

static void test_e2e_tls12_ecdhe_ecdsa_chacha20_poly1305(void **state)
{
    (void)state;
    run_end_to_end(&tls12_chacha20);
}

static void test_e2e_tls12_ecdhe_ecdsa_aes128_ccm(void **state)
{
    (void)state;
    run_end_to_end(&tls12_aes_128_ccm);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc8448_handshake_traffic_keys),
        cmocka_unit_test(test_rfc8448_application_keys_both_roles),
        cmocka_unit_test(test_rfc8448_records_decrypt),
        cmocka_unit_test(test_traffic_update_matches_independent_hkdf),
        cmocka_unit_test(test_key_update_replaces_one_direction),
        cmocka_unit_test(test_tls12_prf_published_vectors),
        cmocka_unit_test(test_independent_p_hash_matches_published_vector),
        cmocka_unit_test(test_tls12_key_block_split),
        cmocka_unit_test(test_suite_from_iana),
        cmocka_unit_test(test_suite_mapping_agrees_with_openssl),
        cmocka_unit_test(test_keylog_lines),
        cmocka_unit_test(test_keylog_malformed_lines),
        cmocka_unit_test(test_errors_never_log_secrets),
        cmocka_unit_test(test_derive_refuses_what_does_not_fit),
        cmocka_unit_test(test_e2e_tls13_aes_128_gcm),
        cmocka_unit_test(test_e2e_tls13_aes_256_gcm),
        cmocka_unit_test(test_e2e_tls13_chacha20_poly1305),
        cmocka_unit_test(test_e2e_tls13_aes_128_ccm),
        cmocka_unit_test(test_e2e_tls12_ecdhe_ecdsa_aes128_gcm),
        cmocka_unit_test(test_e2e_tls12_ecdhe_ecdsa_aes256_gcm_sha384),
        cmocka_unit_test(test_e2e_tls12_ecdhe_ecdsa_chacha20_poly1305),
        cmocka_unit_test(test_e2e_tls12_ecdhe_ecdsa_aes128_ccm),
    };
    log_init("test_ktls_keys", LOG_LEVEL_ERROR);
    return cmocka_run_group_tests(tests, make_certificate, free_certificate);
}
