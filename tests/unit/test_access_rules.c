/* access_rules and tls_context_recheck_peer: the rules of a reloaded configuration,
 * written from a real tunnel context and read back, decide about peers admitted under
 * the old one as the handshake would: revoked by the new CRL, out of the new allow
 * rules, not matching a client tunnel's server name; each with a positive control. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "cert_factory.h"
#include "tls/access_rules.h"
#include "tls/tls_context.h"

static char dir[PATH_MAX];
static EVP_PKEY *root_key, *leaf_key;
static X509 *root, *alice, *mallory, *server;

static char *path_of(const char *name)
{
    char *path = NULL;
    assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
    return path;
}

static X509 *issue(const char *file, const char *subject, long serial, const char *eku,
                   const char *san)
{
    X509 *cert = cf_cert(&(struct cf_cert_spec){
        .subject = subject, .key = leaf_key, .issuer = root, .issuer_key = root_key,
        .serial = serial,
        .extensions = { "basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature",
                        eku, san } });
    char *path = path_of(file);
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    assert_int_equal(PEM_write_X509(out, cert), 1);
    assert_int_equal(fclose(out), 0);
    free(path);
    return cert;
}

static void write_crl(const char *file, const long *revoked)
{
    X509_CRL *crl = cf_crl(root, root_key, NULL, NULL, revoked);
    char *path = path_of(file);
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    assert_int_equal(PEM_write_X509_CRL(out, crl), 1);
    assert_int_equal(fclose(out), 0);
    free(path);
    X509_CRL_free(crl);
}

static int group_setup(void **state)
{
    (void)state;
    char template[] = "/tmp/ktlstun-access-rules-XXXXXX";
    if (mkdtemp(template) == NULL)
        return -1;
    snprintf(dir, sizeof(dir), "%s", template);
    root_key = cf_key_ec();
    leaf_key = cf_key_ec();
    root = cf_ca("/CN=access_rules test root", root_key);
    char *path = path_of("ca.pem");
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    assert_int_equal(PEM_write_X509(out, root), 1);
    assert_int_equal(fclose(out), 0);
    free(path);
    path = path_of("leaf.key");
    out = fopen(path, "w");
    assert_non_null(out);
    assert_int_equal(PEM_write_PrivateKey(out, leaf_key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(fclose(out), 0);
    free(path);
    server = issue("server.pem", "/CN=localhost", 10, "extendedKeyUsage=serverAuth",
                   "subjectAltName=DNS:localhost");
    alice = issue("alice.pem", "/CN=alice", 11, "extendedKeyUsage=clientAuth", NULL);
    mallory = issue("mallory.pem", "/CN=mallory", 12, "extendedKeyUsage=clientAuth", NULL);
    write_crl("crl-none.pem", (const long[]){ 0 });
    write_crl("crl-alice.pem", (const long[]){ 11, 0 });
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    DIR *files = opendir(dir);
    for (struct dirent *entry; files != NULL && (entry = readdir(files)) != NULL;) {
        if (entry->d_name[0] == '.')
            continue;
        char *path = path_of(entry->d_name);
        unlink(path);
        free(path);
    }
    if (files != NULL)
        closedir(files);
    rmdir(dir);
    X509_free(server);
    X509_free(alice);
    X509_free(mallory);
    X509_free(root);
    EVP_PKEY_free(leaf_key);
    EVP_PKEY_free(root_key);
    return 0;
}

/* A tunnel as config.c would leave it: server mode presenting server.pem with CRL (a
 * file name or NULL) and ALLOW_CN (a comma list or NULL); client mode expecting
 * SERVER_NAME. Freed with tunnel_free(). */
static struct tunnel_config *tunnel_new(enum tunnel_mode mode, const char *crl, const char *allow_cn,
                                        const char *server_name)
{
    struct tunnel_config *t = calloc(1, sizeof(*t));
    assert_non_null(t);
    t->name = strdup(mode == TUNNEL_MODE_SERVER ? "web" : "out");
    assert_non_null(t->name);
    t->line = 1;
    t->source = "unit.ini";
    t->mode = mode;
    t->cert = path_of(mode == TUNNEL_MODE_SERVER ? "server.pem" : "alice.pem");
    t->key = path_of("leaf.key");
    t->ca = path_of("ca.pem");
    t->crl = crl != NULL ? path_of(crl) : NULL;
    t->tls_min_version = TLS1_2_VERSION;
    t->ktls = KTLS_POLICY_OFF;
    t->max_connection_lifetime = 3600;
    if (allow_cn != NULL)
        assert_true(string_list_split(&t->allow_cn, allow_cn) > 0);
    if (server_name != NULL)
        assert_non_null(t->server_name = strdup(server_name));
    return t;
}

