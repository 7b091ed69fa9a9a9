#include "ktls/ktls_keys.h"

#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

#include "core/log.h"
#include "core/text.h"

/* TLS 1.2 AES-GCM/CCM: 4-byte implicit IV (RFC 5288, RFC 6655). ChaCha20-Poly1305 in
 * TLS 1.2 and every TLS 1.3 cipher: a 12-byte IV XORed with the sequence number. */
#define TLS12_IMPLICIT_IV_LEN 4
#define FULL_IV_LEN           12

struct suite_entry {
    uint16_t iana_id;
    enum ktls_cipher cipher;
    enum ktls_hash hash;
};

/* Every suite OpenSSL 3.0 implements whose record protection the kernel offloads.
 * Missing on purpose: CCM_8 (8-byte tag), AES-256-CCM and ARIA (no kernel cipher),
 * everything CBC (the kernel's TLS ULP is AEAD only). */
static const struct suite_entry offloadable_suites[] = {
    /* TLS 1.3 (RFC 8446) */
    { 0x1301, KTLS_CIPHER_AES_128_GCM, KTLS_HASH_SHA256 },
    { 0x1302, KTLS_CIPHER_AES_256_GCM, KTLS_HASH_SHA384 },
    { 0x1303, KTLS_CIPHER_CHACHA20_POLY1305, KTLS_HASH_SHA256 },
    { 0x1304, KTLS_CIPHER_AES_128_CCM, KTLS_HASH_SHA256 },
    /* TLS 1.2 AES-GCM (RFC 5288, 5289, 5487) */
    { 0x009C, KTLS_CIPHER_AES_128_GCM, KTLS_HASH_SHA256 }, /* RSA */
    { 0x009D, KTLS_CIPHER_AES_256_GCM, KTLS_HASH_SHA384 },
    { 0x009E, KTLS_CIPHER_AES_128_GCM, KTLS_HASH_SHA256 }, /* DHE-RSA */
    { 0x009F, KTLS_CIPHER_AES_256_GCM, KTLS_HASH_SHA384 },
    { 0x00A2, KTLS_CIPHER_AES_128_GCM, KTLS_HASH_SHA256 }, /* DHE-DSS */
    { 0x00A3, KTLS_CIPHER_AES_256_GCM, KTLS_HASH_SHA384 },
    { 0x00A6, KTLS_CIPHER_AES_128_GCM, KTLS_HASH_SHA256 }, /* DH-anon */
    { 0x00A7, KTLS_CIPHER_AES_256_GCM, KTLS_HASH_SHA384 },
    { 0x00A8, KTLS_CIPHER_AES_128_GCM, KTLS_HASH_SHA256 }, /* PSK */
    { 0x00A9, KTLS_CIPHER_AES_256_GCM, KTLS_HASH_SHA384 },
    { 0x00AA, KTLS_CIPHER_AES_128_GCM, KTLS_HASH_SHA256 }, /* DHE-PSK */
    { 0x00AB, KTLS_CIPHER_AES_256_GCM, KTLS_HASH_SHA384 },
    { 0x00AC, KTLS_CIPHER_AES_128_GCM, KTLS_HASH_SHA256 }, /* RSA-PSK */
    { 0x00AD, KTLS_CIPHER_AES_256_GCM, KTLS_HASH_SHA384 },
    { 0xC02B, KTLS_CIPHER_AES_128_GCM, KTLS_HASH_SHA256 }, /* ECDHE-ECDSA */
    { 0xC02C, KTLS_CIPHER_AES_256_GCM, KTLS_HASH_SHA384 },
    { 0xC02F, KTLS_CIPHER_AES_128_GCM, KTLS_HASH_SHA256 }, /* ECDHE-RSA */
    { 0xC030, KTLS_CIPHER_AES_256_GCM, KTLS_HASH_SHA384 },
    /* TLS 1.2 AES-128-CCM with a 16-byte tag (RFC 6655, 7251) */
    { 0xC09C, KTLS_CIPHER_AES_128_CCM, KTLS_HASH_SHA256 }, /* RSA */
    { 0xC09E, KTLS_CIPHER_AES_128_CCM, KTLS_HASH_SHA256 }, /* DHE-RSA */
    { 0xC0A4, KTLS_CIPHER_AES_128_CCM, KTLS_HASH_SHA256 }, /* PSK */
    { 0xC0A6, KTLS_CIPHER_AES_128_CCM, KTLS_HASH_SHA256 }, /* DHE-PSK */
    { 0xC0AC, KTLS_CIPHER_AES_128_CCM, KTLS_HASH_SHA256 }, /* ECDHE-ECDSA */
    /* TLS 1.2 ChaCha20-Poly1305 (RFC 7905) */
    { 0xCCA8, KTLS_CIPHER_CHACHA20_POLY1305, KTLS_HASH_SHA256 }, /* ECDHE-RSA */
    { 0xCCA9, KTLS_CIPHER_CHACHA20_POLY1305, KTLS_HASH_SHA256 }, /* ECDHE-ECDSA */
    { 0xCCAA, KTLS_CIPHER_CHACHA20_POLY1305, KTLS_HASH_SHA256 }, /* DHE-RSA */
    { 0xCCAB, KTLS_CIPHER_CHACHA20_POLY1305, KTLS_HASH_SHA256 }, /* PSK */
    { 0xCCAC, KTLS_CIPHER_CHACHA20_POLY1305, KTLS_HASH_SHA256 }, /* ECDHE-PSK */
    { 0xCCAD, KTLS_CIPHER_CHACHA20_POLY1305, KTLS_HASH_SHA256 }, /* DHE-PSK */
    { 0xCCAE, KTLS_CIPHER_CHACHA20_POLY1305, KTLS_HASH_SHA256 }, /* RSA-PSK */
};

