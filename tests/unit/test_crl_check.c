/* crl_check: with crl set, every CA in ca needs a current CRL it signed, or OpenSSL's
 * whole-chain CRL checking refuses every peer whose chain passes through it. The
 * verdicts are compared with what OpenSSL itself does with the same store. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>

#include "cert_factory.h"
#include "check/crl_check.h"

static EVP_PKEY *root_key, *intermediate_key, *other_key, *leaf_key;
static X509 *root, *intermediate, *leaf;
static X509_CRL *root_crl, *intermediate_crl;

static int group_setup(void **state)
{
    (void)state;
    root_key = cf_key_ec();
    intermediate_key = cf_key_ec();
    other_key = cf_key_ec();
    leaf_key = cf_key_ec();
    root = cf_ca("/O=Example/CN=Root", root_key);
    struct cf_cert_spec spec = {
        .subject = "/O=Example/CN=Intermediate", .key = intermediate_key, .issuer = root,
        .issuer_key = root_key,
        .extensions = {"basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign",
                       "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid:always"},
    };
    intermediate = cf_cert(&spec);
    struct cf_cert_spec leaf_spec = {
        .subject = "/CN=alice", .key = leaf_key, .issuer = intermediate, .issuer_key = intermediate_key,
        .extensions = {"basicConstraints=critical,CA:FALSE", "extendedKeyUsage=clientAuth"},
    };
    leaf = cf_cert(&leaf_spec);
    root_crl = cf_crl(root, root_key, NULL, NULL, NULL);
    intermediate_crl = cf_crl(intermediate, intermediate_key, NULL, NULL, NULL);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    X509_CRL_free(intermediate_crl);
    X509_CRL_free(root_crl);
    X509_free(leaf);
    X509_free(intermediate);
    X509_free(root);
    EVP_PKEY_free(leaf_key);
    EVP_PKEY_free(other_key);
    EVP_PKEY_free(intermediate_key);
    EVP_PKEY_free(root_key);
    return 0;
}

static struct tunnel_config tunnel_with_crl(void)
{
    struct tunnel_config tunnel = {
        .name = "gw", .line = 3, .source = "/etc/ktlstun/ktlstun.ini", .crl = "/etc/ktlstun/crl.pem",
    };
    tunnel.key_lines[tunnel.key_line_count++] = (struct config_key_line){ "crl", 9 };
    return tunnel;
}

/* CRL as the daemon has it, read from its encoding: OpenSSL tells CRLs of one issuer
 * apart by the digest it takes when it decodes one, which a CRL built in memory lacks. */
static X509_CRL *decoded(X509_CRL *crl)
{
    unsigned char *der = NULL;
    int len = i2d_X509_CRL(crl, &der);
    assert_true(len > 0);
    const unsigned char *p = der;
    X509_CRL *copy = d2i_X509_CRL(NULL, &p, len);
    assert_non_null(copy);
    OPENSSL_free(der);
    return copy;
}

/* A store of the CAs and CRLs given (either list NULL-terminated). */
static X509_STORE *store_of(X509 *const *cas, X509_CRL *const *crls)
{
    X509_STORE *store = X509_STORE_new();
    assert_non_null(store);
    for (size_t i = 0; cas[i] != NULL; i++)
        assert_int_equal(X509_STORE_add_cert(store, cas[i]), 1);
    for (size_t i = 0; crls[i] != NULL; i++) {
        X509_CRL *copy = decoded(crls[i]);
        assert_int_equal(X509_STORE_add_crl(store, copy), 1);
        X509_CRL_free(copy);
    }
    return store;
}

/* What OpenSSL says of alice's chain with STORE, as a tunnel with crl set checks it. */
static int openssl_verdict(X509_STORE *store)
{
    STACK_OF(X509) *untrusted = sk_X509_new_null();
    assert_non_null(untrusted);
    assert_true(sk_X509_push(untrusted, intermediate) > 0);
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    assert_non_null(ctx);
    assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, untrusted), 1);
    X509_VERIFY_PARAM_set_flags(X509_STORE_CTX_get0_param(ctx),
                                X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    int error = X509_verify_cert(ctx) == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
    X509_STORE_CTX_free(ctx);
    sk_X509_free(untrusted);
    return error;
}

static void check(X509_STORE *store, struct check_report *report)
{
    struct tunnel_config tunnel = tunnel_with_crl();
    crl_check_store(&tunnel, store, time(NULL), report);
}

static void test_every_ca_with_its_crl_is_fine(void **state)
{
    (void)state;
    X509 *cas[] = { root, intermediate, NULL };
    X509_CRL *crls[] = { intermediate_crl, root_crl, NULL };
    X509_STORE *store = store_of(cas, crls);
    struct check_report report = { 0 };
    check(store, &report);
    assert_int_equal(report.count, 0);
    assert_int_equal(openssl_verdict(store), X509_V_OK);
    X509_STORE_free(store);
}

