/* verified_chains: the table of chains that verified, its limits in time and size,
 * and the key it files a chain under. */
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
#include "tls/verified_chains.h"

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

static void digest_of(unsigned char digest[VERIFIED_CHAINS_DIGEST_LEN], unsigned seed)
{
    for (size_t i = 0; i < VERIFIED_CHAINS_DIGEST_LEN; i++)
        digest[i] = (unsigned char)(seed * 2654435761u >> (i % 4 * 8)) ^ (unsigned char)i;
}

static void test_remembered_until_the_earliest_end(void **state)
{
    (void)state;
    struct verified_chains *table = verified_chains_create(64, 60);
    assert_non_null(table);
    unsigned char a[VERIFIED_CHAINS_DIGEST_LEN], b[VERIFIED_CHAINS_DIGEST_LEN];
    digest_of(a, 1);
    digest_of(b, 2);
    assert_false(verified_chains_contains(table, a, 1000));
    verified_chains_remember(table, a, 1000, 1010);
    assert_true(verified_chains_contains(table, a, 1000));
    assert_true(verified_chains_contains(table, a, 1009));
    assert_false(verified_chains_contains(table, a, 1010));   /* the chain's end */
    assert_false(verified_chains_contains(table, b, 1000));
    /* A far end is cut to the time to live. */
    verified_chains_remember(table, b, 1000, 1000000);
    assert_true(verified_chains_contains(table, b, 1000 + 60 - 1));
    assert_false(verified_chains_contains(table, b, 1000 + 60));
    /* An end already past is not remembered at all. */
    unsigned char c[VERIFIED_CHAINS_DIGEST_LEN];
    digest_of(c, 3);
    verified_chains_remember(table, c, 1000, 1000);
    assert_false(verified_chains_contains(table, c, 999));
    verified_chains_free(table);
}

static void test_bounded_size(void **state)
{
    (void)state;
    struct verified_chains *table = verified_chains_create(16, 60);
    unsigned char digest[VERIFIED_CHAINS_DIGEST_LEN];
    /* Far more chains than slots: the table keeps working, holds at most its size,
     * and the latest one is always there. */
    for (unsigned i = 0; i < 1000; i++) {
        digest_of(digest, i);
        verified_chains_remember(table, digest, 1000, 1030);
        assert_true(verified_chains_contains(table, digest, 1001));
    }
    int held = 0;
    for (unsigned i = 0; i < 1000; i++) {
        digest_of(digest, i);
        held += verified_chains_contains(table, digest, 1001);
    }
    assert_true(held > 0 && held <= 16);
    verified_chains_free(table);
}

static void test_the_key_is_the_whole_chain(void **state)
{
    (void)state;
    struct verified_chains *table = verified_chains_create(64, 60);
    struct cf_cert_spec root_spec = {.subject = "/CN=root", .key = test_key,
                                     .extensions = {"basicConstraints=critical,CA:TRUE"}};
    X509 *root = cf_cert(&root_spec);
    struct cf_cert_spec leaf_spec = {.subject = "/CN=alice", .key = test_key, .issuer = root,
                                     .issuer_key = test_key};
    X509 *leaf = cf_cert(&leaf_spec);
    leaf_spec.subject = "/CN=alice2";
    X509 *other = cf_cert(&leaf_spec);
    STACK_OF(X509) *with_root = sk_X509_new_null();
    sk_X509_push(with_root, leaf);
    sk_X509_push(with_root, root);

    unsigned char alone[VERIFIED_CHAINS_DIGEST_LEN], alone_again[VERIFIED_CHAINS_DIGEST_LEN],
        chained[VERIFIED_CHAINS_DIGEST_LEN], different[VERIFIED_CHAINS_DIGEST_LEN];
    assert_int_equal(verified_chains_digest(table, leaf, NULL, alone), 0);
    assert_int_equal(verified_chains_digest(table, leaf, NULL, alone_again), 0);
    assert_int_equal(verified_chains_digest(table, leaf, with_root, chained), 0);
    assert_int_equal(verified_chains_digest(table, other, NULL, different), 0);
    assert_memory_equal(alone, alone_again, sizeof(alone));
    assert_memory_not_equal(alone, chained, sizeof(alone));
    assert_memory_not_equal(alone, different, sizeof(alone));

    /* The chain's end is its earliest notAfter. */
    time_t now = time(NULL);
    time_t end = verified_chains_chain_end(with_root, now);
    assert_true(end > now && end <= now + 86400 + 5);
    assert_int_equal(verified_chains_chain_end(NULL, now), now);

    sk_X509_free(with_root);
    X509_free(other);
    X509_free(leaf);
    X509_free(root);
    verified_chains_free(table);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_remembered_until_the_earliest_end),
        cmocka_unit_test(test_bounded_size),
        cmocka_unit_test(test_the_key_is_the_whole_chain),
    };
    return cmocka_run_group_tests_name("verified_chains", tests, group_setup, group_teardown);
}
