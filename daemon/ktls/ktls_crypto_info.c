#include "ktls/ktls_crypto_info.h"

#include <string.h>

#include <openssl/crypto.h>

#include "core/log.h"

/* The suite carries OpenSSL's version numbers; the kernel must read them as its own. */
_Static_assert(TLS1_2_VERSION == TLS_1_2_VERSION, "TLS 1.2 version numbers differ");
_Static_assert(TLS1_3_VERSION == TLS_1_3_VERSION, "TLS 1.3 version numbers differ");

/* The kernel builds each record's nonce as salt || iv (tls_set_sw_offload), then:
 *  - TLS 1.3 (any cipher) and ChaCha20-Poly1305 (1.2 too): XORs the record sequence
 *    number into it, so salt || iv must be the 12-byte traffic IV;
 *  - TLS 1.2 AES-GCM/CCM: salt is the 4-byte implicit IV; on receive the explicit 8
 *    bytes come from each record, on send the kernel writes iv as the explicit nonce
 *    and increments it per record. Starting it at the record sequence number (as
 *    RFC 5288 section 3 suggests) keeps it unique for the key: OpenSSL's own records
 *    before the handoff used a random 64-bit start, so a collision needs that start
 *    to fall among the sequence numbers the kernel will use. */
static int split_aes_nonce(const struct ktls_suite *suite, const struct ktls_direction_keys *keys,
                           const unsigned char rec_seq[8], unsigned char *salt,
                           size_t salt_size, unsigned char *iv, size_t iv_size)
{
    if (suite->tls_version == TLS1_3_VERSION && keys->iv_len == salt_size + iv_size) {
        memcpy(salt, keys->iv, salt_size);
        memcpy(iv, keys->iv + salt_size, iv_size);
        return 0;
    }
    if (suite->tls_version == TLS1_2_VERSION && keys->iv_len == salt_size && iv_size == 8) {
        memcpy(salt, keys->iv, salt_size);
        memcpy(iv, rec_seq, iv_size);
        return 0;
    }
    return -1;
}

static int fill_aes_gcm_128(struct tls12_crypto_info_aes_gcm_128 *info,
                            const struct ktls_suite *suite,
                            const struct ktls_direction_keys *keys,
                            const unsigned char rec_seq[8])
{
    if (keys->key_len != TLS_CIPHER_AES_GCM_128_KEY_SIZE
        || split_aes_nonce(suite, keys, rec_seq, info->salt, TLS_CIPHER_AES_GCM_128_SALT_SIZE,
                           info->iv, TLS_CIPHER_AES_GCM_128_IV_SIZE) != 0)
        return -1;
    info->info.version = (__u16)suite->tls_version;
    info->info.cipher_type = TLS_CIPHER_AES_GCM_128;
    memcpy(info->key, keys->key, TLS_CIPHER_AES_GCM_128_KEY_SIZE);
    memcpy(info->rec_seq, rec_seq, TLS_CIPHER_AES_GCM_128_REC_SEQ_SIZE);
    return 0;
}

static int fill_aes_gcm_256(struct tls12_crypto_info_aes_gcm_256 *info,
                            const struct ktls_suite *suite,
                            const struct ktls_direction_keys *keys,
                            const unsigned char rec_seq[8])
{
    if (keys->key_len != TLS_CIPHER_AES_GCM_256_KEY_SIZE
        || split_aes_nonce(suite, keys, rec_seq, info->salt, TLS_CIPHER_AES_GCM_256_SALT_SIZE,
                           info->iv, TLS_CIPHER_AES_GCM_256_IV_SIZE) != 0)
        return -1;
    info->info.version = (__u16)suite->tls_version;
    info->info.cipher_type = TLS_CIPHER_AES_GCM_256;
    memcpy(info->key, keys->key, TLS_CIPHER_AES_GCM_256_KEY_SIZE);
    memcpy(info->rec_seq, rec_seq, TLS_CIPHER_AES_GCM_256_REC_SEQ_SIZE);
    return 0;
}

