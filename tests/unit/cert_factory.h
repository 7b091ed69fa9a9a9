/* cert_factory — certificates, CAs and CRLs made with the OpenSSL API at test time, so
 * unit tests need no fixture files and can make exactly the defect they test.
 *
 * Header-only (each unit test is one executable from one .c). Every function returns
 * a new object the caller frees, or fails the running cmocka test. */
#ifndef KTLSTUN_CERT_FACTORY_H
#define KTLSTUN_CERT_FACTORY_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

static inline EVP_PKEY *cf_key_ec(void)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(key);
    return key;
}

static inline EVP_PKEY *cf_key_rsa(size_t bits)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", bits);
    assert_non_null(key);
    return key;
}

/* "/CN=alice/OU=eng/OU=ops/O=Example" → X509_NAME, entries in that order. */
static inline X509_NAME *cf_name(const char *spec)
{
    X509_NAME *name = X509_NAME_new();
    assert_non_null(name);
    char *copy = strdup(spec);
    assert_non_null(copy);
    char *saveptr = NULL;
    for (char *item = strtok_r(copy, "/", &saveptr); item != NULL; item = strtok_r(NULL, "/", &saveptr)) {
        char *equals = strchr(item, '=');
        assert_non_null(equals);
        *equals = '\0';
        assert_int_equal(X509_NAME_add_entry_by_txt(name, item, MBSTRING_UTF8,
                                                    (const unsigned char *)equals + 1, -1, -1, 0),
                         1);
    }
    free(copy);
    return name;
}

struct cf_cert_spec {
    const char *subject;       /* "/CN=alice/OU=eng" (or subject_name)                  */
    X509_NAME *subject_name;   /* used instead of subject when set; copied              */
    EVP_PKEY *key;             /* the certificate's key                                 */
    X509 *issuer;              /* NULL: self-signed with key                            */
    EVP_PKEY *issuer_key;
    const char *not_before;    /* "20200101000000Z"; NULL: an hour ago                  */
    const char *not_after;     /* NULL: in a day                                        */
    const char *extensions[8]; /* "subjectAltName=DNS:a,URI:b", "basicConstraints=..."  */
    const EVP_MD *md;          /* NULL: SHA-256                                         */
    long serial;               /* 0: 1                                                  */
};

static inline void cf_set_time(ASN1_TIME *field, const char *text, long offset)
{
    if (text != NULL)
        assert_int_equal(ASN1_TIME_set_string_X509(field, text), 1);
    else
        assert_non_null(X509_gmtime_adj(field, offset));
}

static inline void cf_add_ext(X509 *cert, X509 *issuer, const char *spec)
{
    char *copy = strdup(spec);
    assert_non_null(copy);
    char *equals = strchr(copy, '=');
    assert_non_null(equals);
    *equals = '\0';
    int nid = OBJ_sn2nid(copy);
    assert_int_not_equal(nid, NID_undef);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, issuer, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, equals + 1);
    assert_non_null(ext);
    assert_int_equal(X509_add_ext(cert, ext, -1), 1);
    X509_EXTENSION_free(ext);
    free(copy);
}

static inline void cf_sign(X509 *cert, EVP_PKEY *key, const EVP_MD *md)
{
    assert_true(X509_sign(cert, key, md != NULL ? md : EVP_sha256()) > 0);
}

static inline X509 *cf_cert(const struct cf_cert_spec *spec)
{
    X509 *cert = X509_new();
    assert_non_null(cert);
    assert_int_equal(X509_set_version(cert, X509_VERSION_3), 1);
    assert_int_equal(ASN1_INTEGER_set(X509_get_serialNumber(cert), spec->serial != 0 ? spec->serial : 1), 1);
    X509_NAME *subject = spec->subject_name != NULL ? spec->subject_name : cf_name(spec->subject);
    assert_int_equal(X509_set_subject_name(cert, subject), 1);
    X509 *issuer = spec->issuer != NULL ? spec->issuer : cert;
    assert_int_equal(X509_set_issuer_name(cert, spec->issuer != NULL ? X509_get_subject_name(spec->issuer)
                                                                     : subject),
                     1);
    if (spec->subject_name == NULL)
        X509_NAME_free(subject);
    cf_set_time(X509_getm_notBefore(cert), spec->not_before, -3600);
    cf_set_time(X509_getm_notAfter(cert), spec->not_after, 86400);
    assert_int_equal(X509_set_pubkey(cert, spec->key), 1);
    for (size_t i = 0; i < sizeof(spec->extensions) / sizeof(spec->extensions[0]) && spec->extensions[i]; i++)
        cf_add_ext(cert, issuer, spec->extensions[i]);
    cf_sign(cert, spec->issuer_key != NULL ? spec->issuer_key : spec->key, spec->md);
    return cert;
}

