#include "tls/refusal_words.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

/* Every alert a server may end a handshake with. WORDS: what it means for the client
 * and what to do (access_denied and insufficient_security get the certificate's or the
 * tunnel's name after them). Without WORDS: words of its own are not worth having. */
static const struct {
    int alert;
    const char *name;
    const char *words;
} alerts[] = {
    { SSL_AD_CLOSE_NOTIFY, "close_notify", NULL },
    { SSL_AD_UNEXPECTED_MESSAGE, "unexpected_message", NULL },
    { SSL_AD_BAD_RECORD_MAC, "bad_record_mac", NULL },
    { SSL_AD_RECORD_OVERFLOW, "record_overflow", NULL },
    { SSL_AD_HANDSHAKE_FAILURE, "handshake_failure",
      "the server refused the TLS handshake (alert handshake_failure): no TLS version or cipher "
      "in common, or a refusal it does not name; the gateway's log has the reason" },
    { SSL_AD_BAD_CERTIFICATE, "bad_certificate",
      "the server refused this client's certificate: it cannot use it (alert bad_certificate); "
      "ask for a new certificate" },
    { SSL_AD_UNSUPPORTED_CERTIFICATE, "unsupported_certificate",
      "the server refused this client's certificate: it is not for client authentication "
      "(alert unsupported_certificate); ask for a certificate with extendedKeyUsage clientAuth" },
    { SSL_AD_CERTIFICATE_REVOKED, "certificate_revoked",
      "the server refused this client's certificate: it is revoked (alert certificate_revoked); "
      "ask for a new certificate" },
    { SSL_AD_CERTIFICATE_EXPIRED, "certificate_expired",
      "the server refused this client's certificate: it has expired or is not valid yet (alert "
      "certificate_expired); ask for a new certificate, and check this machine's clock" },
    { SSL_AD_CERTIFICATE_UNKNOWN, "certificate_unknown",
      "the server refused this client's certificate (alert certificate_unknown); the gateway's "
      "log has the reason" },
    { SSL_AD_ILLEGAL_PARAMETER, "illegal_parameter", NULL },
    { SSL_AD_UNKNOWN_CA, "unknown_ca",
      "the server does not trust this certificate's CA (alert unknown_ca); use a certificate "
      "from a CA the gateway trusts, or ask its administrator to trust this one" },
    { SSL_AD_ACCESS_DENIED, "access_denied",
      "the server refused this client's certificate: it is not on this gateway's allow list "
      "(alert access_denied); ask the gateway's administrator to allow " },
    { SSL_AD_DECODE_ERROR, "decode_error", NULL },
    { SSL_AD_DECRYPT_ERROR, "decrypt_error", NULL },
    { SSL_AD_PROTOCOL_VERSION, "protocol_version",
      "the server speaks no TLS version this client offers (alert protocol_version); compare "
      "tls_min_version on both ends" },
    { SSL_AD_INSUFFICIENT_SECURITY, "insufficient_security",
      "a one-time-password login is needed, from this machine (alert insufficient_security): "
      "run: ktlstun login " },
    { SSL_AD_INTERNAL_ERROR, "internal_error",
      "the server failed (alert internal_error); the gateway's log has the reason" },
    { SSL_AD_INAPPROPRIATE_FALLBACK, "inappropriate_fallback", NULL },
    { SSL_AD_USER_CANCELLED, "user_canceled", NULL },
    { SSL_AD_NO_RENEGOTIATION, "no_renegotiation", NULL },
    { SSL_AD_MISSING_EXTENSION, "missing_extension", NULL },
    { SSL_AD_UNSUPPORTED_EXTENSION, "unsupported_extension", NULL },
    { SSL_AD_UNRECOGNIZED_NAME, "unrecognized_name",
      "the server does not serve the name this client asks for (alert unrecognized_name); "
      "check server_name" },
    { SSL_AD_BAD_CERTIFICATE_STATUS_RESPONSE, "bad_certificate_status_response", NULL },
    { SSL_AD_UNKNOWN_PSK_IDENTITY, "unknown_psk_identity", NULL },
    { SSL_AD_CERTIFICATE_REQUIRED, "certificate_required",
      "the server wants a client certificate (alert certificate_required); set cert and key "
      "in this tunnel" },
    { SSL_AD_NO_APPLICATION_PROTOCOL, "no_application_protocol", NULL },
};

#define ALERT_COUNT (sizeof(alerts) / sizeof(alerts[0]))

/* Alerts that end a session without refusing anything. */
static int is_refusal(int alert)
{
    return alert != SSL_AD_CLOSE_NOTIFY && alert != SSL_AD_USER_CANCELLED &&
           alert != SSL_AD_NO_RENEGOTIATION;
}

