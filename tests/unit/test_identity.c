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
#include "core/identity.h"

static EVP_PKEY *test_key;

static int group_setup(void **state)
{
    (void)state;
    test_key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    return test_key != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(test_key);
    return 0;
}

static X509 *make_cert(const char *subject, const char *san)
{
    struct cf_cert_spec spec = {.subject = subject, .key = test_key, .extensions = {san}};
    return cf_cert(&spec);
}

/* A certificate whose subject is NAME (taken over). */
static X509 *make_cert_named(X509_NAME *name)
{
    struct cf_cert_spec spec = {.subject_name = name, .key = test_key};
    X509 *cert = cf_cert(&spec);
    X509_NAME_free(name);
    return cert;
}

/* Adds a subjectAltName holding raw bytes, as a CA that does not check would sign it
 * (X509V3_EXT_conf refuses such names, so build the GENERAL_NAMES by hand). */
static void add_raw_san(X509 *cert, int type, const char *bytes, int len)
{
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    GENERAL_NAME *name = GENERAL_NAME_new();
    ASN1_IA5STRING *text = ASN1_IA5STRING_new();
    assert_non_null(names);
    assert_non_null(name);
    assert_non_null(text);
    assert_int_equal(ASN1_STRING_set(text, bytes, len), 1);
    GENERAL_NAME_set0_value(name, type, text);
    assert_true(sk_GENERAL_NAME_push(names, name) > 0);
    assert_int_equal(X509_add1_ext_i2d(cert, NID_subject_alt_name, names, 0, X509V3_ADD_APPEND), 1);
    GENERAL_NAMES_free(names);
    cf_sign(cert, test_key, NULL);
}

static void hex_of(const unsigned char *digest, unsigned int len, char *out)
{
    for (unsigned int i = 0; i < len; i++)
        sprintf(out + 2 * i, "%02x", digest[i]);
}

static void test_subject_cn_and_ous(void **state)
{
    (void)state;
    X509 *cert = make_cert("/O=Example/OU=eng/OU=ops/CN=alice/CN=second", NULL);
    struct identity *id = identity_from_cert(cert);
    assert_non_null(id);
    /* RFC 2253 writes the most specific RDN first. */
    assert_string_equal(id->subject, "CN=second,CN=alice,OU=ops,OU=eng,O=Example");
    assert_string_equal(id->cn, "alice");
    assert_int_equal(id->ou.count, 2);
    assert_string_equal(id->ou.items[0], "eng");
    assert_string_equal(id->ou.items[1], "ops");
    assert_int_equal(id->dns.count, 0);
    assert_int_equal(id->uri.count, 0);
    assert_int_equal(id->email.count, 0);
    assert_string_equal(id->sans, "");
    identity_free(id);
    X509_free(cert);
}

static void test_no_cn(void **state)
{
    (void)state;
    X509 *cert = make_cert("/O=Example/OU=ops", NULL);
    struct identity *id = identity_from_cert(cert);
    assert_non_null(id);
    assert_null(id->cn);
    assert_string_equal(id->subject, "OU=ops,O=Example");
    identity_free(id);
    X509_free(cert);
}

static void test_every_san_kind(void **state)
{
    (void)state;
    X509 *cert = make_cert("/CN=web", "subjectAltName=DNS:a.example,URI:spiffe://td/web,"
                                      "email:alice@example.com,IP:192.0.2.7,DNS:b.example,IP:2001:db8::1");
    struct identity *id = identity_from_cert(cert);
    assert_non_null(id);
    assert_int_equal(id->dns.count, 2);
    assert_string_equal(id->dns.items[0], "a.example");
    assert_string_equal(id->dns.items[1], "b.example");
    assert_int_equal(id->uri.count, 1);
    assert_string_equal(id->uri.items[0], "spiffe://td/web");
    assert_int_equal(id->email.count, 1);
    assert_string_equal(id->email.items[0], "alice@example.com");
    assert_string_equal(id->sans, "DNS:a.example,URI:spiffe://td/web,email:alice@example.com,IP:192.0.2.7,"
                                  "DNS:b.example,IP:2001:db8::1");
    identity_free(id);
    X509_free(cert);
}

static void test_fingerprints_match_independent_digests(void **state)
{
    (void)state;
    X509 *cert = make_cert("/CN=alice", NULL);
    struct identity *id = identity_from_cert(cert);
    assert_non_null(id);

    unsigned char *der = NULL;
    int der_len = i2d_X509(cert, &der);
    assert_true(der_len > 0);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    assert_int_equal(EVP_Digest(der, (size_t)der_len, digest, &digest_len, EVP_sha256(), NULL), 1);
    char expected[2 * EVP_MAX_MD_SIZE + 1];
    hex_of(digest, digest_len, expected);
    assert_string_equal(id->sha256, expected);
    OPENSSL_free(der);

    /* SPKI of the key the certificate was made with: RFC 7469's pin input. */
    der = NULL;
    der_len = i2d_PUBKEY(test_key, &der);
    assert_true(der_len > 0);
    assert_int_equal(EVP_Digest(der, (size_t)der_len, digest, &digest_len, EVP_sha256(), NULL), 1);
    hex_of(digest, digest_len, expected);
    assert_string_equal(id->spki_sha256, expected);
    OPENSSL_free(der);

    assert_int_equal(strlen(id->sha256), 64);
    assert_string_not_equal(id->sha256, id->spki_sha256);
    identity_free(id);
    X509_free(cert);
}

