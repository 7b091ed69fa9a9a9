#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tls/allow.h"
#include "cert_factory.h"
#include "core/identity.h"

#define SPKI_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SPKI_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"

/* A tunnel whose rules are set per test; config.c is not involved. */
struct rules {
    const char *cn, *ou, *dns, *uri, *email, *pin;
};

static void set_list(struct string_list *list, const char *text)
{
    if (text != NULL)
        assert_true(string_list_split(list, text) > 0);
}

static struct tunnel_config *make_tunnel(const struct rules *rules)
{
    struct tunnel_config *tunnel = calloc(1, sizeof(*tunnel));
    assert_non_null(tunnel);
    set_list(&tunnel->allow_cn, rules->cn);
    set_list(&tunnel->allow_ou, rules->ou);
    set_list(&tunnel->allow_dns, rules->dns);
    set_list(&tunnel->allow_uri, rules->uri);
    set_list(&tunnel->allow_email, rules->email);
    set_list(&tunnel->pin_sha256, rules->pin);
    return tunnel;
}

static void free_tunnel(struct tunnel_config *tunnel)
{
    string_list_clear(&tunnel->allow_cn);
    string_list_clear(&tunnel->allow_ou);
    string_list_clear(&tunnel->allow_dns);
    string_list_clear(&tunnel->allow_uri);
    string_list_clear(&tunnel->allow_email);
    string_list_clear(&tunnel->pin_sha256);
    free(tunnel);
}

/* An identity as identity_from_cert would leave it (values already escaped). */
struct names {
    const char *cn, *ou, *dns, *uri, *email;
};

static struct identity *make_identity(const struct names *names)
{
    struct identity *id = calloc(1, sizeof(*id));
    assert_non_null(id);
    if (names->cn != NULL)
        assert_non_null(id->cn = strdup(names->cn));
    assert_non_null(id->subject = strdup("CN=test"));
    assert_non_null(id->sans = strdup(""));
    set_list(&id->ou, names->ou);
    set_list(&id->dns, names->dns);
    set_list(&id->uri, names->uri);
    set_list(&id->email, names->email);
    memcpy(id->spki_sha256, SPKI_A, 65);
    memcpy(id->sha256, SPKI_B, 65);
    return id;
}

/* Runs allow_check; returns the verdict and leaves the reason in REASON. */
static int check(const struct rules *rules, const struct names *names, char *reason, size_t len)
{
    struct tunnel_config *tunnel = make_tunnel(rules);
    struct identity *id = make_identity(names);
    memset(reason, 'x', len);
    int verdict = allow_check(tunnel, id, reason, len);
    identity_free(id);
    free_tunnel(tunnel);
    return verdict;
}

static void expect_admitted(const struct rules *rules, const struct names *names)
{
    char reason[512];
    assert_int_equal(check(rules, names, reason, sizeof(reason)), 1);
}

static void expect_refused(const struct rules *rules, const struct names *names, const char *why)
{
    char reason[512];
    assert_int_equal(check(rules, names, reason, sizeof(reason)), 0);
    assert_string_equal(reason, why);
}

struct case_ {
    const char *pattern, *value;
    int expected;
};

static void run_cases(const struct case_ *cases, size_t count, char separator, int ignore_case)
{
    for (size_t i = 0; i < count; i++) {
        int got = allow_wildcard_match(cases[i].pattern, cases[i].value, separator, ignore_case);
        if (got != cases[i].expected)
            fail_msg("pattern \"%s\" value \"%s\": got %d, expected %d", cases[i].pattern, cases[i].value, got,
                     cases[i].expected);
    }
}

