#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cert_factory.h"
#include "tls/verify_reason.h"

#define CRL_PATH "/etc/ktlstun/clients.crl"

/* One trusted root and one stranger, shared by every test (key generation is the
 * slow part). */
static EVP_PKEY *root_key, *other_key, *leaf_key;
static X509 *root, *other_root;

static int group_setup(void **state)
{
    (void)state;
    root_key = cf_key_ec();
    other_key = cf_key_ec();
    leaf_key = cf_key_ec();
    root = cf_ca("/O=ktlstun tests/CN=Test Root", root_key);
    other_root = cf_ca("/O=elsewhere/CN=Other Root", other_key);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    X509_free(other_root);
    X509_free(root);
    EVP_PKEY_free(leaf_key);
    EVP_PKEY_free(other_key);
    EVP_PKEY_free(root_key);
    return 0;
}

/* A leaf issued by the trusted root, customised by SPEC's non-zero fields. */
static X509 *leaf(struct cf_cert_spec spec)
{
    if (spec.subject == NULL && spec.subject_name == NULL)
        spec.subject = "/CN=alice";
    if (spec.key == NULL)
        spec.key = leaf_key;
    if (spec.issuer == NULL) {
        spec.issuer = root;
        spec.issuer_key = root_key;
    }
    return cf_cert(&spec);
}

/* Verifies with SPEC (trusting the root unless told otherwise), checks the error
 * code, and formats the reason for it into BUF. */
static void verify_and_explain(struct cf_verify_spec spec, int expected_error, const char *server_name,
                               char *buf, size_t len)
{
    X509 *at = NULL;
    int error = cf_verify(&spec, &at);
    if (error != expected_error)
        fail_msg("X509_verify_cert: got %d (%s), expected %d (%s)", error, X509_verify_cert_error_string(error),
                 expected_error, X509_verify_cert_error_string(expected_error));
    verify_reason_format(error, at, CRL_PATH, server_name, buf, len);
    X509_free(at);
}

static void test_valid_chain_verifies(void **state)
{
    (void)state;
    X509 *cert = leaf((struct cf_cert_spec){0});
    X509 *at = NULL;
    assert_int_equal(cf_verify(&(struct cf_verify_spec){.leaf = cert, .trusted = root,
                                                        .purpose = X509_PURPOSE_SSL_CLIENT, .auth_level = 2},
                               &at),
                     X509_V_OK);
    assert_null(at);
    X509_free(cert);
}

static void test_expired(void **state)
{
    (void)state;
    char reason[256];
    X509 *cert = leaf((struct cf_cert_spec){.not_before = "20190101000000Z", .not_after = "20200102030405Z"});
    verify_and_explain((struct cf_verify_spec){.leaf = cert, .trusted = root}, X509_V_ERR_CERT_HAS_EXPIRED, NULL,
                       reason, sizeof(reason));
    assert_string_equal(reason, "certificate expired on 2020-01-02 03:04:05 UTC (CN=alice)");
    X509_free(cert);
}

static void test_not_yet_valid(void **state)
{
    (void)state;
    char reason[256];
    X509 *cert = leaf((struct cf_cert_spec){.not_before = "20991122120000Z", .not_after = "21000101000000Z"});
    verify_and_explain((struct cf_verify_spec){.leaf = cert, .trusted = root}, X509_V_ERR_CERT_NOT_YET_VALID, NULL,
                       reason, sizeof(reason));
    assert_string_equal(reason, "certificate not valid before 2099-11-22 12:00:00 UTC (CN=alice)");
    X509_free(cert);
}

static void test_subject_without_cn(void **state)
{
    (void)state;
    char reason[256];
    X509 *cert = leaf((struct cf_cert_spec){.subject = "/O=Example/OU=ops", .not_before = "20190101000000Z",
                                            .not_after = "20200102030405Z"});
    verify_and_explain((struct cf_verify_spec){.leaf = cert, .trusted = root}, X509_V_ERR_CERT_HAS_EXPIRED, NULL,
                       reason, sizeof(reason));
    assert_string_equal(reason, "certificate expired on 2020-01-02 03:04:05 UTC (OU=ops,O=Example)");
    X509_free(cert);
}

