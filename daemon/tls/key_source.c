#include "tls/key_source.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>

#include "config/key_file.h"
#include "core/log.h"
#include "tls/device_key.h"
#include "tls/tpm_key.h"

/* Longer than any passphrase or PIN worth typing; a longer first line is refused. */
#define PASSPHRASE_MAX 1024

struct passphrase {
    int set;                      /* a passphrase key is configured                */
    const char *key;              /* which one                                     */
    char path[4096];              /* the file it was read from                     */
    char text[PASSPHRASE_MAX];
};

static void fail_with(struct key_source_error *error, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail_with(struct key_source_error *error, const char *key, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    error->key = key;
    vsnprintf(error->reason, sizeof(error->reason), fmt, args);
    va_end(args);
}


/* Reads the first line of PASS->path (its newline stripped) into PASS->text. */
static int read_passphrase_file(struct passphrase *pass, struct key_source_error *error)
{
    int result = -1;
    FILE *in = fopen(pass->path, "re");
    if (in == NULL) {
        fail_with(error, pass->key, "%s: %s", pass->path, strerror(errno));
        return -1;
    }
    if (fgets(pass->text, sizeof(pass->text), in) == NULL) {
        if (ferror(in))
            fail_with(error, pass->key, "%s: %s", pass->path, strerror(errno));
        else
            pass->text[0] = '\0', result = 0;
        goto out;
    }
    size_t len = strcspn(pass->text, "\r\n");
    if (pass->text[len] == '\0' && len == sizeof(pass->text) - 1) {
        fail_with(error, pass->key, "%s: the first line is longer than %d bytes", pass->path,
                  PASSPHRASE_MAX - 1);
        goto out;
    }
    pass->text[len] = '\0';
    result = 0;
out:
    fclose(in);
    return result;
}

/* Finds and reads TUNNEL's passphrase, if it has one. */
static int read_passphrase(const struct tunnel_config *tunnel, struct passphrase *pass,
                           struct key_source_error *error)
{
    if (tunnel->key_passphrase_file != NULL) {
        pass->key = "key_passphrase_file";
        snprintf(pass->path, sizeof(pass->path), "%s", tunnel->key_passphrase_file);
    } else if (tunnel->key_passphrase_credential != NULL) {
        pass->key = "key_passphrase_credential";
        const char *directory = getenv("CREDENTIALS_DIRECTORY");
        if (directory == NULL || directory[0] == '\0') {
            fail_with(error, pass->key,
                      "CREDENTIALS_DIRECTORY is not set: credential %s comes from the "
                      "unit's LoadCredential=%s:FILE (outside systemd, use key_passphrase_file)",
                      tunnel->key_passphrase_credential, tunnel->key_passphrase_credential);
            return -1;
        }
        snprintf(pass->path, sizeof(pass->path), "%s/%s", directory,
                 tunnel->key_passphrase_credential);
    } else {
        return 0;
    }
    pass->set = 1;
    return read_passphrase_file(pass, error);
}

static int give_passphrase(char *buf, int size, int rwflag, void *userdata)
{
    const struct passphrase *pass = userdata;
    (void)rwflag;
    if (pass == NULL || !pass->set)
        return 0;
    int len = (int)strlen(pass->text);
    if (len > size)
        return 0;
    memcpy(buf, pass->text, (size_t)len);
    return len;
}

/* A bundle's passphrase: the configured one, else "" or none (the two ways a bundle
 * without a passphrase is written); NULL when none of them opens its MAC. */
static const char *bundle_passphrase(PKCS12 *p12, const struct passphrase *pass)
{
    if (!PKCS12_mac_present(p12))
        return pass->set ? pass->text : "";
    if (pass->set)
        return PKCS12_verify_mac(p12, pass->text, -1) ? pass->text : NULL;
    if (PKCS12_verify_mac(p12, "", 0))
        return "";
    return PKCS12_verify_mac(p12, NULL, 0) ? "" : NULL;
}

/* Reads the PKCS#12 bundle PATH (the configuration's KEY_NAME) into OUT: its key
 * when WANT_KEY, its certificates when WANT_CERTS. */
static int read_bundle(const char *path, const char *key_name, const struct passphrase *pass,
                       int want_certs, int want_key, struct key_material *out,
                       struct key_source_error *error)
{
    int result = -1;
    EVP_PKEY *key = NULL;
    X509 *leaf = NULL;
    STACK_OF(X509) *chain = NULL;
    BIO *bio = BIO_new_file(path, "rb");
    PKCS12 *p12 = bio != NULL ? d2i_PKCS12_bio(bio, NULL) : NULL;
    if (p12 == NULL) {
        fail_with(error, key_name, "%s: not a PKCS#12 bundle (%s)", path, log_openssl_reason(NULL));
        goto out;
    }
    const char *secret = bundle_passphrase(p12, pass);
    if (secret == NULL && !pass->set) {
        fail_with(error, key_name, "%s is a PKCS#12 bundle protected by a passphrase: set "
                  "key_passphrase_file (or key_passphrase_credential)", path);
        goto out;
    }
    if (secret == NULL || !PKCS12_parse(p12, secret, &key, &leaf, &chain)) {
        fail_with(error, pass->key, "the passphrase in %s does not decrypt %s (%s)", pass->path,
                  path, secret == NULL ? "mac verify failure" : log_openssl_reason(NULL));
        goto out;
    }
    if (want_key && key == NULL) {
        fail_with(error, key_name, "%s holds no private key: add key = the key's file or URI",
                  path);
        goto out;
    }
    /* Without a key nothing marks the leaf: it is the bundle's first certificate. */
    if (want_certs && leaf == NULL && key == NULL && sk_X509_num(chain) > 0)
        leaf = sk_X509_shift(chain);
    if (want_certs && leaf == NULL) {
        fail_with(error, key_name, "%s holds no certificate of its key", path);
        goto out;
    }
    if (want_key) {
        out->key = key;
        key = NULL;
    }
    if (want_certs) {
        out->leaf = leaf;
        out->chain = chain != NULL ? chain : sk_X509_new_null();
        leaf = NULL;
        chain = NULL;
        if (out->chain == NULL) {
            fail_with(error, key_name, "out of memory");
            goto out;
        }
    }
    result = 0;
out:
    sk_X509_pop_free(chain, X509_free);
    X509_free(leaf);
    EVP_PKEY_free(key);
    PKCS12_free(p12);
    BIO_free(bio);
    ERR_clear_error();
    return result;
}

/* Every PEM certificate of PATH in order: the first as the leaf. */
static int read_pem_chain(const char *path, struct key_material *out,
                          struct key_source_error *error)
{
    BIO *bio = BIO_new_file(path, "r");
    X509 *cert;
    out->chain = sk_X509_new_null();
    while (out->chain != NULL && bio != NULL &&
           (cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (out->leaf == NULL)
            out->leaf = cert;
        else if (!sk_X509_push(out->chain, cert))
            X509_free(cert);
    }
    BIO_free(bio);
    ERR_clear_error();
    if (out->leaf != NULL)
        return 0;
    fail_with(error, "cert", "%s holds no certificate in PEM form; a DER one converts with "
              "openssl x509 -inform DER -in %s -out cert.pem", path, path);
    return -1;
}

static int read_pem_key(const char *path, enum key_file_kind kind, const struct passphrase *pass,
                        struct key_material *out, struct key_source_error *error)
{
    if (kind == KEY_FILE_ENCRYPTED && !pass->set) {
        fail_with(error, "key", "%s is encrypted with a passphrase: set key_passphrase_file "
                  "(or key_passphrase_credential) to the file that holds it", path);
        return -1;
    }
    BIO *bio = BIO_new_file(path, "r");
    out->key = bio != NULL ? PEM_read_bio_PrivateKey(bio, NULL, give_passphrase, (void *)pass)
                           : NULL;
    BIO_free(bio);
    if (out->key != NULL) {
        ERR_clear_error();
        return 0;
    }
    if (kind == KEY_FILE_ENCRYPTED)
        fail_with(error, pass->key, "the passphrase in %s does not decrypt %s (%s)", pass->path,
                  path, log_openssl_reason(NULL));
    else
        fail_with(error, "key", "%s holds no private key in PEM form; a DER one converts with "
                  "openssl pkey -inform DER -in %s -out key.pem", path, path);
    ERR_clear_error();
    return -1;
}

static int read_key(const struct tunnel_config *tunnel, const struct passphrase *pass,
                    struct key_material *out, struct key_source_error *error)
{
    char reason[sizeof(error->reason)];
    enum key_file_kind kind;
    switch (tunnel->key_location) {
    case KEY_LOCATION_PKCS11:
        out->key = device_key_pkcs11(tunnel->key, tunnel->pkcs11_module,
                                     pass->set ? pass->text : NULL, reason, sizeof(reason));
        break;
    case KEY_LOCATION_TPM:
        /* The public half: the private one is used in the workers alone. */
        out->key = tpm_key_public(tunnel->key, reason, sizeof(reason));
        break;
    case KEY_LOCATION_FILE:
    default:
        kind = key_file_sniff(tunnel->key);
        if (kind == KEY_FILE_PKCS12)
            return read_bundle(tunnel->key, "key", pass, 0, 1, out, error);
        if (kind == KEY_FILE_TSS2) {
            fail_with(error, "key", "%s is a key in a TPM (TSS2 PRIVATE KEY): %s", tunnel->key,
                      KEY_FILE_TSS2_REFUSED);
            return -1;
        }
        return read_pem_key(tunnel->key, kind, pass, out, error);
    }
    if (out->key == NULL) {
        fail_with(error, "key", "%s", reason);
        return -1;
    }
    return 0;
}

int key_source_load(const struct tunnel_config *tunnel, struct key_material *out,
                    struct key_source_error *error)
{
    int result = -1;
    struct passphrase *pass = calloc(1, sizeof(*pass));
    memset(out, 0, sizeof(*out));
    if (pass == NULL) {
        fail_with(error, "cert", "out of memory");
        goto out;
    }
    if (read_passphrase(tunnel, pass, error) < 0)
        goto out;
    /* A bundle given as cert carries the key too, unless key names another. */
    int key_in_bundle = tunnel->key == NULL ||
                        (tunnel->key_location == KEY_LOCATION_FILE &&
                         strcmp(tunnel->key, tunnel->cert) == 0);
    if (key_file_sniff(tunnel->cert) == KEY_FILE_PKCS12) {
        if (read_bundle(tunnel->cert, "cert", pass, 1, key_in_bundle, out, error) < 0)
            goto out;
        if (key_in_bundle) {
            result = 0;
            goto out;
        }
    } else if (read_pem_chain(tunnel->cert, out, error) < 0) {
        goto out;
    }
    if (tunnel->key == NULL) {
        fail_with(error, "key", "missing (required unless cert is a PKCS#12 bundle)");
        goto out;
    }
    if (read_key(tunnel, pass, out, error) < 0)
        goto out;
    result = 0;
out:
    if (pass != NULL)
        OPENSSL_cleanse(pass, sizeof(*pass));
    free(pass);
    if (result < 0)
        key_source_release(out);
    ERR_clear_error();
    return result;
}

void key_source_release(struct key_material *material)
{
    X509_free(material->leaf);
    sk_X509_pop_free(material->chain, X509_free);
    EVP_PKEY_free(material->key);
    memset(material, 0, sizeof(*material));
}

const char *key_source_name(const struct tunnel_config *tunnel)
{
    return tunnel->key != NULL ? tunnel->key : tunnel->cert;
}