static void tunnel_free(struct tunnel_config *t)
{
    string_list_clear(&t->allow_cn);
    free(t->server_name);
    free(t->crl);
    free(t->ca);
    free(t->key);
    free(t->cert);
    free(t->name);
    free(t);
}

/* TUNNEL's rules written from its real context (configuration 7) and read back. */
static struct access_rules *round_trip(const struct tunnel_config *tunnel)
{
    SSL_CTX *ctx = tls_context_create(tunnel);
    assert_non_null(ctx);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    assert_int_equal(access_rules_write_header(out, 7, 1767225600), 0);
    assert_int_equal(access_rules_write_tunnel(out, tunnel, ctx), 0);
    assert_int_equal(fclose(out), 0);
    struct access_rules *rules = access_rules_read(text, len);
    assert_non_null(rules);
    free(text);
    SSL_CTX_free(ctx);
    return rules;
}

/* Checks CERT, as a peer admitted earlier, against RULES' tunnel NAME. Returns the
 * verdict; the X509 error and the reason in *ERROR and REASON. */
static int recheck(const struct access_rules *rules, const char *name, X509 *cert, int *error,
                   char *reason, size_t len)
{
    X509_STORE *store = NULL;
    const struct tunnel_config *t = access_rules_tunnel(rules, name, &store);
    assert_non_null(t);
    assert_non_null(store);
    struct tls_peer peer = { 0 };
    assert_int_equal(X509_up_ref(cert), 1);
    peer.leaf = cert;
    peer.identity = identity_from_cert(cert);
    assert_non_null(peer.identity);
    int passed = tls_context_recheck_peer(store, t, &peer, error, reason, len);
    tls_context_forget_peer(&peer);
    return passed;
}

static void test_rules_read_back(void **state)
{
    (void)state;
    struct tunnel_config *tunnel = tunnel_new(TUNNEL_MODE_SERVER, "crl-none.pem", "alice, mallory", NULL);
    assert_int_equal(string_list_append(&tunnel->pin_sha256, "ab", 2), 0);
    tunnel->second_factor = SECOND_FACTOR_PAM;
    tunnel->bind_grant_to_address = 1;
    struct access_rules *rules = round_trip(tunnel);
    assert_int_equal(access_rules_generation(rules), 7);
    assert_int_equal(access_rules_loaded_at(rules), 1767225600);
    assert_null(access_rules_tunnel(rules, "other", NULL));
    const struct tunnel_config *t = access_rules_tunnel(rules, "web", NULL);
    assert_non_null(t);
    assert_string_equal(t->name, "web");
    assert_int_equal(t->mode, TUNNEL_MODE_SERVER);
    assert_string_equal(t->crl, tunnel->crl);
    assert_int_equal(t->allow_cn.count, 2);
    assert_string_equal(t->allow_cn.items[0], "alice");
    assert_string_equal(t->allow_cn.items[1], "mallory");
    assert_int_equal(t->pin_sha256.count, 1);
    assert_int_equal(t->second_factor, SECOND_FACTOR_PAM);
    assert_int_equal(t->bind_grant_to_address, 1);
    assert_int_equal(t->max_connection_lifetime, 3600);
    access_rules_free(rules);
    string_list_clear(&tunnel->pin_sha256);
    tunnel_free(tunnel);
}

