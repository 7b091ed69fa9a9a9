/* tls_alert — a server's fatal alert of its own choosing (access_denied for the allow
 * rules, insufficient_security for a missing second-factor login) for a refusal decided
 * while it verifies the client certificate, so the client learns which refusal it is.
 *
 * OpenSSL 3.0 turns a failed certificate verification into the alert its table
 * (ssl_x509err2alert in ssl/statem/statem_lib.c) assigns to the verify error; no
 * X509_V_ERR maps to access_denied (application verification → handshake_failure,
 * unknown codes → certificate_unknown) and libssl exports no call that sends an
 * arbitrary alert. So the refusal writes the alert record itself, exactly where
 * OpenSSL would have written its own, then shuts the socket's sending side so
 * OpenSSL's handshake_failure never follows:
 *   TLS 1.2: the server has not sent ChangeCipherSpec yet, the record is plaintext.
 *   TLS 1.3: the server switched to its application traffic keys after its Finished,
 *            so the record is AEAD-protected with server_application_traffic_secret_0
 *            (captured from the keylog callback) at sequence number 0 — nothing has
 *            been sent under those keys yet (no session tickets before the client's
 *            Finished). Key and IV come from ktls_keys; the AEAD is OpenSSL's EVP.
 * When neither applies (a cipher outside AES-GCM / AES-128-CCM / ChaCha20-Poly1305,
 * or no secret captured), the caller's ordinary verify failure sends
 * handshake_failure instead. */
#ifndef KTLSTUN_TLS_ALERT_H
#define KTLSTUN_TLS_ALERT_H

#include <openssl/ssl.h>

/* Arranges for CTX's connections to remember the server application traffic secret
 * (TLS 1.3): installs a keylog callback that first calls the one already installed,
 * if any. Call after any other keylog callback is set on CTX; a second call on the
 * same CTX does nothing. Returns 0, or -1 after logging. */
int tls_alert_prepare_ctx(SSL_CTX *ctx);

/* From inside SSL's certificate verification (server side): writes a fatal alert
 * record with description ALERT (SSL_AD_ACCESS_DENIED, ...) to SSL's socket and shuts
 * down its sending side. Returns 0 when the alert went out, -1 when it could not be
 * built (the caller's verify failure then sends OpenSSL's own alert). Never logs key
 * material. */
int tls_alert_send(SSL *ssl, unsigned char alert);

#endif
