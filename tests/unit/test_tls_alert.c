/* tls_alert: a real OpenSSL client must read the server's synthesized record as the
 * fatal alert asked for (access_denied, insufficient_security), for TLS 1.2 and for
 * each TLS 1.3 AEAD. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "cert_factory.h"
#include "tls/tls_alert.h"

static EVP_PKEY *ca_key, *server_key, *client_key;
static X509 *ca, *server_cert, *client_cert;

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    ca_key = cf_key_ec();
    server_key = cf_key_ec();
    client_key = cf_key_ec();
    ca = cf_ca("/CN=alert test root", ca_key);
    server_cert = cf_cert(&(struct cf_cert_spec){ .subject = "/CN=server", .key = server_key,
                                                  .issuer = ca, .issuer_key = ca_key });
    client_cert = cf_cert(&(struct cf_cert_spec){ .subject = "/CN=alice", .key = client_key,
                                                  .issuer = ca, .issuer_key = ca_key });
    return 0;
}

static int group_teardown(void **state)
{
    (void)state;
    X509_free(client_cert);
    X509_free(server_cert);
    X509_free(ca);
    EVP_PKEY_free(client_key);
    EVP_PKEY_free(server_key);
    EVP_PKEY_free(ca_key);
    return 0;
}

static int alert_sent;
static int send_alert;
static unsigned char alert_to_send = SSL_AD_ACCESS_DENIED;

/* Refuses every client, the way the second-factor gate does. */
static int refuse(X509_STORE_CTX *store_ctx, void *arg)
{
    (void)arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(store_ctx, SSL_get_ex_data_X509_STORE_CTX_idx());
    if (send_alert)
        alert_sent = tls_alert_send(ssl, alert_to_send) == 0;
    X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_APPLICATION_VERIFICATION);
    return 0;
}

static SSL_CTX *server_ctx(int version, const char *suites, const char *ciphers)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_use_certificate(ctx, server_cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, server_key), 1);
    assert_int_equal(SSL_CTX_set_min_proto_version(ctx, version), 1);
    assert_int_equal(SSL_CTX_set_max_proto_version(ctx, version), 1);
    if (suites != NULL)
        assert_int_equal(SSL_CTX_set_ciphersuites(ctx, suites), 1);
    if (ciphers != NULL)
        assert_int_equal(SSL_CTX_set_cipher_list(ctx, ciphers), 1);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_cert_verify_callback(ctx, refuse, NULL);
    assert_int_equal(tls_alert_prepare_ctx(ctx), 0);
    return ctx;
}

static SSL_CTX *client_ctx(const char *suites, const char *ciphers)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    assert_int_equal(SSL_CTX_use_certificate(ctx, client_cert), 1);
    assert_int_equal(SSL_CTX_use_PrivateKey(ctx, client_key), 1);
    if (suites != NULL)
        assert_int_equal(SSL_CTX_set_ciphersuites(ctx, suites), 1);
    if (ciphers != NULL)
        assert_int_equal(SSL_CTX_set_cipher_list(ctx, ciphers), 1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    return ctx;
}

/* Drives both ends over a socketpair until the client learns the outcome; returns
 * the alert description the client received (-1: none). */
static int run_refused_handshake(int version, const char *suites, const char *ciphers)
{
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds), 0);
    SSL_CTX *sctx = server_ctx(version, suites, ciphers);
    SSL_CTX *cctx = client_ctx(suites, ciphers);
    SSL *server = SSL_new(sctx);
    SSL *client = SSL_new(cctx);
    assert_non_null(server);
    assert_non_null(client);
    SSL_set_fd(server, fds[0]);
    SSL_set_fd(client, fds[1]);
    SSL_set_accept_state(server);
    SSL_set_connect_state(client);

    int server_done = 0, client_alert = -1;
    char buf[64];
    for (int round = 0; round < 200 && client_alert < 0; round++) {
        if (!server_done) {
            int rc = SSL_do_handshake(server);
            int err = SSL_get_error(server, rc);
            if (rc == 1 || (err != SSL_ERROR_WANT_READ && err != SSL_ERROR_WANT_WRITE))
                server_done = 1;
            ERR_clear_error();
        }
        /* After its handshake (TLS 1.3 ends it before the server has judged the
         * certificate) the client reads, which is where the alert surfaces. */
        int rc = SSL_is_init_finished(client) ? SSL_read(client, buf, sizeof(buf))
                                              : SSL_do_handshake(client);
        int err = SSL_get_error(client, rc);
        if (err == SSL_ERROR_SSL) {
            unsigned long code = ERR_peek_error();
            int reason = ERR_GET_REASON(code);
            client_alert = reason >= SSL_AD_REASON_OFFSET ? reason - SSL_AD_REASON_OFFSET : 0;
        } else if (err == SSL_ERROR_ZERO_RETURN || err == SSL_ERROR_SYSCALL) {
            client_alert = 0;
        }
        ERR_clear_error();
        struct pollfd pfd = { .fd = fds[1], .events = POLLIN };
        poll(&pfd, 1, 10);
    }
    SSL_free(client);
    SSL_free(server);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    close(fds[0]);
    close(fds[1]);
    return client_alert;
}

