/* tls_context: what the verification step and the cipher policy admit, seen through
 * real handshakes between contexts built by tls_context_create() from files, over a
 * socketpair. Each refusal has a positive control on the same kind of tunnel. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <dirent.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>

#include "cert_factory.h"
#include "auth/second_factor.h"
#include "tls/tls_context.h"

static char dir[PATH_MAX];
static EVP_PKEY *root_key, *leaf_key;
static X509 *root;

static char *path_of(const char *name)
{
    char *path = NULL;
    assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
    return path;
}

static void write_cert(const char *name, X509 *cert)
{
    char *path = path_of(name);
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    assert_int_equal(PEM_write_X509(out, cert), 1);
    assert_int_equal(fclose(out), 0);
    free(path);
}

/* A leaf issued by the root with LEAF_KEY, written to NAME.pem. */
static void issue(const char *name, const char *subject, const char *ext1, const char *ext2,
                  const char *ext3, const char *ext4)
{
    X509 *cert = cf_cert(&(struct cf_cert_spec){ .subject = subject, .key = leaf_key, .issuer = root,
                                                 .issuer_key = root_key,
                                                 .extensions = { ext1, ext2, ext3, ext4 } });
    char file[64];
    snprintf(file, sizeof(file), "%s.pem", name);
    write_cert(file, cert);
    X509_free(cert);
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    char template[] = "/tmp/ktlstun-tls-context-XXXXXX";
    if (mkdtemp(template) == NULL)
        return -1;
    snprintf(dir, sizeof(dir), "%s", template);
    root_key = cf_key_ec();
    leaf_key = cf_key_ec();
    root = cf_ca("/CN=tls_context test root", root_key);
    write_cert("ca.pem", root);
    char *key_path = path_of("leaf.key");
    FILE *out = fopen(key_path, "w");
    assert_non_null(out);
    assert_int_equal(PEM_write_PrivateKey(out, leaf_key, NULL, NULL, 0, NULL, NULL), 1);
    assert_int_equal(fclose(out), 0);
    free(key_path);

    issue("server", "/CN=localhost", "basicConstraints=critical,CA:FALSE",
          "keyUsage=critical,digitalSignature", "extendedKeyUsage=serverAuth", "subjectAltName=DNS:localhost");
    issue("alice", "/CN=alice", "basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature",
          "extendedKeyUsage=clientAuth", NULL);
    /* A CA certificate that also carries what a client leaf needs. */
    issue("ca-client", "/CN=Issuing CA", "basicConstraints=critical,CA:TRUE",
          "keyUsage=critical,digitalSignature,keyCertSign,cRLSign", "extendedKeyUsage=clientAuth", NULL);
    issue("ca-server", "/CN=localhost", "basicConstraints=critical,CA:TRUE",
          "keyUsage=critical,digitalSignature,keyCertSign,cRLSign", "extendedKeyUsage=serverAuth",
          "subjectAltName=DNS:localhost");
    /* DER order alice, mallory: the RFC 2253 subject in logs reads "CN=mallory,CN=alice". */
    issue("two-cn", "/CN=alice/CN=mallory", "basicConstraints=critical,CA:FALSE",
          "keyUsage=critical,digitalSignature", "extendedKeyUsage=clientAuth", NULL);
    issue("two-cn-server", "/CN=localhost/CN=elsewhere", "basicConstraints=critical,CA:FALSE",
          "keyUsage=critical,digitalSignature", "extendedKeyUsage=serverAuth", "subjectAltName=DNS:localhost");
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
    X509_free(root);
    EVP_PKEY_free(leaf_key);
    EVP_PKEY_free(root_key);
    return 0;
}

/* A tunnel as config.c would leave it, presenting CERT_NAME.pem; freed with
 * tunnel_free(). */
