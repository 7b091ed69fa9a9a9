/* refusal_words — what a client tunnel tells its user, in plain words, when its server
 * refuses it or it refuses its server: the meaning of the server's TLS alert and what
 * to do, the client's own verdict on the server's certificate, a server that does not
 * speak TLS. A ktlstun server picks its alerts for this (README, "Refusals"):
 *
 *   access_denied          not on the allow list (allow_cn, allow_san, pins, two CNs)
 *   insufficient_security  no live second-factor login: run `ktlstun login NAME`
 *   certificate_revoked / certificate_expired / unknown_ca   OpenSSL's, as usual
 *
 * Pure: no I/O, OpenSSL only for its alert texts. */
#ifndef KTLSTUN_REFUSAL_WORDS_H
#define KTLSTUN_REFUSAL_WORDS_H

#include <stddef.h>

/* Returns the TLS alert description (SSL_AD_*) that REASON names as the daemon words a
 * failed handshake or relay ("peer sent alert: access denied", "TLS read failed: tlsv1
 * alert access denied"), or -1 when it names none. */
int refusal_words_alert_in(const char *reason);

/* Returns the alert's name as RFC 8446 spells it ("access_denied"), or NULL for an
 * alert this module does not know. Static storage. */
const char *refusal_words_alert_name(int alert);

/* Writes into REASON (LEN bytes) what fatal alert ALERT from the server means for the
 * client tunnel TUNNEL whose certificate names WHO ("CN=alice"), and what to do.
 * AFTER_DATA: the server had already let data through (it withdrew access rather than
 * refusing it). Returns 1, or 0 when ALERT is no refusal (close_notify, user_canceled,
 * no_renegotiation) and REASON is left alone. */
int refusal_words_server_alert(int alert, const char *tunnel, const char *who, int after_data,
                               char *reason, size_t len);

/* Writes into REASON (LEN bytes) why this client refused its server's certificate:
 * X509_ERROR (X509_V_ERR_*) as verification found it, VERDICT as verify_reason worded
 * it, and what to do. */
void refusal_words_server_certificate(int x509_error, const char *verdict, char *reason, size_t len);

/* HEAD holds the first N bytes the server sent. Returns 1 after writing into REASON
 * (LEN bytes) that the server does not speak TLS (naming plain HTTP or SSH when it
 * looks like one), or 0 when HEAD is empty or starts like a TLS record. */
int refusal_words_not_tls(const unsigned char *head, size_t n, char *reason, size_t len);

#endif
