/* user_map: certificate → local user, for each map kind, and the refusals. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "cert_factory.h"
#include "core/identity.h"
#include "config/user_map.h"

static EVP_PKEY *key;

static int group_setup(void **state)
{
    (void)state;
    key = cf_key_ec();
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    EVP_PKEY_free(key);
    return 0;
}

/* The identity of a self-signed certificate with SUBJECT and optional SAN. */
static struct identity *identity_of(const char *subject, const char *san)
{
    char ext[512];
    struct cf_cert_spec spec = { .subject = subject, .key = key };
    if (san != NULL) {
        snprintf(ext, sizeof(ext), "subjectAltName=%s", san);
        spec.extensions[0] = ext;
    }
    X509 *cert = cf_cert(&spec);
    struct identity *id = identity_from_cert(cert);
    assert_non_null(id);
    X509_free(cert);
    return id;
}

static struct user_map *map_of(const char *spec)
{
    char err[512] = "";
    struct user_map *map = user_map_parse(spec, "/nonexistent", err, sizeof(err));
    if (map == NULL)
        fail_msg("user_map_parse(%s): %s", spec, err);
    return map;
}

static void expect_user(const char *spec, const char *subject, const char *san,
                        const char *identity, const char *user)
{
    char got_identity[LIMIT_IDENTITY + 1], got_user[LIMIT_USER_NAME + 1], reason[512];
    struct user_map *map = map_of(spec);
    struct identity *id = identity_of(subject, san);
    if (!user_map_lookup(map, id, got_identity, got_user, reason, sizeof(reason)))
        fail_msg("%s: %s maps to nobody: %s", spec, subject, reason);
    assert_string_equal(got_identity, identity);
    assert_string_equal(got_user, user);
    identity_free(id);
    user_map_free(map);
}

static void expect_unmapped(const char *spec, const char *subject, const char *san,
                            const char *reason_part)
{
    char got_identity[LIMIT_IDENTITY + 1], got_user[LIMIT_USER_NAME + 1], reason[512];
    struct user_map *map = map_of(spec);
    struct identity *id = identity_of(subject, san);
    if (user_map_lookup(map, id, got_identity, got_user, reason, sizeof(reason)))
        fail_msg("%s: %s mapped to %s", spec, subject, got_user);
    if (strstr(reason, reason_part) == NULL)
        fail_msg("reason '%s' lacks '%s'", reason, reason_part);
    identity_free(id);
    user_map_free(map);
}

static void test_cn(void **state)
{
    (void)state;
    expect_user("cn", "/CN=alice/OU=eng", NULL, "alice", "alice");
    expect_user("CN", "/CN=svc_backup-2.x", NULL, "svc_backup-2.x", "svc_backup-2.x");
    expect_unmapped("cn", "/O=no common name", NULL, "no commonName");
    expect_unmapped("cn", "/CN=Alice Smith", NULL, "not a valid user name");
    expect_unmapped("cn", "/CN=-rf", NULL, "not a valid user name");
    expect_unmapped("cn", "/CN=a-name-far-too-long-for-a-unix-user", NULL, "not a valid user name");
}

static void test_email_local_part(void **state)
{
    (void)state;
    expect_user("email-local-part", "/CN=Alice", "email:alice@example.com", "alice@example.com",
                "alice");
    /* Two addresses for one user agree; for two users they conflict. */
    expect_user("email-local-part", "/CN=Alice", "email:alice@example.com,email:alice@example.org",
                "alice@example.com", "alice");
    expect_unmapped("email-local-part", "/CN=Alice", "email:alice@example.com,email:bob@example.com",
                    "more than one user");
    expect_unmapped("email-local-part", "/CN=Alice", "DNS:alice.example.com", "no email name");
    expect_unmapped("email-local-part", "/CN=Alice", "email:Alice@example.com", "not a valid user name");
}

static void test_uri_path(void **state)
{
    (void)state;
    expect_user("uri-path", "/CN=x", "URI:spiffe://example.com/alice", "spiffe://example.com/alice",
                "alice");
    expect_user("uri-path", "/CN=x", "URI:spiffe://example.com/users/bob/?v=1#f",
                "spiffe://example.com/users/bob/?v=1#f", "bob");
    expect_unmapped("uri-path", "/CN=x", "URI:spiffe://example.com", "has no path");
    expect_unmapped("uri-path", "/CN=x", "URI:spiffe://example.com/", "no usable last path segment");
    expect_unmapped("uri-path", "/CN=x", NULL, "no URI name");
}

static char map_path[64];