static struct tunnel_config *tunnel_new(enum tunnel_mode mode, const char *cert_name)
{
    struct tunnel_config *tunnel = calloc(1, sizeof(*tunnel));
    assert_non_null(tunnel);
    char file[64];
    snprintf(file, sizeof(file), "%s.pem", cert_name);
    tunnel->name = strdup(mode == TUNNEL_MODE_SERVER ? "in" : "out");
    assert_non_null(tunnel->name);
    tunnel->line = 1;
    tunnel->source = "unit.ini";
    tunnel->mode = mode;
    tunnel->cert = path_of(file);
    tunnel->key = path_of("leaf.key");
    tunnel->ca = path_of("ca.pem");
    tunnel->tls_min_version = TLS1_2_VERSION;
    tunnel->ktls = KTLS_POLICY_OFF;
    if (mode == TUNNEL_MODE_CLIENT) {
        tunnel->server_name = strdup("localhost");
        assert_non_null(tunnel->server_name);
    }
    return tunnel;
}

static void tunnel_free(struct tunnel_config *tunnel)
{
    string_list_clear(&tunnel->allow_cn);
    free(tunnel->ciphers);
    free(tunnel->server_name);
    free(tunnel->ca);
    free(tunnel->key);
    free(tunnel->cert);
    free(tunnel->name);
    free(tunnel);
}

/* A plain OpenSSL client presenting alice, TLS 1.2 only, offering CIPHERS. */
static SSL_CTX *plain_tls12_client(const char *ciphers)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    char *cert = path_of("alice.pem"), *key = path_of("leaf.key");
    assert_int_equal(SSL_CTX_use_certificate_file(ctx, cert, SSL_FILETYPE_PEM), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM), 1);
    free(key);
    free(cert);
    assert_int_equal(SSL_CTX_set_max_proto_version(ctx, TLS1_2_VERSION), 1);
    assert_int_equal(SSL_CTX_set_cipher_list(ctx, ciphers), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    return ctx;
}

struct side {
    SSL *ssl;
    struct tls_peer peer;
    int done, ok;
};

static void step(struct side *side)
{
    if (side->done)
        return;
    int rc = SSL_do_handshake(side->ssl);
    int err = SSL_get_error(side->ssl, rc);
    if (rc == 1 || (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE)) {
        side->done = 1;
        side->ok = rc == 1;
    }
    ERR_clear_error();
}

struct outcome {
    int server_ok, client_ok;
    char server_refusal[512];     /* what the server tunnel's verification said     */
    char client_refusal[512];     /* the same for a client tunnel ("" for plain)    */
    char cipher[64];              /* negotiated, when both ends finished           */
};

/* One handshake: SERVER_CTX built for the server tunnel SERVER, against CLIENT_CTX,
 * which is a client tunnel's when CLIENT is set and a plain OpenSSL client's when not. */
static struct outcome handshake(SSL_CTX *server_ctx, const struct tunnel_config *server, SSL_CTX *client_ctx,
                                const struct tunnel_config *client)
{
    struct outcome outcome;
    memset(&outcome, 0, sizeof(outcome));
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    struct side s = { 0 }, c = { 0 };
    s.ssl = tls_context_new_ssl(server_ctx, server, fds[0], &s.peer);
    assert_non_null(s.ssl);
    if (client != NULL) {
        c.ssl = tls_context_new_ssl(client_ctx, client, fds[1], &c.peer);
    } else {
        c.ssl = SSL_new(client_ctx);
        assert_non_null(c.ssl);
        assert_int_equal(SSL_set_fd(c.ssl, fds[1]), 1);
        SSL_set_connect_state(c.ssl);
    }
    assert_non_null(c.ssl);
    for (int round = 0; round < 500 && !(s.done && c.done); round++) {
        step(&s);
        step(&c);
        struct pollfd pfd[2] = { { .fd = fds[0], .events = POLLIN }, { .fd = fds[1], .events = POLLIN } };
        poll(pfd, 2, 10);
    }
    assert_true(s.done && c.done);
    outcome.server_ok = s.ok;
    outcome.client_ok = c.ok;
    snprintf(outcome.server_refusal, sizeof(outcome.server_refusal), "%s", s.peer.refusal);
    snprintf(outcome.client_refusal, sizeof(outcome.client_refusal), "%s", c.peer.refusal);
    if (s.ok && c.ok)
        snprintf(outcome.cipher, sizeof(outcome.cipher), "%s", SSL_get_cipher_name(s.ssl));
    SSL_free(c.ssl);
    SSL_free(s.ssl);
    tls_context_forget_peer(&c.peer);
    tls_context_forget_peer(&s.peer);
    close(fds[0]);
    close(fds[1]);
    return outcome;
}

