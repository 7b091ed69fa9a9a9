/* tls_record — the TLS record-layer numbers (RFC 8446 sections 5, 6 and B.3) the
 * kernel path and the alerts we write ourselves need. */
#ifndef KTLSTUN_TLS_RECORD_H
#define KTLSTUN_TLS_RECORD_H

#define TLS_RECORD_HEADER_LEN 5
#define TLS_RECORD_MAX_PLAINTEXT 16384

/* ContentType */
#define TLS_RECORD_CHANGE_CIPHER_SPEC 20
#define TLS_RECORD_ALERT 21
#define TLS_RECORD_HANDSHAKE 22
#define TLS_RECORD_APPLICATION_DATA 23

/* HandshakeType, for messages that arrive after the handshake */
#define TLS_HANDSHAKE_NEW_SESSION_TICKET 4
#define TLS_HANDSHAKE_KEY_UPDATE 24

/* AlertLevel and AlertDescription */
#define TLS_ALERT_WARNING 1
#define TLS_ALERT_FATAL 2
#define TLS_ALERT_CLOSE_NOTIFY 0
#define TLS_ALERT_UNEXPECTED_MESSAGE 10
#define TLS_ALERT_BAD_RECORD_MAC 20
#define TLS_ALERT_CERTIFICATE_REVOKED 44
#define TLS_ALERT_CERTIFICATE_EXPIRED 45
#define TLS_ALERT_CERTIFICATE_UNKNOWN 46
#define TLS_ALERT_ACCESS_DENIED 49
#define TLS_ALERT_DECODE_ERROR 50
#define TLS_ALERT_INTERNAL_ERROR 80

#endif
