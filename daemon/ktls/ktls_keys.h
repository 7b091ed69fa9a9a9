/* ktls_keys — record keys for kernel TLS, derived from the secrets OpenSSL reveals
 * through its keylog callback.
 *
 * OpenSSL 3.0 cannot offload TLS 1.3 receive itself, so ktlstun derives the keys:
 * TLS 1.3 from the application traffic secrets (HKDF-Expand-Label via EVP_KDF
 * "TLS13-KDF"), TLS 1.2 from the master secret and the two hello randoms (key block via
 * EVP_KDF "TLS1-PRF"). Nothing here is hand-written crypto.
 *
 * Every structure that holds key material is fixed-size (no heap), so one
 * OPENSSL_cleanse wipes it. Nothing in this module ever logs key material.
 *
 * Typical use, per connection:
 *   keylog callback:  ktls_keys_note_keylog_line(&conn->secrets, line);
 *   after handshake:  ktls_keys_suite_from_ssl_cipher(SSL_get_current_cipher(ssl), &suite)
 *                     ktls_keys_randoms_from_ssl(ssl, &randoms)
 *                     ktls_keys_derive(&conn->secrets, &suite, role, &randoms, &keys)
 *                     ... ktls_crypto_info_fill() for keys.tx and keys.rx, setsockopt ...
 *                     ktls_keys_wipe_keys(&keys); ktls_keys_wipe(&conn->secrets)
 *                     (keep conn->secrets instead while TLS 1.3 KeyUpdate may follow). */
#ifndef KTLSTUN_KTLS_KEYS_H
#define KTLSTUN_KTLS_KEYS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#define KTLS_KEYS_RANDOM_LEN     32 /* ClientHello.random, ServerHello.random */
#define KTLS_KEYS_MAX_SECRET_LEN 48 /* SHA-384 traffic secret; TLS 1.2 master secret */
#define KTLS_KEYS_MAX_KEY_LEN    32
#define KTLS_KEYS_MAX_IV_LEN     12

/* The record ciphers the Linux kernel (6.1) offloads, with a 16-byte tag. */
enum ktls_cipher {
    KTLS_CIPHER_AES_128_GCM,
    KTLS_CIPHER_AES_256_GCM,
    KTLS_CIPHER_AES_128_CCM,
    KTLS_CIPHER_CHACHA20_POLY1305,
};

enum ktls_hash { KTLS_HASH_SHA256, KTLS_HASH_SHA384 };

enum ktls_role { KTLS_ROLE_CLIENT, KTLS_ROLE_SERVER };

enum ktls_direction { KTLS_DIRECTION_TX, KTLS_DIRECTION_RX };

/* What a negotiated cipher suite means for key derivation. AEAD suites exist only in
 * TLS 1.2 (0xC02B, ...) or only in TLS 1.3 (0x13xx), so the suite fixes the version. */
struct ktls_suite {
    uint16_t iana_id;
    int tls_version;         /* TLS1_2_VERSION or TLS1_3_VERSION (OpenSSL's values,
                                equal to the kernel's TLS_1_x_VERSION) */
    enum ktls_cipher cipher;
    enum ktls_hash hash;     /* HKDF hash (TLS 1.3) or PRF hash (TLS 1.2) */
};

struct ktls_secret {
    unsigned char bytes[KTLS_KEYS_MAX_SECRET_LEN];
    size_t len;              /* 0: not seen yet */
};

/* The secrets of one connection, as the keylog callback reports them. Zero-initialise
 * (or ktls_keys_wipe) before the handshake. */
struct ktls_secrets {
    unsigned char client_random[KTLS_KEYS_RANDOM_LEN];
    int have_client_random;
    struct ktls_secret client_traffic; /* TLS 1.3 client_application_traffic_secret_N */
    struct ktls_secret server_traffic; /* TLS 1.3 server_application_traffic_secret_N */
    struct ktls_secret master;         /* TLS 1.2 master secret */
};

/* The hello randoms, as SSL_get_client_random / SSL_get_server_random return them. */
struct ktls_randoms {
    unsigned char client[KTLS_KEYS_RANDOM_LEN];
    unsigned char server[KTLS_KEYS_RANDOM_LEN];
};

/* Key and IV for one direction. TLS 1.3 (any cipher) and TLS 1.2 ChaCha20-Poly1305:
 * the 12-byte per-connection IV. TLS 1.2 AES-GCM/CCM: the 4-byte implicit IV (salt);
 * the 8-byte explicit nonce is per record. */
struct ktls_direction_keys {
    unsigned char key[KTLS_KEYS_MAX_KEY_LEN];
    size_t key_len;
    unsigned char iv[KTLS_KEYS_MAX_IV_LEN];
    size_t iv_len;
};