int ktls_keys_suite_from_iana(uint16_t iana_id, struct ktls_suite *suite)
{
    for (size_t i = 0; i < sizeof(offloadable_suites) / sizeof(offloadable_suites[0]); i++) {
        const struct suite_entry *entry = &offloadable_suites[i];
        if (entry->iana_id != iana_id)
            continue;
        suite->iana_id = iana_id;
        suite->tls_version = (iana_id >> 8) == 0x13 ? TLS1_3_VERSION : TLS1_2_VERSION;
        suite->cipher = entry->cipher;
        suite->hash = entry->hash;
        return 0;
    }
    return -1;
}

int ktls_keys_suite_from_ssl_cipher(const SSL_CIPHER *cipher, struct ktls_suite *suite)
{
    if (cipher == NULL)
        return -1;
    return ktls_keys_suite_from_iana(SSL_CIPHER_get_protocol_id(cipher), suite);
}

static size_t hash_length(enum ktls_hash hash)
{
    return hash == KTLS_HASH_SHA384 ? 48 : 32;
}

static const char *hash_name(enum ktls_hash hash)
{
    return hash == KTLS_HASH_SHA384 ? OSSL_DIGEST_NAME_SHA2_384 : OSSL_DIGEST_NAME_SHA2_256;
}

/* 0 for a cipher outside the enum, so callers reject it. */
static size_t cipher_key_length(enum ktls_cipher cipher)
{
    switch (cipher) {
    case KTLS_CIPHER_AES_128_GCM:
    case KTLS_CIPHER_AES_128_CCM:
        return 16;
    case KTLS_CIPHER_AES_256_GCM:
    case KTLS_CIPHER_CHACHA20_POLY1305:
        return 32;
    }
    return 0;
}

static size_t tls12_iv_length(enum ktls_cipher cipher)
{
    return cipher == KTLS_CIPHER_CHACHA20_POLY1305 ? FULL_IV_LEN : TLS12_IMPLICIT_IV_LEN;
}