static void test_wildcards_dns(void **state)
{
    (void)state;
    static const struct case_ cases[] = {
        {"example.com", "example.com", 1},
        {"example.com", "EXAMPLE.Com", 1},
        {"example.com", "example.com.", 1},
        {"example.com", "www.example.com", 0},
        {"example.com", "example.co", 0},
        {"example.com", "example.comm", 0},
        {"*.example.com", "a.example.com", 1},
        {"*.example.com", "A.Example.COM", 1},
        {"*.example.com", "a.b.example.com", 0},
        {"*.example.com", "example.com", 0},
        {"*.example.com", ".example.com", 0},
        {"*.example.com", "a.example.org", 0},
        {"*.example.com", "a.badexample.com", 0},
        {"*.*.example.com", "a.b.example.com", 1},
        {"*.*.example.com", "a.example.com", 0},
        {"**.example.com", "example.com", 1},
        {"**.example.com", "a.example.com", 1},
        {"**.example.com", "a.b.c.example.com", 1},
        {"**.example.com", "badexample.com", 0},
        {"**.example.com", "example.com.evil", 0},
        {"a.**.z", "a.z", 1},
        {"a.**.z", "a.b.c.z", 1},
        {"a.**.z", "a.b.c", 0},
        {"**.b.**", "b", 1},
        {"**.b.**", "a.b.c", 1},
        {"**.b.**", "a.c", 0},
        {"a*.example.com", "ab.example.com", 0},
        {"a*.example.com", "a*.example.com", 1},
        {"*", "localhost", 1},
        {"*", "a.b", 0},
        {"*", "", 0},
        {"**", "", 1},
        {"**", "a.b.c", 1},
        {"", "", 1},
        {"", "a", 0},
    };
    run_cases(cases, sizeof(cases) / sizeof(cases[0]), '.', 1);
}

static void test_wildcards_uri(void **state)
{
    (void)state;
    static const struct case_ cases[] = {
        {"spiffe://td/web", "spiffe://td/web", 1},
        {"spiffe://td/web", "spiffe://td/web/", 1},
        {"spiffe://td/web", "spiffe://td/Web", 0},
        {"spiffe://td/web", "SPIFFE://td/web", 0},
        {"spiffe://td/*", "spiffe://td/web", 1},
        {"spiffe://td/*", "spiffe://td/web/1", 0},
        {"spiffe://td/*", "spiffe://td/", 0},
        {"spiffe://td/*", "spiffe://td", 0},
        {"spiffe://td/*", "spiffe://other/web", 0},
        {"spiffe://td/**", "spiffe://td", 1},
        {"spiffe://td/**", "spiffe://td/web", 1},
        {"spiffe://td/**", "spiffe://td/web/1/2", 1},
        {"spiffe://td/**", "spiffe://tdx/web", 0},
        {"spiffe://td/**", "spiffe://evil/td/web", 0},
        {"spiffe://*/web", "spiffe://td/web", 1},
        {"spiffe://*/web", "spiffe://td:8443/web", 1},
        {"spiffe://*/web", "spiffe://td/x/web", 0},
        {"spiffe://td/a/**/z", "spiffe://td/a/z", 1},
        {"spiffe://td/a/**/z", "spiffe://td/a/b/c/z", 1},
        {"spiffe://td/a/**/z", "spiffe://td/a/b/c/y", 0},
        {"spiffe://td/w*", "spiffe://td/web", 0},
        {"*", "spiffe://td/web", 0},
        {"**", "spiffe://td/web", 1},
    };
    run_cases(cases, sizeof(cases) / sizeof(cases[0]), '/', 0);
}

static void test_wildcards_whole_value(void **state)
{
    (void)state;
    static const struct case_ cases[] = {
        {"eng", "eng", 1},
        {"eng", "Eng", 0},
        {"eng", "engineering", 0},
        {"*", "Engineering", 1},
        {"*", "a.b/c d", 1},
        {"*", "", 0},
        {"**", "", 1},
        {"e*", "eng", 0},
        {"a.b", "a.b", 1},
        {"a.*", "a.b", 0},
    };
    run_cases(cases, sizeof(cases) / sizeof(cases[0]), '\0', 0);
}

