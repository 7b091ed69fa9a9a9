/* The EC_KEY_METHOD API is deprecated in OpenSSL 3 but is the one way, in 3.0, to let
 * libssl sign with a key whose signatures another library context makes (3.0 would
 * otherwise sign with the default provider's ECDSA, to which the tpm2 provider gives
 * the public half only): its warnings are silenced here alone. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "tls/tpm_key.h"

#include <stdio.h>
#include <stdlib.h>

#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/provider.h>
#include <openssl/rand.h>
#include <openssl/store.h>
#include <openssl/x509.h>

#include "core/log.h"

/* Signatures by the tpm2 provider; hashing and random numbers by the default one. */
#define TPM_KEY_PROPQ "?tpm2.signature=yes,tpm2.digest!=yes,tpm2.cipher!=yes,tpm2.rand!=yes"

/* The worker's own: made after the fork, kept for the process's life. */
static struct tpm_libctx worker_tpm;
static EC_KEY_METHOD *bridge_method;
static int bridge_index = -1;


/* The connection the provider opens, for messages. */
static const char *tcti(void)
{
    const char *configured = getenv("TPM2OPENSSL_TCTI");
    return configured != NULL && configured[0] != '\0' ? configured : "the default, /dev/tpmrm0";
}

/* A library context with its providers, held so that they can be unloaded: freeing
 * the context alone leaves a provider loaded by OSSL_PROVIDER_load, and with it the
 * tpm2 provider's TPM connection. */
struct tpm_libctx {
    OSSL_LIB_CTX *libctx;
    OSSL_PROVIDER *defaults, *tpm2;
};

/* Unloads the providers (closing the TPM connection) and frees the context. */
static void tpm_libctx_free(struct tpm_libctx *t)
{
    if (t->tpm2 != NULL)
        OSSL_PROVIDER_unload(t->tpm2);
    if (t->defaults != NULL)
        OSSL_PROVIDER_unload(t->defaults);
    OSSL_LIB_CTX_free(t->libctx);
    *t = (struct tpm_libctx){ 0 };
}

/* Makes T: a library context with the default provider first (ties go to it) and the
 * tpm2 one. Returns 0, or -1 with REASON (T then holds nothing). */
static int tpm_libctx(struct tpm_libctx *t, char *reason, size_t len)
{
    *t = (struct tpm_libctx){ 0 };
    t->libctx = OSSL_LIB_CTX_new();
    if (t->libctx == NULL || (t->defaults = OSSL_PROVIDER_load(t->libctx, "default")) == NULL) {
        snprintf(reason, len, "cannot make a library context for the TPM (%s)",
                 log_openssl_reason(NULL));
        tpm_libctx_free(t);
        return -1;
    }
    if ((t->tpm2 = OSSL_PROVIDER_load(t->libctx, "tpm2")) == NULL) {
        snprintf(reason, len, "OpenSSL's tpm2 provider does not load with TCTI %s (%s): "
                 "install tpm2-openssl and check that the TPM answers", tcti(),
                 log_openssl_reason(NULL));
        tpm_libctx_free(t);
        return -1;
    }
    return 0;
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
    OSSL_STORE_close(store);
    if (key == NULL) {
        snprintf(reason, len, "the TPM (TCTI %s) gives no key for %s (%s): list its persistent "
                 "handles with tpm2_getcap handles-persistent", tcti(), uri,
                 log_openssl_reason(NULL));
    } else if (!EVP_PKEY_is_a(key, "EC")) {
        snprintf(reason, len, "the TPM's key %s is not an EC key: make an ECDSA key "
                 "(tpm2_create -G ecc256:ecdsa)", uri);
        EVP_PKEY_free(key);
        key = NULL;
    }
    ERR_clear_error();
    return key;
}

