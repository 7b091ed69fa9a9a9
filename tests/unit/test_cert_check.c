/* cert_check: what a tunnel's own certificate file holds, judged as its peers will:
 * dates, order, the intermediate sent along, extendedKeyUsage for the mode. */
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
#include "check/cert_check.h"

#define DAY 86400
#define HOUR 3600

static EVP_PKEY *key;
static X509 *root, *intermediate, *server_leaf, *client_leaf, *noeku_leaf;

static X509 *leaf_with(const char *subject, X509 *issuer, const char *eku, const char *not_before,
                       const char *not_after)
{
    struct cf_cert_spec spec = {
        .subject = subject, .key = key, .issuer = issuer, .issuer_key = key,
        .not_before = not_before, .not_after = not_after,
        .extensions = {"basicConstraints=critical,CA:FALSE", "subjectKeyIdentifier=hash",
                       "authorityKeyIdentifier=keyid:always", eku},
    };
    return cf_cert(&spec);
}

static int group_setup(void **state)
{
    (void)state;
    key = cf_key_ec();
    root = cf_ca("/CN=Root", key);
    struct cf_cert_spec spec = {
        .subject = "/CN=Intermediate", .key = key, .issuer = root, .issuer_key = key,
        .not_after = "20991231000000Z",
        .extensions = {"basicConstraints=critical,CA:TRUE", "keyUsage=critical,keyCertSign,cRLSign",
                       "subjectKeyIdentifier=hash", "authorityKeyIdentifier=keyid:always"},
    };
    intermediate = cf_cert(&spec);
    server_leaf = leaf_with("/CN=server", intermediate, "extendedKeyUsage=serverAuth", NULL, NULL);
    client_leaf = leaf_with("/CN=client", intermediate, "extendedKeyUsage=clientAuth", NULL, NULL);
    noeku_leaf = leaf_with("/CN=noeku", intermediate, NULL, NULL, NULL);
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    X509_free(noeku_leaf);
    X509_free(client_leaf);
    X509_free(server_leaf);
    X509_free(intermediate);
    X509_free(root);
    EVP_PKEY_free(key);
    return 0;
}

static struct tunnel_config tunnel_in(enum tunnel_mode mode)
{
    struct tunnel_config tunnel = {
        .name = "web", .line = 7, .source = "/etc/ktlstun/ktlstun.ini", .mode = mode,
        .cert = "/etc/ktlstun/web.pem",
    };
    tunnel.key_lines[tunnel.key_line_count++] = (struct config_key_line){ "cert", 11 };
    return tunnel;
}

/* A stack of the certificates given (NULL-terminated), not owning them. */
static STACK_OF(X509) *stack_of(X509 *first, ...)
{
    STACK_OF(X509) *stack = sk_X509_new_null();
    assert_non_null(stack);
    va_list args;
    va_start(args, first);
    for (X509 *cert = first; cert != NULL; cert = va_arg(args, X509 *))
        assert_true(sk_X509_push(stack, cert) > 0);
    va_end(args);
    return stack;
}

static X509_STORE *store_of(X509 *first, X509 *second)
{
    X509_STORE *store = X509_STORE_new();
    assert_non_null(store);
    if (first != NULL)
        assert_int_equal(X509_STORE_add_cert(store, first), 1);
    if (second != NULL)
        assert_int_equal(X509_STORE_add_cert(store, second), 1);
    return store;
}

/* Runs cert_check_chain for a tunnel in MODE on CHAIN (the stack is freed) at now. */
static void check(enum tunnel_mode mode, STACK_OF(X509) *chain, X509_STORE *trusted,
                  STACK_OF(X509) *sent, uint64_t warning, struct check_report *report)
{
    struct tunnel_config tunnel = tunnel_in(mode);
    cert_check_chain(&tunnel, chain, trusted, sent, time(NULL), warning, report);
    sk_X509_free(chain);
}

static void test_good_chain_has_no_problem(void **state)
{
    (void)state;
    struct check_report report = { 0 };
    X509_STORE *trusted = store_of(root, NULL);
    check(TUNNEL_MODE_SERVER, stack_of(server_leaf, intermediate, NULL), trusted, NULL, HOUR, &report);
    check(TUNNEL_MODE_CLIENT, stack_of(client_leaf, intermediate, root, NULL), trusted, NULL, HOUR,
          &report);
    check(TUNNEL_MODE_CLIENT, stack_of(noeku_leaf, intermediate, NULL), trusted, NULL, HOUR, &report);
    check(TUNNEL_MODE_SERVER, stack_of(noeku_leaf, intermediate, NULL), trusted, NULL, HOUR, &report);
    assert_int_equal(report.count, 0);
    X509_STORE_free(trusted);
    check_report_free(&report);
}

static void test_problem_names_file_line_and_key(void **state)
{
    (void)state;
    struct check_report report = { 0 };
    check(TUNNEL_MODE_SERVER, stack_of(client_leaf, intermediate, NULL), NULL, NULL, 0, &report);
    assert_int_equal(report.count, 1);
    assert_string_equal(report.problems[0].where, "/etc/ktlstun/ktlstun.ini:11: [web] cert");
    assert_int_equal(report.problems[0].severity, CHECK_ERROR);
    assert_non_null(strstr(report.problems[0].reason, "extendedKeyUsage lacks serverAuth (it has clientAuth)"));
    check_report_free(&report);
}

static void test_purpose_must_fit_the_mode(void **state)
{
    (void)state;
    struct check_report report = { 0 };
    check(TUNNEL_MODE_CLIENT, stack_of(server_leaf, intermediate, NULL), NULL, NULL, 0, &report);
    assert_true(check_report_has(&report, CHECK_ERROR, "lacks clientAuth (it has serverAuth)"));
    check_report_free(&report);
}