static void test_no_rules_admit_everyone(void **state)
{
    (void)state;
    char reason[64];
    assert_int_equal(check(&(struct rules){0}, &(struct names){.cn = "anyone"}, reason, sizeof(reason)), 1);
    assert_string_equal(reason, "");
    expect_admitted(&(struct rules){0}, &(struct names){0});
}

static void test_allow_cn(void **state)
{
    (void)state;
    struct rules rules = {.cn = "alice, bob"};
    expect_admitted(&rules, &(struct names){.cn = "alice"});
    expect_admitted(&rules, &(struct names){.cn = "BOB"});
    expect_refused(&rules, &(struct names){.cn = "mallory"}, "CN=mallory not in allow_cn");
    expect_refused(&rules, &(struct names){.cn = "alice2"}, "CN=alice2 not in allow_cn");
    expect_refused(&rules, &(struct names){.dns = "alice"}, "no CN (allow_cn)");
    expect_admitted(&(struct rules){.cn = "*.svc.example"}, &(struct names){.cn = "web.svc.example"});
    expect_refused(&(struct rules){.cn = "*.svc.example"}, &(struct names){.cn = "svc.example"},
                   "CN=svc.example not in allow_cn");
}

static void test_allow_ou(void **state)
{
    (void)state;
    struct rules rules = {.ou = "ops"};
    expect_admitted(&rules, &(struct names){.cn = "x", .ou = "eng, ops"});
    expect_refused(&rules, &(struct names){.cn = "x", .ou = "Ops"}, "OU=Ops not in allow_ou");
    expect_refused(&(struct rules){.ou = "sales"}, &(struct names){.ou = "eng, ops"}, "OU=eng,ops not in allow_ou");
    expect_refused(&rules, &(struct names){.cn = "x"}, "no OU (allow_ou)");
    expect_admitted(&(struct rules){.ou = "*"}, &(struct names){.ou = "anything at all"});
}

static void test_allow_dns(void **state)
{
    (void)state;
    struct rules rules = {.dns = "*.example.com, api.example.net"};
    expect_admitted(&rules, &(struct names){.dns = "a.example.com"});
    expect_admitted(&rules, &(struct names){.dns = "other.example, API.example.NET"});
    expect_refused(&rules, &(struct names){.dns = "a.b.example.com, example.com"},
                   "DNS:a.b.example.com,example.com not in allow_dns");
    expect_refused(&rules, &(struct names){.cn = "a.example.com"}, "no DNS SAN (allow_dns)");
}

static void test_allow_uri(void **state)
{
    (void)state;
    struct rules rules = {.uri = "spiffe://td/ns/*/sa/web"};
    expect_admitted(&rules, &(struct names){.uri = "spiffe://td/ns/prod/sa/web"});
    expect_refused(&rules, &(struct names){.uri = "spiffe://td/ns/prod/sa/db"},
                   "URI:spiffe://td/ns/prod/sa/db not in allow_uri");
    expect_refused(&rules, &(struct names){.uri = "spiffe://td/ns/a/b/sa/web"},
                   "URI:spiffe://td/ns/a/b/sa/web not in allow_uri");
    expect_refused(&rules, &(struct names){0}, "no URI SAN (allow_uri)");
}

static void test_allow_email(void **state)
{
    (void)state;
    struct rules any_at_example = {.email = "*@example.com"};
    expect_admitted(&any_at_example, &(struct names){.email = "alice@example.com"});
    expect_admitted(&any_at_example, &(struct names){.email = "bob@EXAMPLE.com"});
    expect_refused(&any_at_example, &(struct names){.email = "alice@example.org"},
                   "email:alice@example.org not in allow_email");
    expect_refused(&any_at_example, &(struct names){.email = "alice@mail.example.com"},
                   "email:alice@mail.example.com not in allow_email");
    expect_refused(&any_at_example, &(struct names){.email = "example.com"}, "email:example.com not in allow_email");
    struct rules alice = {.email = "alice@**.example.com"};
    expect_admitted(&alice, &(struct names){.email = "alice@example.com"});
    expect_admitted(&alice, &(struct names){.email = "alice@mail.eu.example.com"});
    expect_refused(&alice, &(struct names){.email = "Alice@example.com"}, "email:Alice@example.com not in allow_email");
    expect_refused(&alice, &(struct names){0}, "no email SAN (allow_email)");
    expect_admitted(&(struct rules){.email = "*"}, &(struct names){.email = "x@y"});
}