static void write_map(const char *content)
{
    snprintf(map_path, sizeof(map_path), "/tmp/ktlstun-user-map.XXXXXX");
    int fd = mkstemp(map_path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
}

static void test_file(void **state)
{
    (void)state;
    char content[1024], spec[128];
    snprintf(content, sizeof(content),
             "# identity                        user\n"
             "alice                             alice\n"
             "cn:Bob Builder                    bob      # a comment\n"
             "email:Carol@Example.com           carol\n"
             "uri:spiffe://example.com/erin     erin\n"
             "dns:frank.example.com             frank\n"
             "\n");
    /* "cn:Bob Builder" splits at the blank: the map must say so, not guess. */
    write_map(content);
    char err[512];
    snprintf(spec, sizeof(spec), "file:%s", map_path);
    assert_null(user_map_parse(spec, NULL, err, sizeof(err)));
    assert_non_null(strstr(err, ":3: expected \"IDENTITY USER\""));
    unlink(map_path);

    char *line = strstr(content, "cn:Bob Builder");
    memcpy(line, "cn:Bob_Builder", 14);
    write_map(content);
    snprintf(spec, sizeof(spec), "file:%s", map_path);
    expect_user(spec, "/CN=alice", NULL, "alice", "alice");
    expect_user(spec, "/CN=Bob_Builder", NULL, "Bob_Builder", "bob");
    expect_user(spec, "/CN=c", "email:carol@example.com", "carol@example.com", "carol");
    expect_user(spec, "/CN=e", "URI:spiffe://example.com/erin", "spiffe://example.com/erin", "erin");
    expect_user(spec, "/CN=f", "DNS:FRANK.example.com", "FRANK.example.com", "frank");
    expect_unmapped(spec, "/CN=mallory", NULL, "is not listed in");
    /* URIs compare exactly; the same name under two users is refused. */
    expect_unmapped(spec, "/CN=e", "URI:SPIFFE://example.com/erin", "is not listed in");
    expect_unmapped(spec, "/CN=alice", "email:carol@example.com", "more than one user");
    unlink(map_path);
}

static void test_file_fingerprint_identity_is_the_fingerprint(void **state)
{
    (void)state;
    struct identity *id = identity_of("/CN=dana", NULL);
    char content[256], spec[128], got_identity[LIMIT_IDENTITY + 1];
    char got_user[LIMIT_USER_NAME + 1], reason[256];
    /* Colons and upper case, as `openssl x509 -fingerprint` prints it. */
    char colons[200] = "";
    for (int i = 0; i < 64; i += 2) {
        char pair[4] = { (char)(id->sha256[i] >= 'a' ? id->sha256[i] - 32 : id->sha256[i]),
                         (char)(id->sha256[i + 1] >= 'a' ? id->sha256[i + 1] - 32 : id->sha256[i + 1]),
                         i < 62 ? ':' : '\0', '\0' };
        strcat(colons, pair);
    }
    snprintf(content, sizeof(content), "sha256:%s dana\n", colons);
    write_map(content);
    snprintf(spec, sizeof(spec), "file:%s", map_path);
    struct user_map *map = map_of(spec);
    assert_true(user_map_lookup(map, id, got_identity, got_user, reason, sizeof(reason)));
    assert_string_equal(got_identity, id->sha256);
    assert_string_equal(got_user, "dana");
    user_map_free(map);
    identity_free(id);
    unlink(map_path);
}

static void test_file_errors(void **state)
{
    (void)state;
    char err[512], spec[128];
    static const struct {
        const char *content;
        const char *error;
    } bad[] = {
        { "alice\n", ":1: expected \"IDENTITY USER\"" },
        { "alice alice extra\n", ":1: expected \"IDENTITY USER\"" },
        { "alice Alice\n", ":1: 'Alice' is not a valid user name" },
        { "# ok\nsha256:abc dana\n", ":2: 'sha256:abc' is not an identity" },
        { "email: bob\n", ":1: 'email:' is not an identity" },
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        write_map(bad[i].content);
        snprintf(spec, sizeof(spec), "file:%s", map_path);
        assert_null(user_map_parse(spec, NULL, err, sizeof(err)));
        if (strstr(err, bad[i].error) == NULL)
            fail_msg("'%s': error '%s' lacks '%s'", bad[i].content, err, bad[i].error);
        unlink(map_path);
    }
    assert_null(user_map_parse("file:/nonexistent/users.map", NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "No such file"));
    assert_null(user_map_parse("ldap", NULL, err, sizeof(err)));
    assert_non_null(strstr(err, "is not a user map"));
    assert_null(user_map_parse("file:", NULL, err, sizeof(err)));
}

static void test_relative_file_and_describe(void **state)
{
    (void)state;
    char err[256];
    write_map("alice alice\n");
    const char *base = strrchr(map_path, '/');
    char spec[128];
    snprintf(spec, sizeof(spec), "file:%s", base + 1);
    struct user_map *map = user_map_parse(spec, "/tmp", err, sizeof(err));
    assert_non_null(map);
    char expected[128];
    snprintf(expected, sizeof(expected), "file:%s", map_path);
    assert_string_equal(user_map_describe(map), expected);
    user_map_free(map);
    unlink(map_path);
}

static void test_escaped_names_never_map(void **state)
{
    (void)state;
    /* A control character in the CN comes out escaped ("\0A"): never a user. */
    expect_unmapped("cn", "/CN=al\nice", NULL, "bytes that are not text");
}

static void test_valid_user(void **state)
{
    (void)state;
    assert_true(user_map_valid_user("alice"));
    assert_true(user_map_valid_user("_svc"));
    assert_true(user_map_valid_user("a.b-c_9"));
    assert_false(user_map_valid_user(""));
    assert_false(user_map_valid_user("9lives"));
    assert_false(user_map_valid_user("-alice"));
    assert_false(user_map_valid_user("root/../x"));
    assert_false(user_map_valid_user("alice$"));
    assert_false(user_map_valid_user("abcdefghijklmnopqrstuvwxyz0123456"));
    assert_true(user_map_valid_user("abcdefghijklmnopqrstuvwxyz012345"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cn),
        cmocka_unit_test(test_email_local_part),
        cmocka_unit_test(test_uri_path),
        cmocka_unit_test(test_file),
        cmocka_unit_test(test_file_fingerprint_identity_is_the_fingerprint),
        cmocka_unit_test(test_file_errors),
        cmocka_unit_test(test_relative_file_and_describe),
        cmocka_unit_test(test_escaped_names_never_map),
        cmocka_unit_test(test_valid_user),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