/* A server tunnel presenting SERVER_CERT against a client tunnel presenting CLIENT_CERT.
 * ALLOW_CN, when set, is the server's allow_cn; VERIFY_CACHE its verify_cache. */
static struct outcome tunnels(const char *server_cert, const char *allow_cn, uint64_t verify_cache,
                              const char *client_cert)
{
    struct tunnel_config *server = tunnel_new(TUNNEL_MODE_SERVER, server_cert);
    struct tunnel_config *client = tunnel_new(TUNNEL_MODE_CLIENT, client_cert);
    if (allow_cn != NULL)
        assert_true(string_list_split(&server->allow_cn, allow_cn) > 0);
    server->verify_cache = verify_cache;
    SSL_CTX *server_ctx = tls_context_create(server);
    SSL_CTX *client_ctx = tls_context_create(client);
    assert_non_null(server_ctx);
    assert_non_null(client_ctx);
    struct outcome outcome = handshake(server_ctx, server, client_ctx, client);
    /* A second connection: with verify_cache set it takes the cached path. */
    struct outcome again = handshake(server_ctx, server, client_ctx, client);
    assert_int_equal(again.server_ok, outcome.server_ok);
    assert_int_equal(again.client_ok, outcome.client_ok);
    assert_string_equal(again.server_refusal, outcome.server_refusal);
    assert_string_equal(again.client_refusal, outcome.client_refusal);
    SSL_CTX_free(client_ctx);
    SSL_CTX_free(server_ctx);
    tunnel_free(client);
    tunnel_free(server);
    return outcome;
}

static void test_leaf_client_admitted(void **state)
{
    (void)state;
    struct outcome outcome = tunnels("server", "alice", 0, "alice");
    assert_true(outcome.server_ok && outcome.client_ok);
    assert_string_equal(outcome.server_refusal, "");
    assert_string_equal(outcome.client_refusal, "");
}

static void test_ca_certificate_as_client_leaf_refused(void **state)
{
    (void)state;
    for (uint64_t cache = 0; cache <= 60; cache += 60) {
        struct outcome outcome = tunnels("server", NULL, cache, "ca-client");
        assert_false(outcome.server_ok);
        assert_string_equal(outcome.server_refusal, "certificate is a CA certificate (basicConstraints "
                                                    "CA:TRUE), not a leaf (CN=Issuing CA)");
    }
}

static void test_ca_certificate_as_server_leaf_refused(void **state)
{
    (void)state;
    for (uint64_t cache = 0; cache <= 60; cache += 60) {
        struct outcome outcome = tunnels("ca-server", NULL, cache, "alice");
        assert_false(outcome.client_ok);
        assert_false(outcome.server_ok);
        assert_string_equal(outcome.client_refusal, "certificate is a CA certificate (basicConstraints "
                                                    "CA:TRUE), not a leaf (CN=localhost)");
    }
}

static void test_two_common_names_refused_by_server_tunnel(void **state)
{
    (void)state;
    /* allow_cn names the first CN; the log's subject would lead with the second. */
    struct outcome outcome = tunnels("server", "alice", 0, "two-cn");
    assert_false(outcome.server_ok);
    assert_string_equal(outcome.server_refusal,
                        "certificate has 2 commonName attributes; ktlstun accepts one (CN=mallory,CN=alice)");
    /* Without allow rules too: the identity the logs and the second factor use is
     * just as ambiguous. */
    outcome = tunnels("server", NULL, 60, "two-cn");
    assert_false(outcome.server_ok);
    assert_string_equal(outcome.server_refusal,
                        "certificate has 2 commonName attributes; ktlstun accepts one (CN=mallory,CN=alice)");
}