static void test_rules_are_or_across_kinds(void **state)
{
    (void)state;
    struct rules rules = {.cn = "alice", .dns = "*.example.com"};
    expect_admitted(&rules, &(struct names){.cn = "alice", .dns = "m.example"});
    expect_admitted(&rules, &(struct names){.cn = "mallory", .dns = "m.example.com"});
    expect_refused(&rules, &(struct names){.cn = "mallory", .dns = "m.example"},
                   "CN=mallory, DNS:m.example matched none of allow_cn, allow_dns");
    expect_refused(&rules, &(struct names){.cn = "mallory"}, "CN=mallory matched none of allow_cn, allow_dns");
    expect_refused(&rules, &(struct names){.ou = "eng"}, "no CN, no DNS SAN (allow_cn, allow_dns)");
    /* A kind without rules is not consulted, whatever its values. */
    expect_refused(&rules, &(struct names){.cn = "mallory", .uri = "spiffe://td/alice"},
                   "CN=mallory matched none of allow_cn, allow_dns");
    struct rules all = {.cn = "a", .ou = "b", .dns = "c", .uri = "d", .email = "e"};
    expect_admitted(&all, &(struct names){.email = "e"});
    expect_refused(&all, &(struct names){.cn = "x", .ou = "y,z", .dns = "w", .uri = "u:v", .email = "m@n"},
                   "CN=x, OU=y,z, DNS:w, URI:u:v, email:m@n matched none of allow_cn, allow_ou, allow_dns, "
                   "allow_uri, allow_email");
}

static void test_escaped_values_never_match(void **state)
{
    (void)state;
    expect_refused(&(struct rules){.cn = "**"}, &(struct names){.cn = "good.example\\00.evil"},
                   "CN=good.example\\00.evil not in allow_cn");
    expect_refused(&(struct rules){.dns = "**.evil.example"}, &(struct names){.dns = "good.example\\00.evil.example"},
                   "DNS:good.example\\00.evil.example not in allow_dns");
    expect_refused(&(struct rules){.ou = "*"}, &(struct names){.ou = "eng\\0A"}, "OU=eng\\0A not in allow_ou");
    /* The same rule still admits a clean value next to the tainted one. */
    expect_admitted(&(struct rules){.dns = "**.evil.example"},
                    &(struct names){.dns = "good.example\\00.evil.example, ok.evil.example"});
    /* A doubled backslash is a literal one, not an escape. */
    expect_admitted(&(struct rules){.ou = "*"}, &(struct names){.ou = "a\\\\00"});
}

static void test_pin_is_required_in_addition(void **state)
{
    (void)state;
    expect_admitted(&(struct rules){.pin = SPKI_A}, &(struct names){.cn = "x"});
    expect_admitted(&(struct rules){.pin = SPKI_B ", " SPKI_A}, &(struct names){.cn = "x"});
    expect_refused(&(struct rules){.pin = SPKI_B}, &(struct names){.cn = "x"},
                   "public key pin mismatch (pin_sha256): spki sha256 " SPKI_A);
    expect_admitted(&(struct rules){.cn = "alice", .pin = SPKI_A}, &(struct names){.cn = "alice"});
    expect_refused(&(struct rules){.cn = "alice", .pin = SPKI_B}, &(struct names){.cn = "alice"},
                   "public key pin mismatch (pin_sha256): spki sha256 " SPKI_A);
    expect_refused(&(struct rules){.cn = "alice", .pin = SPKI_A}, &(struct names){.cn = "mallory"},
                   "CN=mallory not in allow_cn");
    expect_refused(&(struct rules){.cn = "alice", .pin = SPKI_B}, &(struct names){.cn = "mallory"},
                   "CN=mallory not in allow_cn; public key pin mismatch (pin_sha256): spki sha256 " SPKI_A);
}