static int fill_aes_ccm_128(struct tls12_crypto_info_aes_ccm_128 *info,
                            const struct ktls_suite *suite,
                            const struct ktls_direction_keys *keys,
                            const unsigned char rec_seq[8])
{
    if (keys->key_len != TLS_CIPHER_AES_CCM_128_KEY_SIZE
        || split_aes_nonce(suite, keys, rec_seq, info->salt, TLS_CIPHER_AES_CCM_128_SALT_SIZE,
                           info->iv, TLS_CIPHER_AES_CCM_128_IV_SIZE) != 0)
        return -1;
    info->info.version = (__u16)suite->tls_version;
    info->info.cipher_type = TLS_CIPHER_AES_CCM_128;
    memcpy(info->key, keys->key, TLS_CIPHER_AES_CCM_128_KEY_SIZE);
    memcpy(info->rec_seq, rec_seq, TLS_CIPHER_AES_CCM_128_REC_SEQ_SIZE);
    return 0;
}

/* ChaCha20-Poly1305 has no explicit nonce in either version: the whole 12-byte IV goes
 * to iv and there is no salt. */
static int fill_chacha20_poly1305(struct tls12_crypto_info_chacha20_poly1305 *info,
                                  const struct ktls_suite *suite,
                                  const struct ktls_direction_keys *keys,
                                  const unsigned char rec_seq[8])
{
    if (keys->key_len != TLS_CIPHER_CHACHA20_POLY1305_KEY_SIZE
        || keys->iv_len != TLS_CIPHER_CHACHA20_POLY1305_IV_SIZE)
        return -1;
    info->info.version = (__u16)suite->tls_version;
    info->info.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
    memcpy(info->key, keys->key, TLS_CIPHER_CHACHA20_POLY1305_KEY_SIZE);
    memcpy(info->iv, keys->iv, TLS_CIPHER_CHACHA20_POLY1305_IV_SIZE);
    memcpy(info->rec_seq, rec_seq, TLS_CIPHER_CHACHA20_POLY1305_REC_SEQ_SIZE);
    return 0;
}

int ktls_crypto_info_fill(struct ktls_crypto_info *info, const struct ktls_suite *suite,
                          const struct ktls_direction_keys *keys, uint64_t record_sequence,
                          const void **optval, socklen_t *optlen)
{
    int rc = -1;
    unsigned char rec_seq[8];

    memset(info, 0, sizeof(*info));
    for (int i = 7; i >= 0; i--) {
        rec_seq[i] = (unsigned char)(record_sequence & 0xff);
        record_sequence >>= 8;
    }
    if (suite->tls_version != TLS1_2_VERSION && suite->tls_version != TLS1_3_VERSION) {
        log_error("kTLS: protocol version 0x%04x cannot be offloaded",
                  (unsigned)suite->tls_version);
        goto out;
    }
    switch (suite->cipher) {
    case KTLS_CIPHER_AES_128_GCM:
        rc = fill_aes_gcm_128(&info->u.aes_gcm_128, suite, keys, rec_seq);
        info->length = sizeof(info->u.aes_gcm_128);
        break;
    case KTLS_CIPHER_AES_256_GCM:
        rc = fill_aes_gcm_256(&info->u.aes_gcm_256, suite, keys, rec_seq);
        info->length = sizeof(info->u.aes_gcm_256);
        break;
    case KTLS_CIPHER_AES_128_CCM:
        rc = fill_aes_ccm_128(&info->u.aes_ccm_128, suite, keys, rec_seq);
        info->length = sizeof(info->u.aes_ccm_128);
        break;
    case KTLS_CIPHER_CHACHA20_POLY1305:
        rc = fill_chacha20_poly1305(&info->u.chacha20_poly1305, suite, keys, rec_seq);
        info->length = sizeof(info->u.chacha20_poly1305);
        break;
    }
    if (rc != 0) {
        log_error("kTLS: the derived keys do not fit cipher suite 0x%04x", suite->iana_id);
        goto out;
    }
    *optval = &info->u;
    *optlen = info->length;
out:
    if (rc != 0)
        ktls_crypto_info_wipe(info);
    return rc;
}

void ktls_crypto_info_wipe(struct ktls_crypto_info *info)
{
    OPENSSL_cleanse(info, sizeof(*info));
}
