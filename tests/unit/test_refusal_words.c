/* refusal_words: each alert a ktlstun server refuses with reads as what it means and
 * what to do; the daemon's own wordings of an alert are recognised on every path;
 * a server that speaks no TLS is told apart by its first bytes (first_record, fed by
 * a real OpenSSL client). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "tls/first_record.h"
#include "tls/refusal_words.h"

static char words[600];

static void server_alert(int alert, int after_data)
{
    memset(words, 0, sizeof(words));
    assert_int_equal(refusal_words_server_alert(alert, "vpn", "CN=alice", after_data, words,
                                                sizeof(words)), 1);
}

static void test_allow_list(void **state)
{
    (void)state;
    server_alert(SSL_AD_ACCESS_DENIED, 0);
    assert_string_equal(words, "the server refused this client's certificate: it is not on this "
                               "gateway's allow list (alert access_denied); ask the gateway's "
                               "administrator to allow CN=alice");
}

static void test_login_needed(void **state)
{
    (void)state;
    server_alert(SSL_AD_INSUFFICIENT_SECURITY, 0);
    assert_string_equal(words, "a one-time-password login is needed, from this machine (alert "
                               "insufficient_security): run: ktlstun login vpn");
}

static void test_certificate_alerts(void **state)
{
    (void)state;
    server_alert(SSL_AD_CERTIFICATE_REVOKED, 0);
    assert_string_equal(words, "the server refused this client's certificate: it is revoked "
                               "(alert certificate_revoked); ask for a new certificate");
    server_alert(SSL_AD_CERTIFICATE_EXPIRED, 0);
    assert_non_null(strstr(words, "it has expired or is not valid yet (alert certificate_expired); "
                                  "ask for a new certificate"));
    server_alert(SSL_AD_UNKNOWN_CA, 0);
    assert_non_null(strstr(words, "the server does not trust this certificate's CA (alert unknown_ca)"));
    server_alert(SSL_AD_HANDSHAKE_FAILURE, 0);
    assert_non_null(strstr(words, "(alert handshake_failure)"));
    assert_non_null(strstr(words, "the gateway's log has the reason"));
}

/* An alert without words of its own still names itself; after data it is a withdrawal. */
static void test_other_alerts(void **state)
{
    (void)state;
    server_alert(SSL_AD_DECODE_ERROR, 0);
    assert_string_equal(words, "the server ended the TLS handshake (alert decode_error); the "
                               "gateway's log has the reason");
    server_alert(200, 0);
    assert_non_null(strstr(words, "(alert 200)"));
    server_alert(SSL_AD_ACCESS_DENIED, 1);
    assert_non_null(strstr(words, "the server ended the connection (alert access_denied): it "
                                  "withdrew this client's access"));
    assert_null(strstr(words, "allow list"));
}

static void test_not_refusals(void **state)
{
    (void)state;
    strcpy(words, "untouched");
    assert_int_equal(refusal_words_server_alert(SSL_AD_CLOSE_NOTIFY, "vpn", "CN=a", 0, words, sizeof(words)), 0);
    assert_int_equal(refusal_words_server_alert(SSL_AD_USER_CANCELLED, "vpn", "CN=a", 0, words, sizeof(words)), 0);
    assert_string_equal(words, "untouched");
}

/* Every path that ends on an alert words it its own way: the handshake and the kTLS
 * relay with SSL_alert_desc_string_long, the userspace relay with OpenSSL's error. */
static void test_alert_in_reasons(void **state)
{
    (void)state;
    assert_int_equal(refusal_words_alert_in("peer sent alert: access denied"), SSL_AD_ACCESS_DENIED);
    assert_int_equal(refusal_words_alert_in("TLS read failed: tlsv1 alert access denied"), SSL_AD_ACCESS_DENIED);
    assert_int_equal(refusal_words_alert_in("TLS read failed: tlsv1 alert insufficient security"),
                     SSL_AD_INSUFFICIENT_SECURITY);
    assert_int_equal(refusal_words_alert_in("peer sent alert: insufficient security"), SSL_AD_INSUFFICIENT_SECURITY);
    assert_int_equal(refusal_words_alert_in("TLS read failed: sslv3 alert certificate revoked"),
                     SSL_AD_CERTIFICATE_REVOKED);
    assert_int_equal(refusal_words_alert_in("TLS read failed: sslv3 alert certificate expired"),
                     SSL_AD_CERTIFICATE_EXPIRED);
    assert_int_equal(refusal_words_alert_in("peer sent alert: unknown CA"), SSL_AD_UNKNOWN_CA);
    assert_int_equal(refusal_words_alert_in("TLS write failed: tlsv1 alert unknown ca"), SSL_AD_UNKNOWN_CA);
    assert_int_equal(refusal_words_alert_in("peer sent alert: handshake failure"), SSL_AD_HANDSHAKE_FAILURE);
    assert_int_equal(refusal_words_alert_in("peer sent alert: bad certificate"), SSL_AD_BAD_CERTIFICATE);
    assert_int_equal(refusal_words_alert_in("TLS read failed: tlsv13 alert certificate required"),
                     SSL_AD_CERTIFICATE_REQUIRED);
    /* OpenSSL 3.0's text for alerts it has no name for: ambiguous, so none. */
    assert_int_equal(refusal_words_alert_in("peer sent alert: unknown"), -1);
    /* No alert: a reset, a clean end, the daemon's own refusals. */
    assert_int_equal(refusal_words_alert_in("TLS peer reset the connection: Connection reset by peer"), -1);
    assert_int_equal(refusal_words_alert_in("closed by both ends"), -1);
    assert_int_equal(refusal_words_alert_in("CN=mallory not in allow_cn"), -1);
    assert_int_equal(refusal_words_alert_in("TLS handshake failed: wrong version number"), -1);
    assert_int_equal(refusal_words_alert_in(NULL), -1);
}

