/* key_source and key_file: a tunnel's chain and key from PEM, encrypted PEM and
 * PKCS#12 files, with the passphrase from a file or a credential; the refusals a user
 * reads, at the key they name. Files are written by OpenSSL here, in a temp dir. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/pkcs12.h>

#include "cert_factory.h"
#include "config/key_file.h"
#include "tls/key_source.h"

static char dir[] = "/tmp/ktlstun-key-source-XXXXXX";
static EVP_PKEY *key;
static X509 *ca, *leaf;

static char *path_of(const char *name)
{
    static char paths[8][256];
    static int next;
    char *path = paths[next++ % 8];
    snprintf(path, sizeof(paths[0]), "%s/%s", dir, name);
    return path;
}

static void write_text(const char *name, const char *text)
{
    FILE *out = fopen(path_of(name), "w");
    assert_non_null(out);
    fputs(text, out);
    fclose(out);
}

static void write_pem(const char *name, const char *passphrase, int traditional)
{
    BIO *out = BIO_new_file(path_of(name), "w");
    assert_non_null(out);
    const EVP_CIPHER *cipher = passphrase != NULL ? EVP_aes_256_cbc() : NULL;
    int len = passphrase != NULL ? (int)strlen(passphrase) : 0;
    int ok = traditional ? PEM_write_bio_PrivateKey_traditional(out, key, cipher,
                                                                (unsigned char *)passphrase,
                                                                len, NULL, NULL)
                         : PEM_write_bio_PKCS8PrivateKey(out, key, cipher, (char *)passphrase,
                                                         len, NULL, NULL);
    assert_int_equal(ok, 1);
    BIO_free(out);
}

static void write_p12(const char *name, const char *passphrase, int with_key)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    assert_non_null(chain);
    assert_true(sk_X509_push(chain, ca) > 0);
    PKCS12 *p12 = PKCS12_create(passphrase, "server", with_key ? key : NULL, leaf, chain, 0, 0,
                                0, 0, 0);
    assert_non_null(p12);
    FILE *out = fopen(path_of(name), "wb");
    assert_non_null(out);
    assert_int_equal(i2d_PKCS12_fp(out, p12), 1);
    fclose(out);
    PKCS12_free(p12);
    sk_X509_free(chain);
}

static int group_setup(void **state)
{
    (void)state;
    if (mkdtemp(dir) == NULL)
        return -1;
    key = cf_key_ec();
    ca = cf_ca("/CN=Key Source CA", key);
    struct cf_cert_spec spec = {
        .subject = "/CN=localhost", .key = key, .issuer = ca, .issuer_key = key,
        .extensions = {"basicConstraints=critical,CA:FALSE"},
    };
    leaf = cf_cert(&spec);
    FILE *out = fopen(path_of("server.pem"), "w");
    if (out == NULL)
        return -1;
    PEM_write_X509(out, leaf);
    PEM_write_X509(out, ca);
    fclose(out);
    write_pem("plain.key", NULL, 0);
    write_pem("enc8.key", "s3cret", 0);
    write_pem("enctrad.key", "s3cret", 1);
    write_p12("nopass.p12", "", 1);
    write_p12("pass.p12", "s3cret", 1);
    write_p12("nokey.p12", "", 0);
    write_text("pass.txt", "s3cret\nignored second line\n");
    write_text("wrong.txt", "guess\n");
    write_text("creds-web.pass", "s3cret\r\n");
    write_text("tss2.key", "-----BEGIN TSS2 PRIVATE KEY-----\nMAA=\n-----END TSS2 PRIVATE KEY-----\n");
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    char command[128];
    snprintf(command, sizeof(command), "rm -rf '%s'", dir);
    EVP_PKEY_free(key);
    X509_free(ca);
    X509_free(leaf);
    return system(command) == 0 ? 0 : -1;
}

static struct tunnel_config tunnel(const char *cert, const char *key_file, const char *pass)
{
    struct tunnel_config t = { .name = (char *)"web" };
    t.cert = path_of(cert);
    t.key = key_file != NULL ? path_of(key_file) : NULL;
    t.key_passphrase_file = pass != NULL ? path_of(pass) : NULL;
    return t;
}

/* Loads T and checks that it gives the leaf, the CA as its chain and the key. */
static void assert_loads(struct tunnel_config t)
{
    struct key_material material;
    struct key_source_error error = { 0 };
    int loaded = key_source_load(&t, &material, &error);
    if (loaded < 0)
        fail_msg("%s: %s", error.key, error.reason);
    assert_int_equal(X509_cmp(material.leaf, leaf), 0);
    assert_int_equal(sk_X509_num(material.chain), 1);
    assert_int_equal(X509_cmp(sk_X509_value(material.chain, 0), ca), 0);
    assert_int_equal(EVP_PKEY_eq(material.key, key), 1);
    key_source_release(&material);
    assert_null(material.key);
}

