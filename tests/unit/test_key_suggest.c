#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "config/key_suggest.h"

static const char *const tunnel_names[] = {
    "mode", "listen", "target", "cert", "key", "ca", "crl", "allow_cn", "allow_ou",
    "allow_dns", "allow_uri", "allow_email", "pin_sha256", "server_name", "ciphers",
    "ciphersuites", "groups", "ktls", "idle_timeout", "handshake_timeout",
};
#define TUNNEL_COUNT (sizeof(tunnel_names) / sizeof(tunnel_names[0]))

static void assert_suggests(const char *typo, const char *expected)
{
    const char *got = key_suggest_closest(typo, tunnel_names, TUNNEL_COUNT);
    if (expected == NULL && got != NULL)
        fail_msg("'%s': suggested '%s', expected nothing", typo, got);
    if (expected != NULL && (got == NULL || strcmp(got, expected) != 0))
        fail_msg("'%s': suggested '%s', expected '%s'", typo, got ? got : "(nothing)", expected);
}

static void test_typos(void **state)
{
    (void)state;
    assert_suggests("allow_uo", "allow_ou");        /* two letters swapped */
    assert_suggests("allow_o", "allow_ou");         /* one left out */
    assert_suggests("lisen", "listen");
    assert_suggests("targte", "target");
    assert_suggests("idle_timout", "idle_timeout");
    assert_suggests("cipher", "ciphers");
    assert_suggests("pin_sha265", "pin_sha256");
    assert_suggests("servername", "server_name");
    assert_suggests("server-name", "server_name");
}

static void test_too_far(void **state)
{
    (void)state;
    assert_suggests("colour", NULL);
    assert_suggests("bogus_key", NULL);
    assert_suggests("frobnicate", NULL);
    assert_suggests("ttl", NULL);
    assert_suggests("", NULL);
    /* Far longer than any key: no suggestion, no overflow. */
    assert_suggests("allow_ou_allow_ou_allow_ou_allow_ou_allow_ou_allow_ou_allow_ou_allow_ou",
                    NULL);
    assert_null(key_suggest_closest("allow_uo", NULL, 0));
}

static void test_foreign(void **state)
{
    (void)state;
    const struct key_suggest_foreign *f = key_suggest_foreign("accept");
    assert_non_null(f);
    assert_string_equal(f->tool, "stunnel");
    assert_string_equal(f->ours, "listen");
    f = key_suggest_foreign("connect");
    assert_non_null(f);
    assert_string_equal(f->ours, "target");
    f = key_suggest_foreign("cafile");
    assert_non_null(f);
    assert_string_equal(f->ours, "ca");
    f = key_suggest_foreign("cacert");
    assert_non_null(f);
    assert_string_equal(f->tool, "ghostunnel");
    assert_string_equal(f->ours, "ca");
    f = key_suggest_foreign("allow-ou");
    assert_non_null(f);
    assert_string_equal(f->ours, "allow_ou");
    f = key_suggest_foreign("verifychain");
    assert_non_null(f);
    assert_null(f->ours);
    assert_non_null(f->note);
    f = key_suggest_foreign("keystore");
    assert_non_null(f);
    assert_null(f->ours);
    assert_non_null(strstr(f->note, "pkcs12"));
    /* ktlstun's own names are not foreign. */
    assert_null(key_suggest_foreign("listen"));
    assert_null(key_suggest_foreign("cert"));
    assert_null(key_suggest_foreign("colour"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_typos),
        cmocka_unit_test(test_too_far),
        cmocka_unit_test(test_foreign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