static void test_pin_from_a_real_certificate(void **state)
{
    (void)state;
    EVP_PKEY *key = cf_key_ec();
    EVP_PKEY *other = cf_key_ec();
    struct cf_cert_spec spec = {.subject = "/CN=alice", .key = key};
    X509 *cert = cf_cert(&spec);
    struct identity *id = identity_from_cert(cert);
    assert_non_null(id);

    unsigned char *der = NULL;
    unsigned char digest[32];
    char pin[65], other_pin[65];
    int der_len = i2d_PUBKEY(key, &der);
    assert_true(der_len > 0);
    assert_int_equal(EVP_Digest(der, (size_t)der_len, digest, NULL, EVP_sha256(), NULL), 1);
    for (int i = 0; i < 32; i++)
        sprintf(pin + 2 * i, "%02x", digest[i]);
    OPENSSL_free(der);
    der = NULL;
    der_len = i2d_PUBKEY(other, &der);
    assert_true(der_len > 0);
    assert_int_equal(EVP_Digest(der, (size_t)der_len, digest, NULL, EVP_sha256(), NULL), 1);
    for (int i = 0; i < 32; i++)
        sprintf(other_pin + 2 * i, "%02x", digest[i]);
    OPENSSL_free(der);

    char reason[256];
    struct tunnel_config *tunnel = make_tunnel(&(struct rules){.cn = "alice", .pin = pin});
    assert_int_equal(allow_check(tunnel, id, reason, sizeof(reason)), 1);
    free_tunnel(tunnel);
    tunnel = make_tunnel(&(struct rules){.cn = "alice", .pin = other_pin});
    assert_int_equal(allow_check(tunnel, id, reason, sizeof(reason)), 0);
    char expected[256];
    snprintf(expected, sizeof(expected), "public key pin mismatch (pin_sha256): spki sha256 %s", pin);
    assert_string_equal(reason, expected);
    free_tunnel(tunnel);

    identity_free(id);
    X509_free(cert);
    EVP_PKEY_free(other);
    EVP_PKEY_free(key);
}

static void test_reason_is_cut_to_fit(void **state)
{
    (void)state;
    char reason[12];
    assert_int_equal(check(&(struct rules){.cn = "alice"}, &(struct names){.cn = "mallory"}, reason, sizeof(reason)),
                     0);
    assert_string_equal(reason, "CN=mallory ");
    struct tunnel_config *tunnel = make_tunnel(&(struct rules){.cn = "alice", .pin = SPKI_B});
    struct identity *id = make_identity(&(struct names){.cn = "mallory"});
    assert_int_equal(allow_check(tunnel, id, NULL, 0), 0);
    char one[1] = {'x'};
    assert_int_equal(allow_check(tunnel, id, one, sizeof(one)), 0);
    assert_int_equal(one[0], '\0');
    identity_free(id);
    free_tunnel(tunnel);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wildcards_dns),
        cmocka_unit_test(test_wildcards_uri),
        cmocka_unit_test(test_wildcards_whole_value),
        cmocka_unit_test(test_no_rules_admit_everyone),
        cmocka_unit_test(test_allow_cn),
        cmocka_unit_test(test_allow_ou),
        cmocka_unit_test(test_allow_dns),
        cmocka_unit_test(test_allow_uri),
        cmocka_unit_test(test_allow_email),
        cmocka_unit_test(test_rules_are_or_across_kinds),
        cmocka_unit_test(test_escaped_values_never_match),
        cmocka_unit_test(test_pin_is_required_in_addition),
        cmocka_unit_test(test_pin_from_a_real_certificate),
        cmocka_unit_test(test_reason_is_cut_to_fit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