static void test_unknown_ca(void **state)
{
    (void)state;
    char reason[256];
    X509 *cert = leaf((struct cf_cert_spec){.issuer = other_root, .issuer_key = other_key});
    verify_and_explain((struct cf_verify_spec){.leaf = cert, .trusted = root},
                       X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, NULL, reason, sizeof(reason));
    assert_string_equal(reason, "unknown CA: issuer CN=Other Root,O=elsewhere is not trusted");
    X509_free(cert);
}

static void test_unknown_ca_sent_in_chain(void **state)
{
    (void)state;
    char reason[256];
    X509 *cert = leaf((struct cf_cert_spec){.issuer = other_root, .issuer_key = other_key});
    verify_and_explain((struct cf_verify_spec){.leaf = cert, .trusted = root, .untrusted = {other_root}},
                       X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN, NULL, reason, sizeof(reason));
    assert_string_equal(reason, "unknown CA: issuer CN=Other Root,O=elsewhere is not trusted");
    X509_free(cert);
}

static void test_untrusted_intermediate(void **state)
{
    (void)state;
    char reason[256];
    /* The peer sends its intermediate but the root above it is not ours. */
    X509 *intermediate = cf_cert(&(struct cf_cert_spec){
        .subject = "/CN=Other Issuing CA", .key = other_key, .issuer = other_root, .issuer_key = other_key,
        .extensions = {"basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign"}});
    X509 *cert = leaf((struct cf_cert_spec){.issuer = intermediate, .issuer_key = other_key});
    verify_and_explain((struct cf_verify_spec){.leaf = cert, .trusted = root, .untrusted = {intermediate}},
                       X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, NULL, reason, sizeof(reason));
    assert_string_equal(reason, "unknown CA: issuer CN=Other Root,O=elsewhere is not trusted");
    X509_free(cert);
    X509_free(intermediate);
}

static void test_self_signed(void **state)
{
    (void)state;
    char reason[256];
    X509 *cert = cf_cert(&(struct cf_cert_spec){.subject = "/CN=selfie", .key = leaf_key});
    verify_and_explain((struct cf_verify_spec){.leaf = cert, .trusted = root}, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT,
                       NULL, reason, sizeof(reason));
    assert_string_equal(reason, "self-signed certificate is not trusted (CN=selfie)");
    X509_free(cert);
}

static void test_revoked(void **state)
{
    (void)state;
    char reason[256];
    static const long revoked[] = {42, 7, 0};
    X509_CRL *crl = cf_crl(root, root_key, NULL, NULL, revoked);
    X509 *bad = leaf((struct cf_cert_spec){.serial = 42});
    X509 *good = leaf((struct cf_cert_spec){.serial = 43, .subject = "/CN=bob"});
    verify_and_explain((struct cf_verify_spec){.leaf = bad, .trusted = root, .crl = crl, .crl_check = 1},
                       X509_V_ERR_CERT_REVOKED, NULL, reason, sizeof(reason));
    assert_string_equal(reason, "revoked (CRL " CRL_PATH ") (CN=alice)");
    /* The same CRL lets an unrevoked certificate through: the check is real. */
    X509 *at = NULL;
    assert_int_equal(cf_verify(&(struct cf_verify_spec){.leaf = good, .trusted = root, .crl = crl, .crl_check = 1},
                               &at),
                     X509_V_OK);
    X509_free(good);
    X509_free(bad);
    X509_CRL_free(crl);
}

static void test_crl_missing(void **state)
{
    (void)state;
    char reason[256];
    X509 *cert = leaf((struct cf_cert_spec){0});
    verify_and_explain((struct cf_verify_spec){.leaf = cert, .trusted = root, .crl_check = 1},
                       X509_V_ERR_UNABLE_TO_GET_CRL, NULL, reason, sizeof(reason));
    assert_string_equal(reason, "CRL " CRL_PATH " has no list from issuer CN=Test Root,O=ktlstun tests (CN=alice)");
    X509_free(cert);
}

static void test_crl_expired(void **state)
{
    (void)state;
    char reason[256];
    X509_CRL *crl = cf_crl(root, root_key, "20200101000000Z", "20200201000000Z", NULL);
    X509 *cert = leaf((struct cf_cert_spec){0});
    verify_and_explain((struct cf_verify_spec){.leaf = cert, .trusted = root, .crl = crl, .crl_check = 1},
                       X509_V_ERR_CRL_HAS_EXPIRED, NULL, reason, sizeof(reason));
    assert_string_equal(reason, "CRL " CRL_PATH " has expired (nextUpdate passed): refresh it (CN=alice)");
    X509_free(cert);
    X509_CRL_free(crl);
}