static void test_two_common_names_left_to_client_tunnels(void **state)
{
    (void)state;
    /* A client tunnel checks the server by server_name against its SANs, not by CN. */
    struct outcome outcome = tunnels("two-cn-server", NULL, 0, "alice");
    assert_true(outcome.server_ok && outcome.client_ok);
}

/* The TLS 1.2 ciphers a context built for TUNNEL enables: each must be ECDHE with an
 * AEAD (AES-GCM or ChaCha20-Poly1305). Returns how many there are. */
static int check_tls12_ciphers_aead(const struct tunnel_config *tunnel)
{
    SSL_CTX *ctx = tls_context_create(tunnel);
    assert_non_null(ctx);
    STACK_OF(SSL_CIPHER) *ciphers = SSL_CTX_get_ciphers(ctx);
    int tls12 = 0;
    for (int i = 0; i < sk_SSL_CIPHER_num(ciphers); i++) {
        const SSL_CIPHER *cipher = sk_SSL_CIPHER_value(ciphers, i);
        if (strcmp(SSL_CIPHER_get_version(cipher), "TLSv1.3") == 0)
            continue;
        tls12++;
        int nid = SSL_CIPHER_get_cipher_nid(cipher);
        if (!SSL_CIPHER_is_aead(cipher) || SSL_CIPHER_get_kx_nid(cipher) != NID_kx_ecdhe ||
            (nid != NID_aes_128_gcm && nid != NID_aes_256_gcm && nid != NID_chacha20_poly1305))
            fail_msg("%s tunnel enables TLS 1.2 cipher %s by default",
                     tunnel->mode == TUNNEL_MODE_SERVER ? "server" : "client", SSL_CIPHER_get_name(cipher));
    }
    SSL_CTX_free(ctx);
    return tls12;
}

static void test_tls12_default_is_ecdhe_aead_only(void **state)
{
    (void)state;
    struct tunnel_config *server = tunnel_new(TUNNEL_MODE_SERVER, "server");
    struct tunnel_config *client = tunnel_new(TUNNEL_MODE_CLIENT, "alice");
    /* AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305, each with ECDSA and RSA. */
    assert_int_equal(check_tls12_ciphers_aead(server), 6);
    assert_int_equal(check_tls12_ciphers_aead(client), 6);
    tunnel_free(client);
    tunnel_free(server);
}

/* A plain TLS 1.2 client offering only CIPHERS against a server tunnel whose
 * `ciphers` is TUNNEL_CIPHERS (NULL: unset). */
static struct outcome tls12_client(const char *ciphers, const char *tunnel_ciphers)
{
    struct tunnel_config *server = tunnel_new(TUNNEL_MODE_SERVER, "server");
    if (tunnel_ciphers != NULL) {
        server->ciphers = strdup(tunnel_ciphers);
        assert_non_null(server->ciphers);
    }
    SSL_CTX *server_ctx = tls_context_create(server);
    assert_non_null(server_ctx);
    SSL_CTX *client_ctx = plain_tls12_client(ciphers);
    struct outcome outcome = handshake(server_ctx, server, client_ctx, NULL);
    SSL_CTX_free(client_ctx);
    SSL_CTX_free(server_ctx);
    tunnel_free(server);
    return outcome;
}

static void test_tls12_cbc_refused_by_default(void **state)
{
    (void)state;
    struct outcome outcome = tls12_client("ECDHE-ECDSA-AES128-SHA", NULL);
    assert_false(outcome.server_ok);
    assert_false(outcome.client_ok);
    outcome = tls12_client("ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256", NULL);
    assert_false(outcome.server_ok);
}