static void expect_alert(int version, const char *suites, const char *ciphers, unsigned char alert)
{
    send_alert = 1;
    alert_sent = 0;
    alert_to_send = alert;
    assert_int_equal(run_refused_handshake(version, suites, ciphers), alert);
    assert_true(alert_sent);
    alert_to_send = SSL_AD_ACCESS_DENIED;
}

static void expect_access_denied(int version, const char *suites, const char *ciphers)
{
    expect_alert(version, suites, ciphers, SSL_AD_ACCESS_DENIED);
}

/* The second factor's alert: "log in first", distinct from the allow rules'. */
static void test_insufficient_security_tls12(void **state)
{
    (void)state;
    expect_alert(TLS1_2_VERSION, NULL, "ECDHE-ECDSA-AES128-GCM-SHA256", SSL_AD_INSUFFICIENT_SECURITY);
}

static void test_insufficient_security_tls13(void **state)
{
    (void)state;
    expect_alert(TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", NULL, SSL_AD_INSUFFICIENT_SECURITY);
}

static void test_tls12_plaintext_alert(void **state)
{
    (void)state;
    expect_access_denied(TLS1_2_VERSION, NULL, "ECDHE-ECDSA-AES128-GCM-SHA256");
}

static void test_tls13_aes_128_gcm(void **state)
{
    (void)state;
    expect_access_denied(TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", NULL);
}

static void test_tls13_aes_256_gcm(void **state)
{
    (void)state;
    expect_access_denied(TLS1_3_VERSION, "TLS_AES_256_GCM_SHA384", NULL);
}

static void test_tls13_chacha20_poly1305(void **state)
{
    (void)state;
    expect_access_denied(TLS1_3_VERSION, "TLS_CHACHA20_POLY1305_SHA256", NULL);
}

static void test_tls13_aes_128_ccm(void **state)
{
    (void)state;
    expect_access_denied(TLS1_3_VERSION, "TLS_AES_128_CCM_SHA256", NULL);
}

/* The unsupported cipher falls back: no record of ours, OpenSSL's own alert. */
static void test_tls13_ccm8_falls_back_to_openssl_alert(void **state)
{
    (void)state;
    send_alert = 1;
    alert_sent = 1;
    int alert = run_refused_handshake(TLS1_3_VERSION, "TLS_AES_128_CCM_8_SHA256", NULL);
    assert_false(alert_sent);
    assert_int_equal(alert, SSL_AD_HANDSHAKE_FAILURE);
}

/* Without the hook OpenSSL says handshake_failure: the reason this module exists. */
static void test_openssl_alone_sends_handshake_failure(void **state)
{
    (void)state;
    send_alert = 0;
    assert_int_equal(run_refused_handshake(TLS1_3_VERSION, "TLS_AES_128_GCM_SHA256", NULL),
                     SSL_AD_HANDSHAKE_FAILURE);
}

static int keylog_lines;
static void count_keylog(const SSL *ssl, const char *line)
{
    (void)ssl, (void)line;
    keylog_lines++;
}

/* Prepared twice (the tunnel and its second-factor gate): the hook is installed once,
 * and the earlier callback still sees each line once. */
static void test_prepared_twice_hooks_once(void **state)
{
    (void)state;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    SSL_CTX_set_keylog_callback(ctx, count_keylog);
    assert_int_equal(tls_alert_prepare_ctx(ctx), 0);
    assert_int_equal(tls_alert_prepare_ctx(ctx), 0);
    SSL *ssl = SSL_new(ctx);
    assert_non_null(ssl);
    keylog_lines = 0;
    SSL_CTX_get_keylog_callback(ctx)(ssl, "CLIENT_HANDSHAKE_TRAFFIC_SECRET 00 00");
    assert_int_equal(keylog_lines, 1);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
}

/* A keylog callback installed earlier (kTLS key capture) still sees every line. */
static void test_previous_keylog_callback_still_called(void **state)
{
    (void)state;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(ctx);
    SSL_CTX_set_keylog_callback(ctx, count_keylog);
    assert_int_equal(tls_alert_prepare_ctx(ctx), 0);
    SSL *ssl = SSL_new(ctx);
    assert_non_null(ssl);
    keylog_lines = 0;
    SSL_CTX_get_keylog_callback(ctx)(ssl, "CLIENT_HANDSHAKE_TRAFFIC_SECRET 00 00");
    assert_int_equal(keylog_lines, 1);
    SSL_free(ssl);
    SSL_CTX_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tls12_plaintext_alert),
        cmocka_unit_test(test_tls13_aes_128_gcm),
        cmocka_unit_test(test_tls13_aes_256_gcm),
        cmocka_unit_test(test_tls13_chacha20_poly1305),
        cmocka_unit_test(test_tls13_aes_128_ccm),
        cmocka_unit_test(test_tls13_ccm8_falls_back_to_openssl_alert),
        cmocka_unit_test(test_openssl_alone_sends_handshake_failure),
        cmocka_unit_test(test_previous_keylog_callback_still_called),
        cmocka_unit_test(test_insufficient_security_tls12),
        cmocka_unit_test(test_insufficient_security_tls13),
        cmocka_unit_test(test_prepared_twice_hooks_once),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