static void test_server_certificate_used_as_client(void **state)
{
    (void)state;
    char reason[256];
    X509 *cert = leaf((struct cf_cert_spec){.extensions = {"extendedKeyUsage=serverAuth"}});
    verify_and_explain((struct cf_verify_spec){.leaf = cert, .trusted = root, .purpose = X509_PURPOSE_SSL_CLIENT},
                       X509_V_ERR_INVALID_PURPOSE, NULL, reason, sizeof(reason));
    assert_string_equal(reason, "certificate not allowed for client authentication: extendedKeyUsage lacks "
                                "clientAuth (CN=alice)");
    X509_free(cert);
}

static void test_client_certificate_used_as_server(void **state)
{
    (void)state;
    char reason[256];
    X509 *cert = leaf((struct cf_cert_spec){.subject = "/CN=api.example", .extensions = {"extendedKeyUsage=clientAuth"}});
    verify_and_explain((struct cf_verify_spec){.leaf = cert, .trusted = root, .purpose = X509_PURPOSE_SSL_SERVER},
                       X509_V_ERR_INVALID_PURPOSE, NULL, reason, sizeof(reason));
    assert_string_equal(reason, "certificate not allowed for server authentication: extendedKeyUsage lacks "
                                "serverAuth (CN=api.example)");
    X509_free(cert);
}

static void test_purpose_neither(void **state)
{
    (void)state;
    char reason[256];
    X509 *cert = leaf((struct cf_cert_spec){.extensions = {"extendedKeyUsage=codeSigning"}});
    verify_and_explain((struct cf_verify_spec){.leaf = cert, .trusted = root, .purpose = X509_PURPOSE_SSL_CLIENT},
                       X509_V_ERR_INVALID_PURPOSE, NULL, reason, sizeof(reason));
    assert_string_equal(reason, "certificate purpose not allowed (extendedKeyUsage) (CN=alice)");
    X509_free(cert);
}

static void test_ca_certificate_as_leaf(void **state)
{
    (void)state;
    char reason[256];
    /* OpenSSL verifies it as a client leaf: the purpose checks look at keyUsage and
     * extendedKeyUsage only, so tls_context refuses it itself and asks for this text. */
    X509 *cert = leaf((struct cf_cert_spec){
        .subject = "/CN=Issuing CA",
        .extensions = {"basicConstraints=critical,CA:TRUE", "keyUsage=critical,digitalSignature,keyCertSign",
                       "extendedKeyUsage=clientAuth"}});
    X509 *at = NULL;
    assert_int_equal(cf_verify(&(struct cf_verify_spec){.leaf = cert, .trusted = root,
                                                        .purpose = X509_PURPOSE_SSL_CLIENT, .auth_level = 2},
                               &at),
                     X509_V_OK);
    verify_reason_format(X509_V_ERR_INVALID_NON_CA, cert, CRL_PATH, NULL, reason, sizeof(reason));
    assert_string_equal(reason, "certificate is a CA certificate (basicConstraints CA:TRUE), not a leaf "
                                "(CN=Issuing CA)");
    X509_free(cert);
}

static void test_hostname_mismatch(void **state)
{
    (void)state;
    char reason[256];
    X509 *cert = leaf((struct cf_cert_spec){.subject = "/CN=other.example",
                                            .extensions = {"subjectAltName=DNS:other.example"}});
    verify_and_explain((struct cf_verify_spec){.leaf = cert, .trusted = root, .host = "api.example"},
                       X509_V_ERR_HOSTNAME_MISMATCH, "api.example", reason, sizeof(reason));
    assert_string_equal(reason, "server certificate does not match server_name api.example (CN=other.example)");
    X509_free(cert);
}