/* Returns 1 when REASON holds TEXT, ending there or before " (". */
static int names(const char *reason, const char *prefix, const char *text)
{
    size_t prefix_len = strlen(prefix), text_len = strlen(text);
    for (const char *at = strstr(reason, prefix); at != NULL; at = strstr(at + 1, prefix)) {
        const char *end = at + prefix_len + text_len;
        if (strncmp(at + prefix_len, text, text_len) == 0 &&
            (*end == '\0' || strncmp(end, " (", 2) == 0))
            return 1;
    }
    return 0;
}

int refusal_words_alert_in(const char *reason)
{
    /* Every wording of an alert says "alert"; most reasons (a clean end) do not. */
    if (reason == NULL || strstr(reason, "alert") == NULL)
        return -1;
    /* libssl loads its texts with its first context; a caller may come before one. */
    OPENSSL_init_ssl(OPENSSL_INIT_LOAD_SSL_STRINGS, NULL);
    for (size_t i = 0; i < ALERT_COUNT; i++) {
        int alert = alerts[i].alert;
        /* worker's handshake refusal and the kTLS relay: SSL_alert_desc_string_long;
         * the userspace relay: the OpenSSL error the alert raised. */
        const char *err = ERR_reason_error_string(ERR_PACK(ERR_LIB_SSL, 0, SSL_AD_REASON_OFFSET + alert));
        const char *desc = SSL_alert_desc_string_long(alert);
        /* OpenSSL 3.0 has no text for some newer alerts: "unknown" names none. */
        if ((strcmp(desc, "unknown") != 0 && names(reason, "peer sent alert: ", desc)) ||
            (err != NULL && names(reason, ": ", err)))
            return alert;
    }
    return -1;
}

const char *refusal_words_alert_name(int alert)
{
    for (size_t i = 0; i < ALERT_COUNT; i++)
        if (alerts[i].alert == alert)
            return alerts[i].name;
    return NULL;
}

int refusal_words_server_alert(int alert, const char *tunnel, const char *who, int after_data,
                               char *reason, size_t len)
{
    if (!is_refusal(alert))
        return 0;
    const char *name = refusal_words_alert_name(alert);
    char unnamed[16];
    if (name == NULL) {
        snprintf(unnamed, sizeof(unnamed), "%d", alert);
        name = unnamed;
    }
    const char *words = NULL;
    for (size_t i = 0; i < ALERT_COUNT; i++)
        if (alerts[i].alert == alert)
            words = alerts[i].words;
    if (after_data) {
        snprintf(reason, len, "the server ended the connection (alert %s): it withdrew this "
                 "client's access (allow rules, revocation, a login that ended, "
                 "max_connection_lifetime or its administrator); the gateway's log has the "
                 "reason", name);
    } else if (words == NULL) {
        snprintf(reason, len, "the server ended the TLS handshake (alert %s); the gateway's log "
                 "has the reason", name);
    } else if (alert == SSL_AD_INSUFFICIENT_SECURITY) {
        snprintf(reason, len, "%s%s", words, tunnel);
    } else if (alert == SSL_AD_ACCESS_DENIED) {
        snprintf(reason, len, "%s%s", words, who != NULL && who[0] != '\0' ? who : "this certificate");
    } else {
        snprintf(reason, len, "%s", words);
    }
    return 1;
}

void refusal_words_server_certificate(int x509_error, const char *verdict, char *reason, size_t len)
{
    const char *what = "this client refused the server's certificate";
    const char *todo = "";
    switch (x509_error) {
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
    case X509_V_ERR_EMAIL_MISMATCH:
        what = "the server's certificate is not for the name this tunnel expects";
        todo = "; check server_name and target against the names in the server's certificate";
        break;
    case X509_V_ERR_CERT_HAS_EXPIRED:
        what = "the server's certificate has expired";
        todo = "; the gateway's administrator must renew it (or this machine's clock is wrong)";
        break;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        what = "the server's certificate is not valid yet";
        todo = "; check this machine's clock";
        break;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        what = "this client does not trust the server's certificate";
        todo = "; this tunnel's ca must hold the CA that issued it";
        break;
    case X509_V_ERR_CERT_REVOKED:
        what = "the server's certificate is revoked";
        todo = "; the gateway needs a new certificate";
        break;
    default:
        break;
    }
    snprintf(reason, len, "%s: %s%s", what, verdict != NULL ? verdict : "", todo);
}

int refusal_words_not_tls(const unsigned char *head, size_t n, char *reason, size_t len)
{
    /* A TLS record starts with its content type (change_cipher_spec 20 to heartbeat 24)
     * and the major version 3. */
    if (n == 0 || (head[0] >= 20 && head[0] <= 24 && (n < 2 || head[1] == 3)))
        return 0;
    const char *looks = "";
    if (n >= 5 && memcmp(head, "HTTP/", 5) == 0)
        looks = " (it looks like plain HTTP)";
    else if (n >= 4 && memcmp(head, "SSH-", 4) == 0)
        looks = " (it looks like SSH)";
    snprintf(reason, len, "the server did not answer with TLS%s: check that `target` points at "
             "the server tunnel's TLS port", looks);
    return 1;
}