/* A self-signed CA that may sign certificates and CRLs. */
static inline X509 *cf_ca(const char *subject, EVP_PKEY *key)
{
    struct cf_cert_spec spec = {
        .subject = subject,
        .key = key,
        .extensions = {"basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign",
                       "subjectKeyIdentifier=hash"},
    };
    return cf_cert(&spec);
}

/* A CRL from CA (signed with CA_KEY) revoking the certificates whose serials are
 * listed (terminated by 0). LAST_UPDATE/NEXT_UPDATE: NULL means an hour ago / in a day. */
static inline X509_CRL *cf_crl(X509 *ca, EVP_PKEY *ca_key, const char *last_update, const char *next_update,
                               const long *revoked_serials)
{
    X509_CRL *crl = X509_CRL_new();
    assert_non_null(crl);
    assert_int_equal(X509_CRL_set_version(crl, X509_CRL_VERSION_2), 1);
    assert_int_equal(X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca)), 1);
    ASN1_TIME *last = ASN1_TIME_new();
    ASN1_TIME *next = ASN1_TIME_new();
    assert_non_null(last);
    assert_non_null(next);
    cf_set_time(last, last_update, -3600);
    cf_set_time(next, next_update, 86400);
    assert_int_equal(X509_CRL_set1_lastUpdate(crl, last), 1);
    assert_int_equal(X509_CRL_set1_nextUpdate(crl, next), 1);
    for (size_t i = 0; revoked_serials != NULL && revoked_serials[i] != 0; i++) {
        X509_REVOKED *entry = X509_REVOKED_new();
        assert_non_null(entry);
        ASN1_INTEGER *serial = ASN1_INTEGER_new();
        assert_non_null(serial);
        assert_int_equal(ASN1_INTEGER_set(serial, revoked_serials[i]), 1);
        assert_int_equal(X509_REVOKED_set_serialNumber(entry, serial), 1);
        assert_int_equal(X509_REVOKED_set_revocationDate(entry, last), 1);
        assert_int_equal(X509_CRL_add0_revoked(crl, entry), 1);
        ASN1_INTEGER_free(serial);
    }
    assert_int_equal(X509_CRL_sort(crl), 1);
    assert_true(X509_CRL_sign(crl, ca_key, EVP_sha256()) > 0);
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    return crl;
}

struct cf_verify_spec {
    X509 *leaf;
    X509 *trusted;             /* the one trusted root; NULL: trust nothing           */
    X509 *untrusted[3];        /* chain the peer would send after the leaf            */
    X509_CRL *crl;             /* added to the store; with crl_check set, checked     */
    int crl_check;
    int purpose;               /* X509_PURPOSE_SSL_CLIENT/SERVER; 0: none             */
    int auth_level;            /* 0: OpenSSL's default                                */
    const char *host;          /* expected host name; NULL: none                      */
};

/* Runs X509_verify_cert as a TLS stack would. Returns the X509_V_ERR_* code (X509_V_OK
 * when the chain verifies) and the certificate it was raised at in *ERROR_CERT
 * (up-referenced, NULL on success; the caller frees). */
static inline int cf_verify(const struct cf_verify_spec *spec, X509 **error_cert)
{
    X509_STORE *store = X509_STORE_new();
    assert_non_null(store);
    if (spec->trusted != NULL)
        assert_int_equal(X509_STORE_add_cert(store, spec->trusted), 1);
    if (spec->crl != NULL)
        assert_int_equal(X509_STORE_add_crl(store, spec->crl), 1);
    STACK_OF(X509) *chain = sk_X509_new_null();
    assert_non_null(chain);
    for (size_t i = 0; i < 3 && spec->untrusted[i] != NULL; i++)
        assert_true(sk_X509_push(chain, spec->untrusted[i]) > 0);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, spec->leaf, chain), 1);
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    if (spec->crl_check)
        X509_VERIFY_PARAM_set_flags(param, X509_V_FLAG_CRL_CHECK);
    if (spec->purpose != 0)
        assert_int_equal(X509_STORE_CTX_set_purpose(ctx, spec->purpose), 1);
    if (spec->auth_level != 0)
        X509_VERIFY_PARAM_set_auth_level(param, spec->auth_level);
    if (spec->host != NULL)
        assert_int_equal(X509_VERIFY_PARAM_set1_host(param, spec->host, 0), 1);
    int verified = X509_verify_cert(ctx);
    int error = X509_STORE_CTX_get_error(ctx);
    X509 *at = X509_STORE_CTX_get_current_cert(ctx);
    if (verified == 1) {
        assert_int_equal(error, X509_V_OK);
        *error_cert = NULL;
    } else {
        assert_int_not_equal(error, X509_V_OK);
        assert_non_null(at);
        assert_int_equal(X509_up_ref(at), 1);
        *error_cert = at;
    }
    X509_STORE_CTX_free(ctx);
    sk_X509_free(chain);
    X509_STORE_free(store);
    return error;
}

#endif
