/* ktls_crypto_info — the struct tls12_crypto_info_* that setsockopt(SOL_TLS, TLS_TX or
 * TLS_RX) takes, filled from derived record keys (one function per cipher).
 *
 * It holds a key: wipe it with ktls_crypto_info_wipe right after setsockopt. */
#ifndef KTLSTUN_KTLS_CRYPTO_INFO_H
#define KTLSTUN_KTLS_CRYPTO_INFO_H

#include <stdint.h>
#include <sys/socket.h>

#include <linux/tls.h>

#include "ktls/ktls_keys.h"

struct ktls_crypto_info {
    union {
        struct tls_crypto_info info; /* version and cipher_type, common to all */
        struct tls12_crypto_info_aes_gcm_128 aes_gcm_128;
        struct tls12_crypto_info_aes_gcm_256 aes_gcm_256;
        struct tls12_crypto_info_aes_ccm_128 aes_ccm_128;
        struct tls12_crypto_info_chacha20_poly1305 chacha20_poly1305;
    } u;
    socklen_t length; /* size of the member of U in use */
};

/* Fills INFO for one direction of SUITE from KEYS (one half of ktls_keys_derive's
 * output). RECORD_SEQUENCE is the sequence number of the next record in that direction
 * (TLS 1.3: 0 after a clean handshake; TLS 1.2: 1, the Finished record took 0).
 * On success *OPTVAL and *OPTLEN are what setsockopt takes; *OPTVAL points into INFO.
 * Returns 0, or -1 (logged, INFO wiped) when SUITE's version or cipher is not one the
 * kernel takes or KEYS do not fit it. */
int ktls_crypto_info_fill(struct ktls_crypto_info *info, const struct ktls_suite *suite,
                          const struct ktls_direction_keys *keys, uint64_t record_sequence,
                          const void **optval, socklen_t *optlen);

/* Wipes INFO (OPENSSL_cleanse). */
void ktls_crypto_info_wipe(struct ktls_crypto_info *info);

#endif