/* The KDF named NAME, fetched once per process: a fetch looks through the provider
 * store under its lock, and every offload and rekey derives four keys. Kept until
 * the process exits. Returns NULL after logging when OpenSSL has none. */
static EVP_KDF *kdf_named(const char *name)
{
    static struct { const char *name; EVP_KDF *kdf; } fetched[4];   /* two are used */
    for (size_t i = 0; i < sizeof(fetched) / sizeof(fetched[0]); i++) {
        if (fetched[i].name != NULL && strcmp(fetched[i].name, name) == 0)
            return fetched[i].kdf;
        if (fetched[i].name == NULL) {
            EVP_KDF *kdf = EVP_KDF_fetch(NULL, name, NULL);
            if (kdf == NULL) {
                log_openssl(LOG_LEVEL_ERROR, "kTLS: OpenSSL offers no %s key derivation", name);
                return NULL;
            }
            fetched[i].name = name;
            fetched[i].kdf = kdf;
            return kdf;
        }
    }
    log_error("kTLS: no room to keep the %s key derivation", name);
    return NULL;
}

/* Runs the EVP_KDF KDF_NAME with PARAMS into OUT; OUT is wiped on failure. */
static int run_kdf(const char *kdf_name, const OSSL_PARAM *params, unsigned char *out,
                   size_t out_len)
{
    int rc = -1;
    EVP_KDF_CTX *kdf_ctx = NULL;
    EVP_KDF *kdf = kdf_named(kdf_name);
    if (kdf == NULL)
        goto out;
    kdf_ctx = EVP_KDF_CTX_new(kdf);
    if (kdf_ctx == NULL) {
        log_openssl(LOG_LEVEL_ERROR, "kTLS: cannot set up %s", kdf_name);
        goto out;
    }
    if (EVP_KDF_derive(kdf_ctx, out, out_len, params) <= 0) {
        log_openssl(LOG_LEVEL_ERROR, "kTLS: %s key derivation failed", kdf_name);
        goto free_ctx;
    }
    rc = 0;
free_ctx:
    /* The provider context holds a copy of the secret; freeing it clears that copy. */
    EVP_KDF_CTX_free(kdf_ctx);
out:
    if (rc != 0)
        OPENSSL_cleanse(out, out_len);
    return rc;
}

/* HKDF-Expand-Label(SECRET, LABEL, "", OUT_LEN) of RFC 8446 section 7.1. */
static int expand_label(enum ktls_hash hash, const unsigned char *secret, size_t secret_len,
                        const char *label, unsigned char *out, size_t out_len)
{
    static const char prefix[] = "tls13 ";
    static const unsigned char empty_context[1];
    int mode = EVP_KDF_HKDF_MODE_EXPAND_ONLY;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_int(OSSL_KDF_PARAM_MODE, &mode),
        OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST, (char *)hash_name(hash), 0),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_KEY, (void *)secret, secret_len),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PREFIX, (void *)prefix,
                                          sizeof(prefix) - 1),
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_LABEL, (void *)label, strlen(label)),
        /* A non-NULL pointer: OpenSSL refuses a NULL octet string even of length 0. */
        OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_DATA, (void *)empty_context, 0),
        OSSL_PARAM_construct_end(),
    };
    return run_kdf(OSSL_KDF_NAME_TLS1_3_KDF, params, out, out_len);
}

int ktls_keys_tls13_traffic_keys(const struct ktls_suite *suite, const unsigned char *secret,
                                 size_t secret_len, struct ktls_direction_keys *out)
{
    int rc = -1;
    size_t key_len = cipher_key_length(suite->cipher);

    memset(out, 0, sizeof(*out));
    if (key_len == 0 || secret_len != hash_length(suite->hash)) {
        log_error("kTLS: a %zu-byte traffic secret does not fit cipher suite 0x%04x",
                  secret_len, suite->iana_id);
        goto out;
    }
    if (expand_label(suite->hash, secret, secret_len, "key", out->key, key_len) != 0)
        goto out;
    if (expand_label(suite->hash, secret, secret_len, "iv", out->iv, FULL_IV_LEN) != 0)
        goto out;
    out->key_len = key_len;
    out->iv_len = FULL_IV_LEN;
    rc = 0;
out:
    if (rc != 0)
        OPENSSL_cleanse(out, sizeof(*out));
    return rc;
}