static void test_dates(void **state)
{
    (void)state;
    struct check_report report = { 0 };
    X509 *expired = leaf_with("/CN=old", intermediate, NULL, "20200101000000Z", "20210101000000Z");
    X509 *notyet = leaf_with("/CN=new", intermediate, NULL, "20990101000000Z", "20991231000000Z");
    check(TUNNEL_MODE_SERVER, stack_of(expired, intermediate, NULL), NULL, NULL, 0, &report);
    assert_true(check_report_has(&report, CHECK_ERROR, "the certificate (CN=old) expired on 2021-01-01T00:00:00Z"));
    check(TUNNEL_MODE_SERVER, stack_of(notyet, intermediate, NULL), NULL, NULL, 0, &report);
    assert_true(check_report_has(&report, CHECK_ERROR, "the certificate (CN=new) is not valid before 2099-01-01T00:00:00Z"));
    assert_int_equal(check_report_errors(&report), 2);
    check_report_free(&report);
    X509_free(notyet);
    X509_free(expired);
}

static void test_expiry_within_the_warning_is_a_warning(void **state)
{
    (void)state;
    struct check_report report = { 0 };
    /* cert_factory's certificates end in a day. */
    X509 *soon = leaf_with("/CN=soon", intermediate, NULL, NULL, NULL);
    check(TUNNEL_MODE_SERVER, stack_of(soon, intermediate, NULL), NULL, NULL, 2 * DAY, &report);
    assert_int_equal(report.count, 1);
    assert_int_equal(report.problems[0].severity, CHECK_WARNING);
    assert_non_null(strstr(report.problems[0].reason, "the certificate (CN=soon) expires on "));
    assert_non_null(strstr(report.problems[0].reason, " hours), within expiry_warning"));
    assert_int_equal(check_report_errors(&report), 0);
    check_report_free(&report);
    check(TUNNEL_MODE_SERVER, stack_of(soon, intermediate, NULL), NULL, NULL, HOUR, &report);
    assert_int_equal(report.count, 0);
    check_report_free(&report);
    X509_free(soon);
}

static void test_leaf_must_come_first(void **state)
{
    (void)state;
    struct check_report report = { 0 };
    check(TUNNEL_MODE_SERVER, stack_of(intermediate, server_leaf, NULL), NULL, NULL, 0, &report);
    assert_int_equal(report.count, 1);
    assert_true(check_report_has(&report, CHECK_ERROR, "the leaf (CN=server) is certificate 2, after a CA certificate"));
    check_report_free(&report);
}

static void test_chain_out_of_order(void **state)
{
    (void)state;
    struct check_report report = { 0 };
    check(TUNNEL_MODE_SERVER, stack_of(server_leaf, root, intermediate, NULL), NULL, NULL, 0, &report);
    assert_int_equal(report.count, 1);
    assert_true(check_report_has(&report, CHECK_ERROR, "out of order: certificate 2 in the file (CN=Root) did not issue"));
    check_report_free(&report);
}

static void test_issuer_sent_along(void **state)
{
    (void)state;
    struct check_report report = { 0 };
    /* The intermediate in ca, no root: nothing completes the chain the peer gets. */
    X509_STORE *only_intermediate = store_of(intermediate, NULL);
    check(TUNNEL_MODE_SERVER, stack_of(server_leaf, NULL), only_intermediate, NULL, 0, &report);
    assert_int_equal(report.count, 1);
    assert_true(check_report_has(&report, CHECK_ERROR,
                                 "lacks its intermediate CA (issuer CN=Intermediate): append it after the leaf"));
    check_report_free(&report);
    /* The context built the chain from ca: the intermediate is sent. */
    STACK_OF(X509) *sent = stack_of(intermediate, NULL);
    check(TUNNEL_MODE_SERVER, stack_of(server_leaf, NULL), only_intermediate, sent, 0, &report);
    assert_int_equal(report.count, 0);
    sk_X509_free(sent);
    X509_STORE_free(only_intermediate);
    /* Issued by a root in ca: nothing to send. */
    X509 *from_root = leaf_with("/CN=direct", root, NULL, NULL, NULL);
    X509_STORE *with_root = store_of(root, NULL);
    check(TUNNEL_MODE_SERVER, stack_of(from_root, NULL), with_root, NULL, 0, &report);
    assert_int_equal(report.count, 0);
    /* An issuer found nowhere may be a root the peers trust: a warning. */
    check(TUNNEL_MODE_SERVER, stack_of(server_leaf, NULL), with_root, NULL, 0, &report);
    assert_int_equal(report.count, 1);
    assert_int_equal(report.problems[0].severity, CHECK_WARNING);
    assert_non_null(strstr(report.problems[0].reason, "its issuer CN=Intermediate is not in ca either"));
    check_report_free(&report);
    /* A self-signed leaf has no issuer to send. */
    X509 *self = leaf_with("/CN=self", NULL, NULL, NULL, NULL);
    check(TUNNEL_MODE_SERVER, stack_of(self, NULL), with_root, NULL, 0, &report);
    assert_int_equal(report.count, 0);
    X509_free(self);
    X509_STORE_free(with_root);
    X509_free(from_root);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_chain_has_no_problem),
        cmocka_unit_test(test_problem_names_file_line_and_key),
        cmocka_unit_test(test_purpose_must_fit_the_mode),
        cmocka_unit_test(test_dates),
        cmocka_unit_test(test_expiry_within_the_warning_is_a_warning),
        cmocka_unit_test(test_leaf_must_come_first),
        cmocka_unit_test(test_chain_out_of_order),
        cmocka_unit_test(test_issuer_sent_along),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