static void test_rsa_1024_leaf_at_level_2(void **state)
{
    (void)state;
    char reason[256];
    EVP_PKEY *small = cf_key_rsa(1024);
    X509 *cert = leaf((struct cf_cert_spec){.subject = "/CN=weak-key", .key = small});
    X509 *at = NULL;
    /* Level 1 accepts it: the refusal below comes from the level, not the cert. */
    assert_int_equal(cf_verify(&(struct cf_verify_spec){.leaf = cert, .trusted = root, .auth_level = 1}, &at),
                     X509_V_OK);
    verify_and_explain((struct cf_verify_spec){.leaf = cert, .trusted = root, .auth_level = 2},
                       X509_V_ERR_EE_KEY_TOO_SMALL, NULL, reason, sizeof(reason));
    assert_string_equal(reason, "key too small (RSA 1024 bits) in CN=weak-key");
    X509_free(cert);
    EVP_PKEY_free(small);
}

static void test_sha1_leaf_at_level_2(void **state)
{
    (void)state;
    char reason[256];
    X509 *cert = leaf((struct cf_cert_spec){.subject = "/CN=old-signature", .md = EVP_sha1()});
    verify_and_explain((struct cf_verify_spec){.leaf = cert, .trusted = root, .auth_level = 2},
                       X509_V_ERR_CA_MD_TOO_WEAK, NULL, reason, sizeof(reason));
    assert_string_equal(reason, "weak signature digest (SHA-1) on CN=old-signature");
    X509_free(cert);
}

static void test_forged_issuer_signature(void **state)
{
    (void)state;
    char reason[256];
    /* Names the trusted root as issuer, but signed by another key. */
    X509 *cert = leaf((struct cf_cert_spec){.issuer = root, .issuer_key = other_key});
    verify_and_explain((struct cf_verify_spec){.leaf = cert, .trusted = root}, X509_V_ERR_CERT_SIGNATURE_FAILURE,
                       NULL, reason, sizeof(reason));
    assert_string_equal(reason, "certificate verification failed: certificate signature failure (CN=alice)");
    X509_free(cert);
}

static void test_missing_arguments(void **state)
{
    (void)state;
    char reason[256];
    verify_reason_format(X509_V_ERR_CERT_REVOKED, NULL, NULL, NULL, reason, sizeof(reason));
    assert_string_equal(reason, "revoked (CRL) (no certificate)");
    verify_reason_format(X509_V_ERR_HOSTNAME_MISMATCH, NULL, NULL, NULL, reason, sizeof(reason));
    assert_string_equal(reason, "server certificate does not match server_name (unset) (no certificate)");
    verify_reason_format(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT, NULL, NULL, NULL, reason, sizeof(reason));
    assert_string_equal(reason, "unknown CA: issuer (unknown) is not trusted");
    verify_reason_format(X509_V_ERR_CERT_HAS_EXPIRED, NULL, NULL, NULL, reason, sizeof(reason));
    assert_string_equal(reason, "certificate expired on (unreadable date) (no certificate)");
    /* Cut to fit, always terminated. */
    char small[8];
    verify_reason_format(X509_V_ERR_CERT_REVOKED, NULL, NULL, NULL, small, sizeof(small));
    assert_string_equal(small, "revoked");
    verify_reason_format(X509_V_ERR_CERT_REVOKED, NULL, NULL, NULL, NULL, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_chain_verifies),
        cmocka_unit_test(test_expired),
        cmocka_unit_test(test_not_yet_valid),
        cmocka_unit_test(test_subject_without_cn),
        cmocka_unit_test(test_unknown_ca),
        cmocka_unit_test(test_unknown_ca_sent_in_chain),
        cmocka_unit_test(test_untrusted_intermediate),
        cmocka_unit_test(test_self_signed),
        cmocka_unit_test(test_revoked),
        cmocka_unit_test(test_crl_missing),
        cmocka_unit_test(test_crl_expired),
        cmocka_unit_test(test_server_certificate_used_as_client),
        cmocka_unit_test(test_client_certificate_used_as_server),
        cmocka_unit_test(test_purpose_neither),
        cmocka_unit_test(test_ca_certificate_as_leaf),
        cmocka_unit_test(test_hostname_mismatch),
        cmocka_unit_test(test_rsa_1024_leaf_at_level_2),
        cmocka_unit_test(test_sha1_leaf_at_level_2),
        cmocka_unit_test(test_forged_issuer_signature),
        cmocka_unit_test(test_missing_arguments),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
