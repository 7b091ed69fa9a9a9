/* ktls_rekey: when our own KeyUpdate is due, the KeyUpdate message, and which kernel
 * releases take a new kTLS key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "ktls/ktls_rekey.h"
#include "ktls/tls_record.h"

static void test_record_limits(void **state)
{
    (void)state;
    /* RFC 8446 5.5: 2^24.5 records for AES-GCM; CCM the same class; ChaCha20 none. */
    uint64_t gcm = ktls_rekey_record_limit(KTLS_CIPHER_AES_128_GCM);
    assert_true(gcm > 0 && gcm <= (uint64_t)23726566);
    assert_int_equal(ktls_rekey_record_limit(KTLS_CIPHER_AES_256_GCM), gcm);
    assert_int_equal(ktls_rekey_record_limit(KTLS_CIPHER_AES_128_CCM), gcm);
    assert_int_equal(ktls_rekey_record_limit(KTLS_CIPHER_CHACHA20_POLY1305), 0);
}

static void test_due(void **state)
{
    (void)state;
    struct ktls_rekey_policy off = { 0, 0 };
    struct ktls_rekey_policy policy = { 60000, 1000 };
    struct ktls_rekey_usage usage = { 0, 0, 5000 };

    assert_int_equal(ktls_rekey_due(0, &off, &usage, 1u << 30), KTLS_REKEY_NOT_DUE);
    assert_int_equal(ktls_rekey_due(10, &off, &usage, 5000), KTLS_REKEY_NOT_DUE);
    usage.records = 9;
    assert_int_equal(ktls_rekey_due(10, &off, &usage, 5000), KTLS_REKEY_NOT_DUE);
    usage.records = 10;
    assert_int_equal(ktls_rekey_due(10, &off, &usage, 5000), KTLS_REKEY_RECORD_LIMIT);
    /* The cipher's limit wins over the schedule. */
    usage.bytes = 5000;
    assert_int_equal(ktls_rekey_due(10, &policy, &usage, 5000), KTLS_REKEY_RECORD_LIMIT);
    usage.records = 0;
    assert_int_equal(ktls_rekey_due(10, &policy, &usage, 5000), KTLS_REKEY_BYTES);
    usage.bytes = 999;
    assert_int_equal(ktls_rekey_due(10, &policy, &usage, 5000), KTLS_REKEY_NOT_DUE);
    assert_int_equal(ktls_rekey_due(10, &policy, &usage, 64999), KTLS_REKEY_NOT_DUE);
    assert_int_equal(ktls_rekey_due(10, &policy, &usage, 65000), KTLS_REKEY_INTERVAL);
    /* A clock reading before the key's start is not an elapsed interval. */
    assert_int_equal(ktls_rekey_due(10, &policy, &usage, 100), KTLS_REKEY_NOT_DUE);
    assert_int_equal(ktls_rekey_due(0, &off, &usage, 1u << 30), KTLS_REKEY_NOT_DUE);
}

static void test_message(void **state)
{
    (void)state;
    unsigned char out[KTLS_REKEY_MESSAGE_LEN];
    static const unsigned char not_requested[] = { TLS_HANDSHAKE_KEY_UPDATE, 0, 0, 1, 0 };
    static const unsigned char requested[] = { TLS_HANDSHAKE_KEY_UPDATE, 0, 0, 1, 1 };
    assert_int_equal(ktls_rekey_message(out, 0), 5);
    assert_memory_equal(out, not_requested, 5);
    assert_int_equal(ktls_rekey_message(out, 1), 5);
    assert_memory_equal(out, requested, 5);
}

static void test_release(void **state)
{
    (void)state;
    assert_false(ktls_rekey_release_supports("6.1.0-28-cloud-amd64"));
    assert_false(ktls_rekey_release_supports("6.13.12"));
    assert_false(ktls_rekey_release_supports("5.19.0"));
    assert_true(ktls_rekey_release_supports("6.14.0"));
    assert_true(ktls_rekey_release_supports("6.16.3+deb13-amd64"));
    assert_true(ktls_rekey_release_supports("7.3.4+deb13-cloud-amd64"));
    assert_false(ktls_rekey_release_supports(""));
    assert_false(ktls_rekey_release_supports("linux"));
    assert_false(ktls_rekey_release_supports(NULL));
}

static void test_kernel_answer_wins(void **state)
{
    (void)state;
    ktls_rekey_note_kernel(0);
    assert_true(ktls_rekey_kernel_refused());
    assert_false(ktls_rekey_kernel_ready());
    ktls_rekey_note_kernel(1);
    assert_false(ktls_rekey_kernel_refused());
    assert_true(ktls_rekey_kernel_ready());
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_record_limits),
        cmocka_unit_test(test_due),
        cmocka_unit_test(test_message),
        cmocka_unit_test(test_release),
        cmocka_unit_test(test_kernel_answer_wins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
