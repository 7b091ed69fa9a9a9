#include "tls/tpm_key.h"

#include <stdio.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/store.h>
#include <openssl/x509.h>

static OSSL_LIB_CTX *tunnel_libctx;
static OSSL_PROVIDER *tunnel_tpm2;

/* OpenSSL's last reason (its queue emptied), for the end of a message. */
static const char *openssl_reason(void)
{
    static char text[256];
    unsigned long code = ERR_peek_last_error();
    const char *reason = code != 0 ? ERR_reason_error_string(code) : NULL;
    snprintf(text, sizeof(text), "%s", reason != NULL ? reason : "no reason given");
    ERR_clear_error();
    return text;
}

/* The connection the provider would open, for messages. */
static const char *tcti(void)
{
    const char *configured = getenv("TPM2OPENSSL_TCTI");
    return configured != NULL && configured[0] != '\0' ? configured : "the default, /dev/tpmrm0";
}

/* The first private key the store at URI gives in LIBCTX, or NULL with REASON. */
static EVP_PKEY *load_key(OSSL_LIB_CTX *libctx, const char *uri, char *reason, size_t len)
{
    EVP_PKEY *key = NULL;
    OSSL_STORE_CTX *store = OSSL_STORE_open_ex(uri, libctx, TPM_KEY_PROPQ, NULL, NULL, NULL,
                                               NULL, NULL);
    while (store != NULL && key == NULL && !OSSL_STORE_eof(store)) {
        OSSL_STORE_INFO *info = OSSL_STORE_load(store);
        if (info == NULL)
            break;
        if (OSSL_STORE_INFO_get_type(info) == OSSL_STORE_INFO_PKEY)
            key = OSSL_STORE_INFO_get1_PKEY(info);
        OSSL_STORE_INFO_free(info);
    }
    if (key == NULL)
        snprintf(reason, len, "the TPM (TCTI %s) gives no key for %s (%s): list its persistent "
                 "handles with tpm2_getcap handles-persistent", tcti(), uri, openssl_reason());
    OSSL_STORE_close(store);
    ERR_clear_error();
    return key;
}

/* Loads the tpm2 provider into LIBCTX, or returns NULL with REASON. */
static OSSL_PROVIDER *load_tpm2(OSSL_LIB_CTX *libctx, char *reason, size_t len)
{
    OSSL_PROVIDER *provider = OSSL_PROVIDER_load(libctx, "tpm2");
    if (provider == NULL)
        snprintf(reason, len, "OpenSSL's tpm2 provider does not load with TCTI %s (%s): "
                 "install tpm2-openssl and check that the TPM answers", tcti(),
                 openssl_reason());
    ERR_clear_error();
    return provider;
}

OSSL_LIB_CTX *tpm_key_libctx(void)
{
    if (tunnel_libctx != NULL)
        return tunnel_libctx;
    OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
    /* Default first: keys of equal standing then go to it, so ECDHE stays there. */
    OSSL_PROVIDER *provider = libctx != NULL ? OSSL_PROVIDER_load(libctx, "default") : NULL;
    if (provider == NULL) {
        OSSL_LIB_CTX_free(libctx);
        return NULL;
    }
    /* The provider stays loaded with the context, for the life of the process. */
    tunnel_libctx = libctx;
    return tunnel_libctx;
}

EVP_PKEY *tpm_key_public(const char *uri, char *reason, size_t len)
{
    EVP_PKEY *public = NULL;
    EVP_PKEY *key = NULL;
    unsigned char *der = NULL;
    OSSL_PROVIDER *tpm2 = NULL;
    OSSL_LIB_CTX *libctx = OSSL_LIB_CTX_new();
    OSSL_PROVIDER *fallback = libctx != NULL ? OSSL_PROVIDER_load(libctx, "default") : NULL;
    if (fallback == NULL) {
        snprintf(reason, len, "cannot make a library context for the TPM (%s)", openssl_reason());
        goto out;
    }
    tpm2 = load_tpm2(libctx, reason, len);
    if (tpm2 == NULL)
        goto out;
    key = load_key(libctx, uri, reason, len);
    if (key == NULL)
        goto out;
    int der_len = i2d_PUBKEY(key, &der);
    const unsigned char *cursor = der;
    public = der_len > 0 ? d2i_PUBKEY(NULL, &cursor, der_len) : NULL;
    if (public == NULL)
        snprintf(reason, len, "the TPM's key %s gives no public key (%s)", uri, openssl_reason());
out:
    OPENSSL_free(der);
    EVP_PKEY_free(key);
    /* Closes the provider's connection to the TPM before the caller forks. */
    if (tpm2 != NULL)
        OSSL_PROVIDER_unload(tpm2);
    if (fallback != NULL)
        OSSL_PROVIDER_unload(fallback);
    OSSL_LIB_CTX_free(libctx);
    ERR_clear_error();
    return public;
}

int tpm_key_attach(SSL_CTX *ctx, const char *uri, char *reason, size_t len)
{
    int result = -1;
    EVP_PKEY *key = NULL;
    OSSL_LIB_CTX *libctx = tpm_key_libctx();
    if (libctx == NULL) {
        snprintf(reason, len, "cannot make a library context for the TPM (%s)", openssl_reason());
        goto out;
    }
    if (tunnel_tpm2 == NULL && (tunnel_tpm2 = load_tpm2(libctx, reason, len)) == NULL)
        goto out;
    key = load_key(libctx, uri, reason, len);
    if (key == NULL)
        goto out;
    if (SSL_CTX_use_PrivateKey(ctx, key) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        snprintf(reason, len, "the TPM's key %s does not belong to the certificate (%s)", uri,
                 openssl_reason());
        goto out;
    }
    result = 0;
out:
    EVP_PKEY_free(key);
    ERR_clear_error();
    return result;
}