/* Loads T, expects a refusal at KEY whose reason contains TEXT. */
static void assert_refused(struct tunnel_config t, const char *config_key, const char *text)
{
    struct key_material material;
    struct key_source_error error = { 0 };
    assert_int_equal(key_source_load(&t, &material, &error), -1);
    assert_null(material.key);
    assert_null(material.leaf);
    assert_string_equal(error.key, config_key);
    if (strstr(error.reason, text) == NULL)
        fail_msg("no \"%s\" in: %s", text, error.reason);
    assert_null(strstr(error.reason, "s3cret"));
}

static void test_sniff(void **state)
{
    (void)state;
    assert_int_equal(key_file_sniff(path_of("server.pem")), KEY_FILE_OTHER);
    assert_int_equal(key_file_sniff(path_of("plain.key")), KEY_FILE_OTHER);
    assert_int_equal(key_file_sniff(path_of("enc8.key")), KEY_FILE_ENCRYPTED);
    assert_int_equal(key_file_sniff(path_of("enctrad.key")), KEY_FILE_ENCRYPTED);
    assert_int_equal(key_file_sniff(path_of("pass.p12")), KEY_FILE_PKCS12);
    assert_int_equal(key_file_sniff(path_of("tss2.key")), KEY_FILE_TSS2);
    assert_int_equal(key_file_sniff(path_of("absent")), KEY_FILE_UNREAD);
}

static void test_files(void **state)
{
    (void)state;
    assert_loads(tunnel("server.pem", "plain.key", NULL));
    assert_loads(tunnel("server.pem", "enc8.key", "pass.txt"));
    assert_loads(tunnel("server.pem", "enctrad.key", "pass.txt"));
    assert_loads(tunnel("nopass.p12", NULL, NULL));
    assert_loads(tunnel("pass.p12", NULL, "pass.txt"));
    assert_loads(tunnel("pass.p12", "pass.p12", "pass.txt"));
    /* A bundle's certificates with a key of its own. */
    assert_loads(tunnel("nokey.p12", "plain.key", NULL));
    assert_loads(tunnel("server.pem", "pass.p12", "pass.txt"));
}

static void test_credential(void **state)
{
    (void)state;
    struct tunnel_config t = tunnel("server.pem", "enc8.key", NULL);
    t.key_passphrase_credential = (char *)"creds-web.pass";
    assert_int_equal(unsetenv("CREDENTIALS_DIRECTORY"), 0);
    assert_refused(t, "key_passphrase_credential", "CREDENTIALS_DIRECTORY is not set");
    assert_int_equal(setenv("CREDENTIALS_DIRECTORY", dir, 1), 0);
    assert_loads(t);
    t.key_passphrase_credential = (char *)"absent.pass";
    assert_refused(t, "key_passphrase_credential", "absent.pass: No such file or directory");
    assert_int_equal(unsetenv("CREDENTIALS_DIRECTORY"), 0);
}

static void test_refusals(void **state)
{
    (void)state;
    assert_refused(tunnel("server.pem", "enc8.key", NULL), "key",
                   "is encrypted with a passphrase: set key_passphrase_file");
    assert_refused(tunnel("server.pem", "enc8.key", "wrong.txt"), "key_passphrase_file",
                   "wrong.txt does not decrypt");
    assert_refused(tunnel("server.pem", "enctrad.key", "wrong.txt"), "key_passphrase_file",
                   "does not decrypt");
    assert_refused(tunnel("pass.p12", NULL, NULL), "cert",
                   "is a PKCS#12 bundle protected by a passphrase");
    assert_refused(tunnel("pass.p12", NULL, "wrong.txt"), "key_passphrase_file",
                   "does not decrypt");
    assert_refused(tunnel("nokey.p12", NULL, NULL), "cert", "holds no private key");
    assert_refused(tunnel("plain.key", "plain.key", NULL), "cert",
                   "holds no certificate in PEM form");
    assert_refused(tunnel("server.pem", "server.pem", NULL), "key",
                   "holds no private key in PEM form");
    assert_refused(tunnel("server.pem", "tss2.key", NULL), "key",
                   "is a key in a TPM (TSS2 PRIVATE KEY): give the key's persistent handle instead");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sniff),
        cmocka_unit_test(test_files),
        cmocka_unit_test(test_credential),
        cmocka_unit_test(test_refusals),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