int ktls_keys_tls13_next_secret(enum ktls_hash hash, const unsigned char *secret,
                                size_t secret_len, unsigned char *next, size_t next_len)
{
    size_t length = hash_length(hash);
    if (secret_len != length || next_len != length) {
        log_error("kTLS: a %zu-byte traffic secret does not fit the suite's hash", secret_len);
        OPENSSL_cleanse(next, next_len);
        return -1;
    }
    return expand_label(hash, secret, secret_len, "traffic upd", next, next_len);
}

/* PRF(SECRET, LABEL, SEED_A + SEED_B): TLS1-PRF concatenates repeated seed parameters. */
static int tls12_prf(enum ktls_hash hash, const unsigned char *secret, size_t secret_len,
                     const char *label, const unsigned char *seed_a, size_t seed_a_len,
                     const unsigned char *seed_b, size_t seed_b_len, unsigned char *out,
                     size_t out_len)
{
    OSSL_PARAM params[6];
    size_t n = 0;

    params[n++] = OSSL_PARAM_construct_utf8_string(OSSL_KDF_PARAM_DIGEST,
                                                   (char *)hash_name(hash), 0);
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SECRET, (void *)secret,
                                                    secret_len);
    params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, (void *)label,
                                                    strlen(label));
    if (seed_a_len > 0)
        params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, (void *)seed_a,
                                                        seed_a_len);
    if (seed_b_len > 0)
        params[n++] = OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SEED, (void *)seed_b,
                                                        seed_b_len);
    params[n] = OSSL_PARAM_construct_end();
    return run_kdf(OSSL_KDF_NAME_TLS1_PRF, params, out, out_len);
}

int ktls_keys_tls12_prf(enum ktls_hash hash, const unsigned char *secret, size_t secret_len,
                        const char *label, const unsigned char *seed, size_t seed_len,
                        unsigned char *out, size_t out_len)
{
    return tls12_prf(hash, secret, secret_len, label, seed, seed_len, NULL, 0, out, out_len);
}

/* The slot a keylog label fills, or NULL for labels ktlstun has no use for. */
static struct ktls_secret *slot_for_label(struct ktls_secrets *secrets, const char *label,
                                          size_t label_len, int *is_master)
{
    static const char client_traffic[] = "CLIENT_TRAFFIC_SECRET_0";
    static const char server_traffic[] = "SERVER_TRAFFIC_SECRET_0";
    static const char client_random[] = "CLIENT_RANDOM";

    *is_master = 0;
    if (label_len == sizeof(client_traffic) - 1 && memcmp(label, client_traffic, label_len) == 0)
        return &secrets->client_traffic;
    if (label_len == sizeof(server_traffic) - 1 && memcmp(label, server_traffic, label_len) == 0)
        return &secrets->server_traffic;
    if (label_len == sizeof(client_random) - 1 && memcmp(label, client_random, label_len) == 0) {
        *is_master = 1;
        return &secrets->master;
    }
    return NULL;
}