EVP_PKEY *tpm_key_public(const char *uri, char *reason, size_t len)
{
    EVP_PKEY *public = NULL;
    EVP_PKEY *key = NULL;
    unsigned char *der = NULL;
    struct tpm_libctx t;
    if (tpm_libctx(&t, reason, len) < 0)
        goto out;
    key = load_key(t.libctx, uri, reason, len);
    if (key == NULL)
        goto out;
    int der_len = i2d_PUBKEY(key, &der);
    const unsigned char *cursor = der;
    public = der_len > 0 ? d2i_PUBKEY(NULL, &cursor, der_len) : NULL;
    if (public == NULL)
        snprintf(reason, len, "the TPM's key %s gives no public key (%s)", uri,
                 log_openssl_reason(NULL));
out:
    OPENSSL_free(der);
    EVP_PKEY_free(key);
    /* Closes the connection to the TPM before the caller forks. */
    tpm_libctx_free(&t);
    ERR_clear_error();
    return public;
}

/* The TPM's key behind a bridge key goes with it. */
static void free_tpm_key(void *parent, void *key, CRYPTO_EX_DATA *ad, int index, long argl,
                         void *argp)
{
    (void)parent, (void)ad, (void)index, (void)argl, (void)argp;
    EVP_PKEY_free(key);
}

/* The digest a TLS signature of DLEN bytes was made with. */
static const char *digest_of_length(int dlen)
{
    return dlen == 32 ? "SHA256" : dlen == 48 ? "SHA384" : dlen == 64 ? "SHA512" : NULL;
}

/* EC_KEY_METHOD sign: the DER ECDSA signature of DGST, made by the TPM's key. */
static int bridge_sign(int type, const unsigned char *dgst, int dlen, unsigned char *sig,
                       unsigned int *siglen, const BIGNUM *kinv, const BIGNUM *r, EC_KEY *eckey)
{
    (void)type, (void)kinv, (void)r;
    int ok = 0;
    EVP_PKEY *key = EC_KEY_get_ex_data(eckey, bridge_index);
    const char *digest = digest_of_length(dlen);
    size_t len = (size_t)ECDSA_size(eckey);
    EVP_PKEY_CTX *pctx = key != NULL && digest != NULL
                             ? EVP_PKEY_CTX_new_from_pkey(worker_tpm.libctx, key, TPM_KEY_PROPQ)
                             : NULL;
    if (pctx != NULL && EVP_PKEY_sign_init(pctx) == 1 &&
        EVP_PKEY_CTX_set_signature_md(pctx, EVP_get_digestbyname(digest)) == 1 &&
        EVP_PKEY_sign(pctx, sig, &len, dgst, (size_t)dlen) == 1) {
        *siglen = (unsigned int)len;
        ok = 1;
    }
    EVP_PKEY_CTX_free(pctx);
    return ok;
}

static ECDSA_SIG *bridge_sign_sig(const unsigned char *dgst, int dlen, const BIGNUM *kinv,
                                  const BIGNUM *r, EC_KEY *eckey)
{
    unsigned char der[256];
    unsigned int len = 0;
    if ((size_t)ECDSA_size(eckey) > sizeof(der) ||
        !bridge_sign(0, dgst, dlen, der, &len, kinv, r, eckey))
        return NULL;
    const unsigned char *cursor = der;
    return d2i_ECDSA_SIG(NULL, &cursor, (long)len);
}

/* Sets up what every bridge key shares, once per process. Returns 0 or -1. */
static int bridge_setup(char *reason, size_t len)
{
    int (*sign)(int, const unsigned char *, int, unsigned char *, unsigned int *,
                const BIGNUM *, const BIGNUM *, EC_KEY *) = NULL;
    int (*sign_setup)(EC_KEY *, BN_CTX *, BIGNUM **, BIGNUM **) = NULL;
    ECDSA_SIG *(*sign_sig)(const unsigned char *, int, const BIGNUM *, const BIGNUM *,
                           EC_KEY *) = NULL;
    if (worker_tpm.libctx != NULL)
        return 0;
    if (bridge_index < 0)
        bridge_index = EC_KEY_get_ex_new_index(0, NULL, NULL, NULL, free_tpm_key);
    if (bridge_method == NULL && bridge_index >= 0) {
        bridge_method = EC_KEY_METHOD_new(EC_KEY_get_default_method());
        if (bridge_method != NULL) {
            EC_KEY_METHOD_get_sign(bridge_method, &sign, &sign_setup, &sign_sig);
            EC_KEY_METHOD_set_sign(bridge_method, bridge_sign, sign_setup, bridge_sign_sig);
        }
    }
    if (bridge_method == NULL) {
        snprintf(reason, len, "out of memory");
        return -1;
    }
    return tpm_libctx(&worker_tpm, reason, len);
}