static void test_tls12_cbc_when_listed(void **state)
{
    (void)state;
    struct outcome outcome = tls12_client("ECDHE-ECDSA-AES128-SHA", "ECDHE-ECDSA-AES128-SHA");
    assert_true(outcome.server_ok && outcome.client_ok);
    assert_string_equal(outcome.cipher, "ECDHE-ECDSA-AES128-SHA");
}

static void test_tls12_aead_by_default(void **state)
{
    (void)state;
    static const char *const suites[] = { "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-AES256-GCM-SHA384",
                                          "ECDHE-ECDSA-CHACHA20-POLY1305" };
    for (size_t i = 0; i < sizeof(suites) / sizeof(suites[0]); i++) {
        struct outcome outcome = tls12_client(suites[i], NULL);
        assert_true(outcome.server_ok && outcome.client_ok);
        assert_string_equal(outcome.cipher, suites[i]);
    }
}

/* A gated tunnel in a process that registered no gate: the check cannot be made, so
 * the client is refused, never admitted. */
static void test_gated_tunnel_without_gate_refuses(void **state)
{
    (void)state;
    struct tunnel_config *server = tunnel_new(TUNNEL_MODE_SERVER, "server");
    struct tunnel_config *client = tunnel_new(TUNNEL_MODE_CLIENT, "alice");
    server->second_factor = SECOND_FACTOR_PAM;
    tls_context_set_gate(NULL);
    SSL_CTX *server_ctx = tls_context_create(server);
    SSL_CTX *client_ctx = tls_context_create(client);
    assert_non_null(server_ctx);
    assert_non_null(client_ctx);
    struct outcome outcome = handshake(server_ctx, server, client_ctx, client);
    assert_false(outcome.server_ok);
    assert_string_equal(outcome.server_refusal,
                        "second factor required but this process has no login service");
    SSL_CTX_free(client_ctx);
    SSL_CTX_free(server_ctx);
    tunnel_free(client);
    tunnel_free(server);
}

/* One-time passwords pass through OpenSSL's record buffers on a gated tunnel: they are
 * wiped there once read. Data tunnels without a gate keep OpenSSL's default. */
static void test_gated_context_cleanses_plaintext(void **state)
{
    (void)state;
    struct tunnel_config *gated = tunnel_new(TUNNEL_MODE_SERVER, "server");
    struct tunnel_config *plain = tunnel_new(TUNNEL_MODE_SERVER, "server");
    gated->second_factor = SECOND_FACTOR_PAM;
    tls_context_set_gate(&second_factor_gate);
    SSL_CTX *gated_ctx = tls_context_create(gated);
    SSL_CTX *plain_ctx = tls_context_create(plain);
    tls_context_set_gate(NULL);
    assert_non_null(gated_ctx);
    assert_non_null(plain_ctx);
    assert_true(SSL_CTX_get_options(gated_ctx) & SSL_OP_CLEANSE_PLAINTEXT);
    assert_false(SSL_CTX_get_options(plain_ctx) & SSL_OP_CLEANSE_PLAINTEXT);
    SSL_CTX_free(plain_ctx);
    SSL_CTX_free(gated_ctx);
    tunnel_free(plain);
    tunnel_free(gated);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_leaf_client_admitted),
        cmocka_unit_test(test_gated_tunnel_without_gate_refuses),
        cmocka_unit_test(test_gated_context_cleanses_plaintext),
        cmocka_unit_test(test_ca_certificate_as_client_leaf_refused),
        cmocka_unit_test(test_ca_certificate_as_server_leaf_refused),
        cmocka_unit_test(test_two_common_names_refused_by_server_tunnel),
        cmocka_unit_test(test_two_common_names_left_to_client_tunnels),
        cmocka_unit_test(test_tls12_default_is_ecdhe_aead_only),
        cmocka_unit_test(test_tls12_cbc_refused_by_default),
        cmocka_unit_test(test_tls12_cbc_when_listed),
        cmocka_unit_test(test_tls12_aead_by_default),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