int ktls_keys_note_keylog_line(struct ktls_secrets *secrets, const char *line)
{
    int rc = -1;
    int is_master = 0;
    struct ktls_secret *slot = NULL;
    unsigned char random[KTLS_KEYS_RANDOM_LEN];
    struct ktls_secret parsed = { .len = 0 };
    const char *label_end, *random_hex, *random_end, *secret_hex;
    size_t label_len, secret_hex_len;
    long secret_len;

    label_end = strchr(line, ' ');
    if (label_end == NULL) {
        log_error("kTLS: OpenSSL's keylog line has no fields; cannot hand keys to the kernel");
        goto out;
    }
    label_len = (size_t)(label_end - line);
    slot = slot_for_label(secrets, line, label_len, &is_master);
    if (slot == NULL) {
        rc = 0;
        goto out;
    }
    random_hex = label_end + 1;
    random_end = strchr(random_hex, ' ');
    if (random_end == NULL
        || text_hex_decode(random_hex, (size_t)(random_end - random_hex), random, sizeof(random))
               != (long)sizeof(random)) {
        log_error("kTLS: the client random in the %.*s keylog line is malformed; cannot hand "
                  "keys to the kernel", (int)label_len, line);
        goto out;
    }
    secret_hex = random_end + 1;
    /* OpenSSL passes the line without a newline; tolerate one from other producers. */
    secret_hex_len = strcspn(secret_hex, "\r\n");
    secret_len = -1;
    if (secret_hex[secret_hex_len + strspn(secret_hex + secret_hex_len, "\r\n")] == '\0')
        secret_len = text_hex_decode(secret_hex, secret_hex_len, parsed.bytes, sizeof(parsed.bytes));
    if (is_master ? secret_len != KTLS_KEYS_MAX_SECRET_LEN
                  : secret_len != 32 && secret_len != 48) {
        log_error("kTLS: the secret in the %.*s keylog line is malformed; cannot hand keys to "
                  "the kernel", (int)label_len, line);
        goto out;
    }
    parsed.len = (size_t)secret_len;
    if (secrets->have_client_random
        && memcmp(secrets->client_random, random, sizeof(random)) != 0) {
        log_error("kTLS: keylog lines of two handshakes reached one connection "
                  "(renegotiation?); cannot hand keys to the kernel");
        goto out;
    }
    memcpy(secrets->client_random, random, sizeof(random));
    secrets->have_client_random = 1;
    *slot = parsed;
    rc = 1;
out:
    OPENSSL_cleanse(&parsed, sizeof(parsed));
    return rc;
}

void ktls_keys_wipe(struct ktls_secrets *secrets)
{
    OPENSSL_cleanse(secrets, sizeof(*secrets));
}

void ktls_keys_wipe_keys(struct ktls_keys *keys)
{
    OPENSSL_cleanse(keys, sizeof(*keys));
}

int ktls_keys_randoms_from_ssl(const SSL *ssl, struct ktls_randoms *randoms)
{
    if (SSL_get_client_random(ssl, randoms->client, sizeof(randoms->client))
            != sizeof(randoms->client)
        || SSL_get_server_random(ssl, randoms->server, sizeof(randoms->server))
               != sizeof(randoms->server)) {
        log_error("kTLS: the handshake's hello randoms are not available");
        return -1;
    }
    return 0;
}

static int derive_tls13(const struct ktls_secrets *secrets, enum ktls_role role,
                        struct ktls_keys *out)
{
    const struct ktls_secret *own = role == KTLS_ROLE_CLIENT ? &secrets->client_traffic
                                                             : &secrets->server_traffic;
    const struct ktls_secret *peer = role == KTLS_ROLE_CLIENT ? &secrets->server_traffic
                                                              : &secrets->client_traffic;
    if (own->len == 0 || peer->len == 0) {
        log_error("kTLS: the TLS 1.3 traffic secrets never reached the keylog callback");
        return -1;
    }
    if (ktls_keys_tls13_traffic_keys(&out->suite, own->bytes, own->len, &out->tx) != 0)
        return -1;
    return ktls_keys_tls13_traffic_keys(&out->suite, peer->bytes, peer->len, &out->rx);
}

/* RFC 5246 section 6.3: key_block = PRF(master, "key expansion", server_random +
 * client_random), split into client_write_key, server_write_key, client_write_IV,
 * server_write_IV (AEAD suites have no MAC keys). */
