#include "check/key_pair_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/x509v3.h>

/* Larger than any PEM key or certificate chain a tunnel uses; a bigger file is
 * sniffed by its beginning only. */
#define SNIFF_MAX ((size_t)1024 * 1024)

/* What a file holds, judged without a passphrase. */
enum file_kind { FILE_UNREAD, FILE_PKCS12, FILE_ENCRYPTED_KEY, FILE_OTHER };

/* Fails every passphrase request: a daemon has no terminal to prompt on, and the
 * check must not stop on one either. */
static int refuse_passphrase(char *buf, int size, int rwflag, void *userdata)
{
    (void)buf, (void)size, (void)rwflag, (void)userdata;
    return 0;
}

static int contains(const unsigned char *data, size_t len, const char *text)
{
    size_t text_len = strlen(text);
    for (size_t i = 0; i + text_len <= len; i++)
        if (memcmp(data + i, text, text_len) == 0)
            return 1;
    return 0;
}

/* Reads up to SNIFF_MAX bytes of PATH and says what it is. The bytes (a key's among
 * them) are wiped before they are freed. */
static enum file_kind sniff(const char *path)
{
    enum file_kind kind = FILE_UNREAD;
    unsigned char *data = malloc(SNIFF_MAX);
    FILE *in = fopen(path, "rbe");
    if (data == NULL || in == NULL)
        goto out;
    size_t len = fread(data, 1, SNIFF_MAX, in);
    kind = FILE_OTHER;
    /* A PFX is a DER SEQUENCE; PEM text never starts with 0x30. */
    if (len > 0 && data[0] == 0x30) {
        const unsigned char *cursor = data;
        PKCS12 *p12 = d2i_PKCS12(NULL, &cursor, (long)len);
        if (p12 != NULL)
            kind = FILE_PKCS12;
        PKCS12_free(p12);
    } else if (contains(data, len, "-----BEGIN ENCRYPTED PRIVATE KEY-----") ||
               contains(data, len, "Proc-Type: 4,ENCRYPTED")) {
        kind = FILE_ENCRYPTED_KEY;
    }
    OPENSSL_cleanse(data, len);
out:
    if (in != NULL)
        fclose(in);
    free(data);
    ERR_clear_error();
    return kind;
}

/* Returns every PEM certificate of PATH in order, or NULL when there is none. */
static STACK_OF(X509) *read_certificates(const char *path)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    BIO *bio = BIO_new_file(path, "r");
    X509 *cert;
    while (chain != NULL && bio != NULL &&
           (cert = PEM_read_bio_X509(bio, NULL, refuse_passphrase, NULL)) != NULL) {
        if (!sk_X509_push(chain, cert))
            X509_free(cert);
    }
    BIO_free(bio);
    ERR_clear_error();
    if (chain != NULL && sk_X509_num(chain) == 0) {
        sk_X509_free(chain);
        chain = NULL;
    }
    return chain;
}

static EVP_PKEY *read_key(const char *path)
{
    BIO *bio = BIO_new_file(path, "r");
    EVP_PKEY *key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, refuse_passphrase, NULL)
                                : NULL;
    BIO_free(bio);
    ERR_clear_error();
    return key;
}

/* Reports FILE (TUNNEL's KEY_NAME) when it is a PKCS#12 bundle or an encrypted key.
 * Returns -1 when it did. */
static int check_format(const struct tunnel_config *tunnel, const char *key_name,
                        const char *file, struct check_report *report)
{
    enum file_kind kind = sniff(file);
    if (kind == FILE_PKCS12) {
        check_report_tunnel(report, CHECK_ERROR, tunnel, key_name,
                            "%s is a PKCS#12 bundle; ktlstun reads PEM files: convert it: "
                            "openssl pkcs12 -in %s -nokeys -out cert.pem (the certificates) and "
                            "openssl pkcs12 -in %s -nocerts -nodes -out key.pem (the key, "
                            "keep it mode 0600)", file, file, file);
        return -1;
    }
    if (kind == FILE_ENCRYPTED_KEY && strcmp(key_name, "key") == 0) {
        check_report_tunnel(report, CHECK_ERROR, tunnel, key_name,
                            "%s is encrypted with a passphrase; ktlstun needs the key "
                            "unencrypted: openssl pkey -in %s -out %s.plain (keep it mode 0600)",
                            file, file, file);
        return -1;
    }
    return 0;
}

static int matches(X509 *cert, EVP_PKEY *key)
{
    EVP_PKEY *public = X509_get0_pubkey(cert);
    int same = public != NULL && EVP_PKEY_eq(public, key) == 1;
    ERR_clear_error();
    return same;
}

/* Reports a KEY that does not belong to the first certificate of CHAIN. */
static int check_match(const struct tunnel_config *tunnel, STACK_OF(X509) *chain, EVP_PKEY *key,
                       struct check_report *report)
{
    if (matches(sk_X509_value(chain, 0), key))
        return 0;
    for (int i = 1; i < sk_X509_num(chain); i++) {
        if (!matches(sk_X509_value(chain, i), key))
            continue;
        /* A CA first is cert_check's "the leaf must come first". */
        if ((X509_get_extension_flags(sk_X509_value(chain, 0)) & EXFLAG_CA) == 0)
            check_report_tunnel(report, CHECK_ERROR, tunnel, "cert",
                                "%s: key %s belongs to certificate %d in the file, not to the "
                                "first: put the leaf first, then its intermediates",
                                tunnel->cert, tunnel->key, i + 1);
        return -1;
    }
    check_report_tunnel(report, CHECK_ERROR, tunnel, "key",
                        "key %s does not belong to certificate %s (the certificate's public "
                        "key differs): give the key the certificate was issued for",
                        tunnel->key, tunnel->cert);
    return -1;
}

int key_pair_check_tunnel(const struct tunnel_config *tunnel, struct check_report *report)
{
    int result = 0;
    STACK_OF(X509) *chain = NULL;
    EVP_PKEY *key = NULL;
    if (tunnel->cert == NULL || tunnel->key == NULL)
        return 0;
    if (check_format(tunnel, "cert", tunnel->cert, report) < 0)
        result = -1;
    if (check_format(tunnel, "key", tunnel->key, report) < 0)
        result = -1;
    if (result < 0)
        goto out;
    chain = read_certificates(tunnel->cert);
    if (chain == NULL) {
        check_report_tunnel(report, CHECK_ERROR, tunnel, "cert",
                            "%s holds no certificate in PEM form; a DER "
                            "one converts with openssl x509 -inform DER -in %s -out cert.pem",
                            tunnel->cert, tunnel->cert);
        result = -1;
    }
    key = read_key(tunnel->key);
    if (key == NULL) {
        check_report_tunnel(report, CHECK_ERROR, tunnel, "key",
                            "%s holds no private key in PEM form; a DER "
                            "one converts with openssl pkey -inform DER -in %s -out key.pem",
                            tunnel->key, tunnel->key);
        result = -1;
    }
    if (result == 0)
        result = check_match(tunnel, chain, key, report);
out:
    EVP_PKEY_free(key);
    sk_X509_pop_free(chain, X509_free);
    return result;
}