static void test_same_key_same_spki_different_cert(void **state)
{
    (void)state;
    X509 *first = make_cert("/CN=alice", NULL);
    X509 *second = make_cert("/CN=alice-renewed", NULL);
    struct identity *a = identity_from_cert(first);
    struct identity *b = identity_from_cert(second);
    assert_non_null(a);
    assert_non_null(b);
    assert_string_equal(a->spki_sha256, b->spki_sha256);
    assert_string_not_equal(a->sha256, b->sha256);
    identity_free(a);
    identity_free(b);
    X509_free(first);
    X509_free(second);
}

static void test_embedded_nul_in_cn_is_escaped(void **state)
{
    (void)state;
    X509_NAME *name = X509_NAME_new();
    assert_non_null(name);
    static const char cn[] = "good.example\0.evil";
    assert_int_equal(X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_UTF8STRING,
                                                (const unsigned char *)cn, (int)sizeof(cn) - 1, -1, 0),
                     1);
    X509 *cert = make_cert_named(name);
    struct identity *id = identity_from_cert(cert);
    assert_non_null(id);
    assert_string_equal(id->cn, "good.example\\00.evil");
    assert_true(identity_value_has_escapes(id->cn));
    assert_string_equal(id->subject, "CN=good.example\\00.evil");
    identity_free(id);
    X509_free(cert);
}

static void test_control_characters_in_ou_are_escaped(void **state)
{
    (void)state;
    X509_NAME *name = X509_NAME_new();
    assert_non_null(name);
    static const char ou[] = "eng\nCN=admin\x1b[0m";
    assert_int_equal(X509_NAME_add_entry_by_NID(name, NID_organizationalUnitName, V_ASN1_UTF8STRING,
                                                (const unsigned char *)ou, (int)sizeof(ou) - 1, -1, 0),
                     1);
    X509 *cert = make_cert_named(name);
    struct identity *id = identity_from_cert(cert);
    assert_non_null(id);
    assert_int_equal(id->ou.count, 1);
    assert_string_equal(id->ou.items[0], "eng\\0ACN=admin\\1B[0m");
    assert_true(identity_value_has_escapes(id->ou.items[0]));
    assert_null(strchr(id->subject, '\n'));
    assert_null(strchr(id->subject, '\x1b'));
    identity_free(id);
    X509_free(cert);
}

static void test_literal_backslash_is_not_an_escape(void **state)
{
    (void)state;
    X509 *cert = make_cert("/CN=a\\00b", NULL);
    struct identity *id = identity_from_cert(cert);
    assert_non_null(id);
    assert_string_equal(id->cn, "a\\\\00b");
    assert_false(identity_value_has_escapes(id->cn));
    identity_free(id);
    X509_free(cert);
}

static void test_bmpstring_cn_becomes_utf8(void **state)
{
    (void)state;
    X509_NAME *name = X509_NAME_new();
    assert_non_null(name);
    static const unsigned char bmp[] = {0, 'J', 0, 'o', 0, 's', 0, 0xe9};
    assert_int_equal(X509_NAME_add_entry_by_NID(name, NID_commonName, V_ASN1_BMPSTRING, bmp, sizeof(bmp), -1, 0), 1);
    X509 *cert = make_cert_named(name);
    struct identity *id = identity_from_cert(cert);
    assert_non_null(id);
    assert_string_equal(id->cn, "Jos\xc3\xa9");
    assert_false(identity_value_has_escapes(id->cn));
    assert_string_equal(id->subject, "CN=Jos\xc3\xa9");
    identity_free(id);
    X509_free(cert);
}

static void test_embedded_nul_in_sans_is_escaped(void **state)
{
    (void)state;
    X509 *cert = make_cert("/CN=x", NULL);
    static const char dns[] = "good.example\0.evil.example";
    add_raw_san(cert, GEN_DNS, dns, (int)sizeof(dns) - 1);
    struct identity *id = identity_from_cert(cert);
    assert_non_null(id);
    assert_int_equal(id->dns.count, 1);
    assert_string_equal(id->dns.items[0], "good.example\\00.evil.example");
    assert_true(identity_value_has_escapes(id->dns.items[0]));
    assert_string_equal(id->sans, "DNS:good.example\\00.evil.example");
    identity_free(id);
    X509_free(cert);
}