/* A key with CERT's public half whose signatures TPM_KEY (taken over) makes. */
static EVP_PKEY *bridge_key(X509 *cert, EVP_PKEY *tpm_key)
{
    EVP_PKEY *bridge = NULL;
    EC_KEY *public = EVP_PKEY_get1_EC_KEY(X509_get0_pubkey(cert));
    EC_KEY *eckey = public != NULL ? EC_KEY_dup(public) : NULL;
    if (eckey == NULL || EC_KEY_set_method(eckey, bridge_method) != 1 ||
        EC_KEY_set_ex_data(eckey, bridge_index, tpm_key) != 1)
        goto out;
    tpm_key = NULL;
    bridge = EVP_PKEY_new();
    if (bridge != NULL && EVP_PKEY_assign_EC_KEY(bridge, eckey) != 1) {
        EVP_PKEY_free(bridge);
        bridge = NULL;
    }
    if (bridge != NULL)
        eckey = NULL;
out:
    EC_KEY_free(eckey);
    EC_KEY_free(public);
    EVP_PKEY_free(tpm_key);
    return bridge;
}

/* Signs a random digest with KEY and verifies it with CERT's public key: 1 when the
 * TPM's key is the certificate's. */
static int signs_for(EVP_PKEY *key, X509 *cert)
{
    unsigned char digest[32];
    unsigned char sig[256];
    size_t len = sizeof(sig);
    EVP_PKEY_CTX *sign = EVP_PKEY_CTX_new(key, NULL);
    EVP_PKEY_CTX *verify = EVP_PKEY_CTX_new_from_pkey(NULL, X509_get0_pubkey(cert), NULL);
    int ok = RAND_bytes(digest, sizeof(digest)) == 1 && sign != NULL && verify != NULL &&
             EVP_PKEY_sign_init(sign) == 1 && EVP_PKEY_sign(sign, sig, &len, digest, 32) == 1 &&
             EVP_PKEY_verify_init(verify) == 1 &&
             EVP_PKEY_verify(verify, sig, len, digest, sizeof(digest)) == 1;
    EVP_PKEY_CTX_free(verify);
    EVP_PKEY_CTX_free(sign);
    return ok;
}

int tpm_key_attach(SSL_CTX *ctx, const char *uri, char *reason, size_t len)
{
    int result = -1;
    EVP_PKEY *bridge = NULL;
    X509 *cert = SSL_CTX_get0_certificate(ctx);
    if (bridge_setup(reason, len) < 0)
        goto out;
    EVP_PKEY *key = load_key(worker_tpm.libctx, uri, reason, len);
    if (key == NULL)
        goto out;
    bridge = cert != NULL ? bridge_key(cert, key) : NULL;
    if (bridge == NULL) {
        snprintf(reason, len, "the TPM's key %s cannot stand for the certificate's (%s)", uri,
                 log_openssl_reason(NULL));
        goto out;
    }
    if (!signs_for(bridge, cert)) {
        snprintf(reason, len, "the TPM's key %s does not sign for the certificate (%s): give "
                 "the handle of the key it was issued for", uri, log_openssl_reason(NULL));
        goto out;
    }
    if (SSL_CTX_use_PrivateKey(ctx, bridge) != 1) {
        snprintf(reason, len, "the TPM's key %s is refused by the TLS context (%s)", uri,
                 log_openssl_reason(NULL));
        goto out;
    }
    result = 0;
out:
    EVP_PKEY_free(bridge);
    ERR_clear_error();
    return result;
}
