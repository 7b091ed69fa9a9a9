#include "tls/tls_alert.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "ktls/ktls_keys.h"
#include "ktls/tls_record.h"
#include "core/log.h"

#define AEAD_TAG_LEN 16
#define SERVER_SECRET_LABEL "SERVER_TRAFFIC_SECRET_0 "

/* What a context remembers: the keylog callback that was there before ours. */
struct ctx_hook {
    SSL_CTX_keylog_cb_func previous;
};

static CRYPTO_ONCE indexes_once = CRYPTO_ONCE_STATIC_INIT;
static int ctx_index = -1;
static int ssl_index = -1;

static void free_ctx_hook(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                          void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    OPENSSL_free(ptr);
}

/* The captured secrets die with their SSL, wiped. */
static void free_ssl_secrets(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl,
                             void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    if (ptr != NULL)
        OPENSSL_clear_free(ptr, sizeof(struct ktls_secrets));
}

static void make_indexes(void)
{
    ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_ctx_hook);
    ssl_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, free_ssl_secrets);
}

static void on_keylog(const SSL *ssl, const char *line)
{
    struct ctx_hook *hook = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ctx_index);
    if (hook != NULL && hook->previous != NULL)
        hook->previous(ssl, line);
    if (strncmp(line, SERVER_SECRET_LABEL, strlen(SERVER_SECRET_LABEL)) != 0)
        return;
    /* OpenSSL hands the callback a const SSL; ex_data is ours to set all the same. */
    SSL *owner = (SSL *)ssl;
    struct ktls_secrets *secrets = SSL_get_ex_data(owner, ssl_index);
    if (secrets == NULL) {
        secrets = OPENSSL_zalloc(sizeof(*secrets));
        if (secrets == NULL || !SSL_set_ex_data(owner, ssl_index, secrets)) {
            OPENSSL_free(secrets);
            return;
        }
    }
    ktls_keys_note_keylog_line(secrets, line);
}

int tls_alert_prepare_ctx(SSL_CTX *ctx)
{
    /* Prepared once: a second hook would find ours as the one to call first. */
    if (SSL_CTX_get_keylog_callback(ctx) == on_keylog)
        return 0;
    if (!CRYPTO_THREAD_run_once(&indexes_once, make_indexes) || ctx_index < 0 || ssl_index < 0) {
        log_error("cannot reserve OpenSSL ex_data slots for refusal alerts");
        return -1;
    }
    struct ctx_hook *hook = OPENSSL_zalloc(sizeof(*hook));
    if (hook == NULL) {
        log_error("out of memory");
        return -1;
    }
    hook->previous = SSL_CTX_get_keylog_callback(ctx);
    if (!SSL_CTX_set_ex_data(ctx, ctx_index, hook)) {
        OPENSSL_free(hook);
        log_error("cannot attach the refusal alert hook to a TLS context");
        return -1;
    }
    SSL_CTX_set_keylog_callback(ctx, on_keylog);
    return 0;
}

static const EVP_CIPHER *aead_for(enum ktls_cipher cipher)
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

/* TLSCiphertext of RFC 8446 section 5.2 holding the alert, at sequence number 0 (so
 * the nonce is the IV itself). Returns the record length, or 0. */
static size_t seal_tls13_alert(SSL *ssl, unsigned char alert, unsigned char *record, size_t capacity)
{
    const unsigned char inner[] = { TLS_ALERT_FATAL, alert, TLS_RECORD_ALERT };
    size_t length = 0;
    struct ktls_suite suite;
    struct ktls_direction_keys keys;
    const struct ktls_secrets *secrets = SSL_get_ex_data(ssl, ssl_index);
    const SSL_CIPHER *cipher = SSL_get_current_cipher(ssl);
    const size_t body = sizeof(inner) + AEAD_TAG_LEN;
    int out_len = 0, final_len = 0;

    memset(&keys, 0, sizeof(keys));
    if (cipher == NULL)
        cipher = SSL_get_pending_cipher(ssl);
    if (secrets == NULL || secrets->server_traffic.len == 0 || capacity < TLS_RECORD_HEADER_LEN + body
        || ktls_keys_suite_from_ssl_cipher(cipher, &suite) < 0 || suite.tls_version != TLS1_3_VERSION)
        return 0;
    const EVP_CIPHER *aead = aead_for(suite.cipher);
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (aead == NULL || ctx == NULL)
        goto out;
    if (ktls_keys_tls13_traffic_keys(&suite, secrets->server_traffic.bytes,
                                     secrets->server_traffic.len, &keys) < 0)
        goto out;
    int ccm = suite.cipher == KTLS_CIPHER_AES_128_CCM;
    record[0] = TLS_RECORD_APPLICATION_DATA;
    record[1] = 0x03;
    record[2] = 0x03;
    record[3] = (unsigned char)(body >> 8);
    record[4] = (unsigned char)(body & 0xff);
    unsigned char *sealed = record + TLS_RECORD_HEADER_LEN;
    if (EVP_EncryptInit_ex(ctx, aead, NULL, NULL, NULL) != 1
        || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, (int)keys.iv_len, NULL) != 1
        || (ccm && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_TAG, AEAD_TAG_LEN, NULL) != 1)
        || EVP_EncryptInit_ex(ctx, NULL, NULL, keys.key, keys.iv) != 1
        /* CCM wants the plaintext length before the additional data. */
        || (ccm && EVP_EncryptUpdate(ctx, NULL, &out_len, NULL, (int)sizeof(inner)) != 1)
        || EVP_EncryptUpdate(ctx, NULL, &out_len, record, TLS_RECORD_HEADER_LEN) != 1
        || EVP_EncryptUpdate(ctx, sealed, &out_len, inner, (int)sizeof(inner)) != 1
        || EVP_EncryptFinal_ex(ctx, sealed + out_len, &final_len) != 1
        || (size_t)out_len + (size_t)final_len != sizeof(inner)
        || EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_GET_TAG, AEAD_TAG_LEN, sealed + sizeof(inner)) != 1)
        goto out;
    length = TLS_RECORD_HEADER_LEN + body;
out:
    EVP_CIPHER_CTX_free(ctx);
    OPENSSL_cleanse(&keys, sizeof(keys));
    return length;
}

int tls_alert_send(SSL *ssl, unsigned char alert)
{
    unsigned char record[64];
    size_t length = 0;
    int fd = SSL_get_fd(ssl);

    if (fd < 0 || !SSL_is_server(ssl))
        return -1;
    if (SSL_version(ssl) == TLS1_2_VERSION) {
        const unsigned char plain[] = { TLS_RECORD_ALERT, 0x03, 0x03, 0x00, 0x02, TLS_ALERT_FATAL,
                                        alert };
        memcpy(record, plain, sizeof(plain));
        length = sizeof(plain);
    } else if (SSL_version(ssl) == TLS1_3_VERSION) {
        length = seal_tls13_alert(ssl, alert, record, sizeof(record));
    }
    if (length == 0)
        return -1;
    /* OpenSSL flushed its last flight before it read the client's, so this record
     * starts on a record boundary. A 24-byte send into an empty buffer is whole. */
    ssize_t sent = send(fd, record, length, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent != (ssize_t)length) {
        log_debug("alert %s not sent: %s", SSL_alert_desc_string_long(alert), sent < 0 ? strerror(errno) : "short send");
        return -1;
    }
    /* OpenSSL's own alert would follow under the same nonce: it must never leave. */
    shutdown(fd, SHUT_WR);
    return 0;
}