static void test_alert_names(void **state)
{
    (void)state;
    assert_string_equal(refusal_words_alert_name(SSL_AD_ACCESS_DENIED), "access_denied");
    assert_string_equal(refusal_words_alert_name(SSL_AD_INSUFFICIENT_SECURITY), "insufficient_security");
    assert_string_equal(refusal_words_alert_name(SSL_AD_UNKNOWN_CA), "unknown_ca");
    assert_null(refusal_words_alert_name(255));
}

static void test_server_certificate(void **state)
{
    (void)state;
    refusal_words_server_certificate(X509_V_ERR_HOSTNAME_MISMATCH,
                                     "server certificate does not match server_name x.example (CN=y)",
                                     words, sizeof(words));
    assert_string_equal(words, "the server's certificate is not for the name this tunnel expects: "
                               "server certificate does not match server_name x.example (CN=y); "
                               "check server_name and target against the names in the server's "
                               "certificate");
    refusal_words_server_certificate(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY,
                                     "unknown CA: issuer CN=x is not trusted", words, sizeof(words));
    assert_non_null(strstr(words, "this client does not trust the server's certificate: unknown CA"));
    assert_non_null(strstr(words, "ca must hold the CA that issued it"));
    refusal_words_server_certificate(X509_V_ERR_CERT_HAS_EXPIRED, "certificate expired on D (CN=y)",
                                     words, sizeof(words));
    assert_non_null(strstr(words, "the server's certificate has expired: certificate expired on D"));
    refusal_words_server_certificate(X509_V_ERR_CERT_REVOKED, "revoked (CRL c) (CN=y)", words, sizeof(words));
    assert_non_null(strstr(words, "the server's certificate is revoked"));
    refusal_words_server_certificate(X509_V_ERR_INVALID_PURPOSE, "certificate not allowed for server "
                                     "authentication", words, sizeof(words));
    assert_non_null(strstr(words, "this client refused the server's certificate: certificate not allowed"));
}

static void test_not_tls(void **state)
{
    (void)state;
    const unsigned char http[] = "HTTP/1.1 400 Bad Request";
    const unsigned char ssh[] = "SSH-2.0-OpenSSH_9.2";
    const unsigned char smtp[] = "220 mail.example ESMTP";
    const unsigned char tls[] = { 0x16, 0x03, 0x03, 0x00, 0x7a };
    const unsigned char alert[] = { 0x15, 0x03, 0x03, 0x00, 0x02 };
    assert_int_equal(refusal_words_not_tls(http, 5, words, sizeof(words)), 1);
    assert_string_equal(words, "the server did not answer with TLS (it looks like plain HTTP): check "
                               "that `target` points at the server tunnel's TLS port");
    assert_int_equal(refusal_words_not_tls(ssh, 5, words, sizeof(words)), 1);
    assert_non_null(strstr(words, "(it looks like SSH)"));
    assert_int_equal(refusal_words_not_tls(smtp, 5, words, sizeof(words)), 1);
    assert_string_equal(words, "the server did not answer with TLS: check that `target` points at "
                               "the server tunnel's TLS port");
    assert_int_equal(refusal_words_not_tls(tls, sizeof(tls), words, sizeof(words)), 0);
    assert_int_equal(refusal_words_not_tls(alert, sizeof(alert), words, sizeof(words)), 0);
    assert_int_equal(refusal_words_not_tls(http, 0, words, sizeof(words)), 0);
}

/* A real client handshake against a plain HTTP answer: first_record keeps "HTTP/". */
static void test_first_record_of_plain_http(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
    const char answer[] = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n";
    assert_int_equal(write(fds[0], answer, sizeof(answer) - 1), (ssize_t)(sizeof(answer) - 1));
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    assert_non_null(ctx);
    SSL *ssl = SSL_new(ctx);
    assert_non_null(ssl);
    SSL_set_fd(ssl, fds[1]);
    SSL_set_connect_state(ssl);
    unsigned char head[8];
    assert_int_equal(first_record_head(ssl, head, sizeof(head)), 0);
    assert_int_equal(first_record_watch(ssl), 0);
    assert_true(SSL_do_handshake(ssl) <= 0);
    ERR_clear_error();
    assert_int_equal(first_record_head(ssl, head, sizeof(head)), 5);
    assert_memory_equal(head, "HTTP/", 5);
    assert_int_equal(refusal_words_not_tls(head, 5, words, sizeof(words)), 1);
    assert_non_null(strstr(words, "plain HTTP"));
    SSL_free(ssl);
    SSL_CTX_free(ctx);
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allow_list),
        cmocka_unit_test(test_login_needed),
        cmocka_unit_test(test_certificate_alerts),
        cmocka_unit_test(test_other_alerts),
        cmocka_unit_test(test_not_refusals),
        cmocka_unit_test(test_alert_in_reasons),
        cmocka_unit_test(test_alert_names),
        cmocka_unit_test(test_server_certificate),
        cmocka_unit_test(test_not_tls),
        cmocka_unit_test(test_first_record_of_plain_http),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