struct ktls_keys {
    struct ktls_suite suite;
    struct ktls_direction_keys tx; /* what we encrypt with */
    struct ktls_direction_keys rx; /* what we decrypt with */
};

/* Looks up the IANA cipher suite id (SSL_CIPHER_get_protocol_id). Returns 0 and fills
 * SUITE when the kernel can carry its records, -1 when it cannot (CBC, CCM_8,
 * AES-256-CCM, ARIA, unknown): the caller then relays in userspace. Logs nothing. */
int ktls_keys_suite_from_iana(uint16_t iana_id, struct ktls_suite *suite);

/* ktls_keys_suite_from_iana for an OpenSSL cipher (SSL_get_current_cipher). */
int ktls_keys_suite_from_ssl_cipher(const SSL_CIPHER *cipher, struct ktls_suite *suite);

/* Stores the secret of one line from OpenSSL's keylog callback
 * ("LABEL <client_random hex> <secret hex>") in SECRETS: CLIENT_TRAFFIC_SECRET_0,
 * SERVER_TRAFFIC_SECRET_0 (TLS 1.3) and CLIENT_RANDOM (TLS 1.2 master secret). The line
 * stays the caller's. Returns 1 when stored, 0 for a label that does not matter here
 * (handshake, early and exporter secrets), -1 when the line is malformed or carries
 * another handshake's client random (logged, without the line). */
int ktls_keys_note_keylog_line(struct ktls_secrets *secrets, const char *line);

/* Wipes every secret in SECRETS (OPENSSL_cleanse); it is ready for reuse. */
void ktls_keys_wipe(struct ktls_secrets *secrets);

/* Copies the hello randoms of SSL's completed handshake into RANDOMS.
 * Returns 0, or -1 (logged) when OpenSSL has no full randoms. */
int ktls_keys_randoms_from_ssl(const SSL *ssl, struct ktls_randoms *randoms);

/* Derives the record keys for both directions of a connection where we play ROLE.
 * RANDOMS->client must be the handshake the secrets came from (checked);
 * RANDOMS->server is used by TLS 1.2 only. OUT is the caller's and holds keys: wipe it
 * with ktls_keys_wipe_keys. Returns 0, or -1 (logged, OUT wiped) when the secrets are
 * missing, belong to another handshake or do not fit the suite, or OpenSSL fails. */
int ktls_keys_derive(const struct ktls_secrets *secrets, const struct ktls_suite *suite,
                     enum ktls_role role, const struct ktls_randoms *randoms,
                     struct ktls_keys *out);

/* Wipes KEYS (OPENSSL_cleanse). */
void ktls_keys_wipe_keys(struct ktls_keys *keys);

/* TLS 1.3: key = HKDF-Expand-Label(SECRET, "key", "", key length) and
 * iv = HKDF-Expand-Label(SECRET, "iv", "", 12) for SUITE's cipher and hash. SECRET_LEN
 * must be the hash length. Returns 0, or -1 (logged, OUT wiped). */
int ktls_keys_tls13_traffic_keys(const struct ktls_suite *suite, const unsigned char *secret,
                                 size_t secret_len, struct ktls_direction_keys *out);

/* TLS 1.3 KeyUpdate: NEXT = HKDF-Expand-Label(SECRET, "traffic upd", "", Hash.length).
 * SECRET_LEN and NEXT_LEN must both be HASH's length. Returns 0, or -1 (logged, NEXT
 * wiped). */
int ktls_keys_tls13_next_secret(enum ktls_hash hash, const unsigned char *secret,
                                size_t secret_len, unsigned char *next, size_t next_len);

/* TLS 1.3 KeyUpdate in DIRECTION: replaces that direction's traffic secret in SECRETS
 * with the next generation and derives its key and IV into OUT. SECRETS is unchanged
 * on failure. Returns 0, or -1 (logged). */
int ktls_keys_update(struct ktls_secrets *secrets, const struct ktls_suite *suite,
                     enum ktls_role role, enum ktls_direction direction,
                     struct ktls_direction_keys *out);

/* The TLS 1.2 PRF (RFC 5246 section 5) with HASH:
 * OUT = PRF(SECRET, LABEL, SEED) for OUT_LEN bytes. Returns 0, or -1 (logged, OUT
 * wiped). */
int ktls_keys_tls12_prf(enum ktls_hash hash, const unsigned char *secret, size_t secret_len,
                        const char *label, const unsigned char *seed, size_t seed_len,
                        unsigned char *out, size_t out_len);

#endif