static void test_root_without_its_crl(void **state)
{
    (void)state;
    X509 *cas[] = { root, NULL };
    X509_CRL *crls[] = { intermediate_crl, NULL };
    X509_STORE *store = store_of(cas, crls);
    struct check_report report = { 0 };
    check(store, &report);
    assert_int_equal(report.count, 1);
    assert_string_equal(report.problems[0].where, "/etc/ktlstun/ktlstun.ini:9: [gw] crl");
    assert_true(check_report_has(&report, CHECK_ERROR,
                                 "/etc/ktlstun/crl.pem has no CRL from CN=Root,O=Example (a CA in ca)"));
    assert_int_equal(openssl_verdict(store), X509_V_ERR_UNABLE_TO_GET_CRL);
    check_report_free(&report);
    X509_STORE_free(store);
}

static void test_intermediate_in_ca_without_its_crl(void **state)
{
    (void)state;
    X509 *cas[] = { root, intermediate, NULL };
    X509_CRL *crls[] = { root_crl, NULL };
    X509_STORE *store = store_of(cas, crls);
    struct check_report report = { 0 };
    check(store, &report);
    assert_int_equal(report.count, 1);
    assert_true(check_report_has(&report, CHECK_ERROR, "no CRL from CN=Intermediate,O=Example"));
    assert_int_equal(openssl_verdict(store), X509_V_ERR_UNABLE_TO_GET_CRL);
    check_report_free(&report);
    X509_STORE_free(store);
}

static void test_crl_with_the_right_name_but_another_key(void **state)
{
    (void)state;
    X509_CRL *forged = cf_crl(root, other_key, NULL, NULL, NULL);
    X509 *cas[] = { root, NULL };
    X509_CRL *crls[] = { intermediate_crl, forged, NULL };
    X509_STORE *store = store_of(cas, crls);
    struct check_report report = { 0 };
    check(store, &report);
    assert_true(check_report_has(&report, CHECK_ERROR, "no CRL from CN=Root,O=Example"));
    assert_int_not_equal(openssl_verdict(store), X509_V_OK);
    check_report_free(&report);
    X509_STORE_free(store);
    X509_CRL_free(forged);
}

static void test_expired_and_future_crls(void **state)
{
    (void)state;
    X509_CRL *expired = cf_crl(root, root_key, "20200101000000Z", "20200201000000Z", NULL);
    X509_CRL *future = cf_crl(intermediate, intermediate_key, "20990101000000Z", "20990201000000Z", NULL);
    X509 *cas[] = { root, intermediate, NULL };
    X509_CRL *crls[] = { expired, future, NULL };
    X509_STORE *store = store_of(cas, crls);
    struct check_report report = { 0 };
    check(store, &report);
    assert_int_equal(report.count, 2);
    assert_true(check_report_has(&report, CHECK_ERROR,
                                 "the CRL from CN=Root,O=Example (a CA in ca) expired on 2020-02-01T00:00:00Z"));
    assert_true(check_report_has(&report, CHECK_ERROR,
                                 "the CRL from CN=Intermediate,O=Example (a CA in ca) is not valid before 2099-01-01T00:00:00Z"));
    assert_int_not_equal(openssl_verdict(store), X509_V_OK);
    check_report_free(&report);
    X509_STORE_free(store);
    /* A current CRL beside the expired one is enough, as it is for OpenSSL. */
    X509 *root_only[] = { root, intermediate, NULL };
    X509_CRL *both[] = { expired, root_crl, intermediate_crl, NULL };
    store = store_of(root_only, both);
    check(store, &report);
    assert_int_equal(report.count, 0);
    assert_int_equal(openssl_verdict(store), X509_V_OK);
    X509_STORE_free(store);
    X509_CRL_free(future);
    X509_CRL_free(expired);
}

static void test_no_crl_set_checks_nothing(void **state)
{
    (void)state;
    X509 *cas[] = { root, NULL };
    X509_CRL *crls[] = { NULL };
    X509_STORE *store = store_of(cas, crls);
    struct tunnel_config tunnel = tunnel_with_crl();
    tunnel.crl = NULL;
    struct check_report report = { 0 };
    crl_check_store(&tunnel, store, time(NULL), &report);
    assert_int_equal(report.count, 0);
    X509_STORE_free(store);
}

static void test_many_cas_are_summed_up(void **state)
{
    (void)state;
    X509 *cas[13] = { NULL };
    char subject[32];
    for (int i = 0; i < 12; i++) {
        snprintf(subject, sizeof(subject), "/CN=Root %d", i);
        cas[i] = cf_ca(subject, other_key);
    }
    X509_CRL *crls[] = { NULL };
    X509_STORE *store = store_of(cas, crls);
    struct check_report report = { 0 };
    check(store, &report);
    assert_int_equal(report.count, 9);
    assert_true(check_report_has(&report, CHECK_ERROR, "4 more CAs in ca have no current CRL in it"));
    check_report_free(&report);
    X509_STORE_free(store);
    for (int i = 0; i < 12; i++)
        X509_free(cas[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_ca_with_its_crl_is_fine),
        cmocka_unit_test(test_root_without_its_crl),
        cmocka_unit_test(test_intermediate_in_ca_without_its_crl),
        cmocka_unit_test(test_crl_with_the_right_name_but_another_key),
        cmocka_unit_test(test_expired_and_future_crls),
        cmocka_unit_test(test_no_crl_set_checks_nothing),
        cmocka_unit_test(test_many_cas_are_summed_up),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