static int derive_tls12(const struct ktls_secrets *secrets, const struct ktls_randoms *randoms,
                        enum ktls_role role, struct ktls_keys *out)
{
    int rc = -1;
    unsigned char block[2 * KTLS_KEYS_MAX_KEY_LEN + 2 * KTLS_KEYS_MAX_IV_LEN];
    size_t key_len = cipher_key_length(out->suite.cipher);
    size_t iv_len = tls12_iv_length(out->suite.cipher);
    struct ktls_direction_keys *client = role == KTLS_ROLE_CLIENT ? &out->tx : &out->rx;
    struct ktls_direction_keys *server = role == KTLS_ROLE_CLIENT ? &out->rx : &out->tx;

    if (secrets->master.len != KTLS_KEYS_MAX_SECRET_LEN) {
        log_error("kTLS: the TLS 1.2 master secret never reached the keylog callback");
        goto out;
    }
    if (key_len == 0) {
        log_error("kTLS: cipher suite 0x%04x has no kernel cipher", out->suite.iana_id);
        goto out;
    }
    if (tls12_prf(out->suite.hash, secrets->master.bytes, secrets->master.len, "key expansion",
                  randoms->server, sizeof(randoms->server), randoms->client,
                  sizeof(randoms->client), block, 2 * key_len + 2 * iv_len) != 0)
        goto out;
    memcpy(client->key, block, key_len);
    memcpy(server->key, block + key_len, key_len);
    memcpy(client->iv, block + 2 * key_len, iv_len);
    memcpy(server->iv, block + 2 * key_len + iv_len, iv_len);
    client->key_len = server->key_len = key_len;
    client->iv_len = server->iv_len = iv_len;
    rc = 0;
out:
    OPENSSL_cleanse(block, sizeof(block));
    return rc;
}

int ktls_keys_derive(const struct ktls_secrets *secrets, const struct ktls_suite *suite,
                     enum ktls_role role, const struct ktls_randoms *randoms,
                     struct ktls_keys *out)
{
    int rc = -1;

    memset(out, 0, sizeof(*out));
    out->suite = *suite;
    if (!secrets->have_client_random
        || memcmp(secrets->client_random, randoms->client, sizeof(randoms->client)) != 0) {
        log_error("kTLS: the keylog secrets do not belong to this connection's handshake");
        goto out;
    }
    if (suite->tls_version == TLS1_3_VERSION)
        rc = derive_tls13(secrets, role, out);
    else if (suite->tls_version == TLS1_2_VERSION)
        rc = derive_tls12(secrets, randoms, role, out);
    else
        log_error("kTLS: protocol version 0x%04x cannot be offloaded", (unsigned)suite->tls_version);
out:
    if (rc != 0)
        ktls_keys_wipe_keys(out);
    return rc;
}

int ktls_keys_update(struct ktls_secrets *secrets, const struct ktls_suite *suite,
                     enum ktls_role role, enum ktls_direction direction,
                     struct ktls_direction_keys *out)
{
    int rc = -1;
    unsigned char next[KTLS_KEYS_MAX_SECRET_LEN];
    int client_side = (direction == KTLS_DIRECTION_TX) == (role == KTLS_ROLE_CLIENT);
    struct ktls_secret *slot = client_side ? &secrets->client_traffic : &secrets->server_traffic;
    size_t length = hash_length(suite->hash);

    memset(out, 0, sizeof(*out));
    if (suite->tls_version != TLS1_3_VERSION || slot->len == 0) {
        log_error("kTLS: KeyUpdate needs the TLS 1.3 traffic secret, which is not there");
        goto out;
    }
    if (ktls_keys_tls13_next_secret(suite->hash, slot->bytes, slot->len, next, length) != 0)
        goto out;
    if (ktls_keys_tls13_traffic_keys(suite, next, length, out) != 0)
        goto out;
    memcpy(slot->bytes, next, length);
    rc = 0;
out:
    OPENSSL_cleanse(next, sizeof(next));
    return rc;
}