static void test_revoked_by_the_new_crl(void **state)
{
    (void)state;
    char reason[600];
    int error;
    struct tunnel_config *before = tunnel_new(TUNNEL_MODE_SERVER, "crl-none.pem", NULL, NULL);
    struct tunnel_config *after = tunnel_new(TUNNEL_MODE_SERVER, "crl-alice.pem", NULL, NULL);
    struct access_rules *old_rules = round_trip(before);
    struct access_rules *new_rules = round_trip(after);
    assert_true(recheck(old_rules, "web", alice, &error, reason, sizeof(reason)));
    assert_false(recheck(new_rules, "web", alice, &error, reason, sizeof(reason)));
    assert_int_equal(error, X509_V_ERR_CERT_REVOKED);
    assert_non_null(strstr(reason, "revoked (CRL "));
    assert_non_null(strstr(reason, "(CN=alice)"));
    assert_true(recheck(new_rules, "web", mallory, &error, reason, sizeof(reason)));
    access_rules_free(old_rules);
    access_rules_free(new_rules);
    tunnel_free(before);
    tunnel_free(after);
}

static void test_out_of_the_new_allow_rules(void **state)
{
    (void)state;
    char reason[600];
    int error;
    struct tunnel_config *tunnel = tunnel_new(TUNNEL_MODE_SERVER, NULL, "alice", NULL);
    struct access_rules *rules = round_trip(tunnel);
    assert_true(recheck(rules, "web", alice, &error, reason, sizeof(reason)));
    assert_false(recheck(rules, "web", mallory, &error, reason, sizeof(reason)));
    assert_int_equal(error, X509_V_OK);
    assert_string_equal(reason, "CN=mallory not in allow_cn");
    /* A client certificate is not a server's: the purpose is checked as in a handshake. */
    assert_false(recheck(rules, "web", server, &error, reason, sizeof(reason)));
    assert_int_equal(error, X509_V_ERR_INVALID_PURPOSE);
    access_rules_free(rules);
    tunnel_free(tunnel);
}

static void test_client_tunnel_expects_its_server_name(void **state)
{
    (void)state;
    char reason[600];
    int error;
    struct tunnel_config *good = tunnel_new(TUNNEL_MODE_CLIENT, NULL, NULL, "localhost");
    struct tunnel_config *moved = tunnel_new(TUNNEL_MODE_CLIENT, NULL, NULL, "elsewhere.example");
    struct access_rules *good_rules = round_trip(good);
    struct access_rules *moved_rules = round_trip(moved);
    assert_true(recheck(good_rules, "out", server, &error, reason, sizeof(reason)));
    assert_false(recheck(moved_rules, "out", server, &error, reason, sizeof(reason)));
    assert_int_equal(error, X509_V_ERR_HOSTNAME_MISMATCH);
    assert_non_null(strstr(reason, "elsewhere.example"));
    access_rules_free(good_rules);
    access_rules_free(moved_rules);
    tunnel_free(good);
    tunnel_free(moved);
}

static void test_what_does_not_read_back_is_refused(void **state)
{
    (void)state;
    static const char *const broken[] = {
        "",
        "not access rules\n",
        "ktlstun-access-rules 1\nmode server\n",                     /* before any tunnel */
        "ktlstun-access-rules 1\ntunnel web\nmode sideways\n",
        "ktlstun-access-rules 1\ntunnel web\ncolour blue\n",
        "ktlstun-access-rules 1\ntunnel web\npem 99999\n-----BEGIN",   /* cut short */
        "ktlstun-access-rules 1\ntunnel web\nmax_connection_lifetime -1\n",
    };
    for (size_t i = 0; i < sizeof(broken) / sizeof(broken[0]); i++)
        assert_null(access_rules_read(broken[i], strlen(broken[i])));

    struct tunnel_config *tunnel = tunnel_new(TUNNEL_MODE_SERVER, NULL, NULL, NULL);
    assert_int_equal(string_list_append(&tunnel->allow_cn, "a\nmode client", 13), 0);
    SSL_CTX *ctx = tls_context_create(tunnel);
    assert_non_null(ctx);
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    assert_non_null(out);
    assert_int_equal(access_rules_write_tunnel(out, tunnel, ctx), -1);
    fclose(out);
    free(text);
    SSL_CTX_free(ctx);
    tunnel_free(tunnel);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rules_read_back),
        cmocka_unit_test(test_revoked_by_the_new_crl),
        cmocka_unit_test(test_out_of_the_new_allow_rules),
        cmocka_unit_test(test_client_tunnel_expects_its_server_name),
        cmocka_unit_test(test_what_does_not_read_back_is_refused),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