static void test_non_ascii_in_uri_and_email_is_escaped(void **state)
{
    (void)state;
    X509 *uri_cert = make_cert("/CN=x", NULL);
    add_raw_san(uri_cert, GEN_URI, "spiffe://td/\xc3\xa9", 14);
    struct identity *id = identity_from_cert(uri_cert);
    assert_non_null(id);
    assert_string_equal(id->uri.items[0], "spiffe://td/\\C3\\A9");
    assert_true(identity_value_has_escapes(id->uri.items[0]));
    identity_free(id);
    X509_free(uri_cert);

    X509 *email_cert = make_cert("/CN=x", NULL);
    static const char email[] = "alice@example.com\0@evil";
    add_raw_san(email_cert, GEN_EMAIL, email, (int)sizeof(email) - 1);
    id = identity_from_cert(email_cert);
    assert_non_null(id);
    assert_string_equal(id->email.items[0], "alice@example.com\\00@evil");
    assert_string_equal(id->sans, "email:alice@example.com\\00@evil");
    identity_free(id);
    X509_free(email_cert);
}

static void test_duplicate_san_extension_is_refused(void **state)
{
    (void)state;
    X509 *cert = make_cert("/CN=x", "subjectAltName=DNS:a.example");
    add_raw_san(cert, GEN_DNS, "b.example", 9);
    assert_int_equal(X509_get_ext_count(cert), 2);
    assert_null(identity_from_cert(cert));
    X509_free(cert);
}

static void test_has_escapes(void **state)
{
    (void)state;
    assert_false(identity_value_has_escapes(""));
    assert_false(identity_value_has_escapes("alice"));
    assert_false(identity_value_has_escapes("a\\\\b"));
    assert_false(identity_value_has_escapes("\\\\"));
    assert_true(identity_value_has_escapes("a\\00"));
    assert_true(identity_value_has_escapes("\\\\\\0A"));
    assert_true(identity_value_has_escapes("trailing\\"));
    identity_free(NULL);
}

static void assert_subject_cn(const char *subject, int expected, const char *cn)
{
    char buf[64] = "untouched";
    int got = identity_subject_cn(subject, buf, sizeof(buf));
    if (got != expected)
        fail_msg("'%s': %d, expected %d", subject, got, expected);
    if (expected == 1)
        assert_string_equal(buf, cn);
}

static void test_subject_cn(void **state)
{
    (void)state;
    assert_subject_cn("CN=alice", 1, "alice");
    assert_subject_cn("CN=alice,OU=eng,O=Example", 1, "alice");
    assert_subject_cn("O=Example,cn=bob", 1, "bob");
    assert_subject_cn("commonName=carol+UID=7,O=Example", 1, "carol");
    assert_subject_cn("2.5.4.3=dave", 1, "dave");
    /* RFC 2253 escapes undone; a backslash and a control byte in the identity's form */
    assert_subject_cn("CN=Smith\\, John,O=Example\\, Inc.", 1, "Smith, John");
    assert_subject_cn("CN=a\\\\b", 1, "a\\\\b");
    assert_subject_cn("CN=evil\\00.example", 1, "evil\\00.example");
    assert_subject_cn("CN=Jos\\C3\\A9", 1, "Jos\xc3\xa9");
    /* not a subject with a CN: the key stays as it is */
    assert_subject_cn("alice", 0, NULL);
    assert_subject_cn("alice@example.com", 0, NULL);
    assert_subject_cn("10.0.0.1", 0, NULL);
    assert_subject_cn("O=Example,OU=eng", 0, NULL);
    assert_subject_cn("", 0, NULL);
    /* two CNs, a name that breaks off, a dangling escape, too long for the buffer */
    assert_subject_cn("CN=alice,CN=mallory", -1, NULL);
    assert_subject_cn("CN=alice,", -1, NULL);
    assert_subject_cn("CN=alice,garbage", -1, NULL);
    assert_subject_cn("CN=alice\\", -1, NULL);
    assert_subject_cn("CN=0123456789012345678901234567890123456789012345678901234567890123456789", -1,
                      NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_subject_cn_and_ous),
        cmocka_unit_test(test_no_cn),
        cmocka_unit_test(test_every_san_kind),
        cmocka_unit_test(test_fingerprints_match_independent_digests),
        cmocka_unit_test(test_same_key_same_spki_different_cert),
        cmocka_unit_test(test_embedded_nul_in_cn_is_escaped),
        cmocka_unit_test(test_control_characters_in_ou_are_escaped),
        cmocka_unit_test(test_literal_backslash_is_not_an_escape),
        cmocka_unit_test(test_bmpstring_cn_becomes_utf8),
        cmocka_unit_test(test_embedded_nul_in_sans_is_escaped),
        cmocka_unit_test(test_non_ascii_in_uri_and_email_is_escaped),
        cmocka_unit_test(test_duplicate_san_extension_is_refused),
        cmocka_unit_test(test_has_escapes),
        cmocka_unit_test(test_subject_cn),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
