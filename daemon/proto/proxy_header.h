/* proxy_header — the PROXY protocol version 2 header a server tunnel sends its target
 * first (haproxy's proxy-protocol.txt): who the client is, where it connected, and
 * what its TLS session proved. Pure: bytes in a buffer, no I/O. */
#ifndef KTLSTUN_PROXY_HEADER_H
#define KTLSTUN_PROXY_HEADER_H

#include <stddef.h>
#include <sys/socket.h>

/* The TLV types sent (README "PROXY protocol"). */
#define PROXY_HEADER_TLV_SSL 0x20
#define PROXY_HEADER_SUBTLV_SSL_VERSION 0x21
#define PROXY_HEADER_SUBTLV_SSL_CN 0x22
#define PROXY_HEADER_SUBTLV_SSL_CIPHER 0x23
#define PROXY_HEADER_TLV_CERT_SHA256 0xE0   /* custom: the client certificate's SHA-256, hex */
#define PROXY_HEADER_TLV_USER 0xE1          /* custom: the user the certificate maps to */

/* The PP2_TYPE_SSL client bits: TLS, a certificate on this connection and session. */
#define PROXY_HEADER_CLIENT_SSL 0x01
#define PROXY_HEADER_CLIENT_CERT_CONN 0x02
#define PROXY_HEADER_CLIENT_CERT_SESS 0x04

/* Room for any header proxy_header_build writes from values of the sizes it takes. */
#define PROXY_HEADER_MAX 1536

/* What the header says of the TLS session; a NULL or empty field is left out. */
struct proxy_header_tls {
    const char *version;          /* "TLSv1.3"                                    */
    const char *cipher;           /* "TLS_AES_256_GCM_SHA384"                     */
    const char *cn;               /* the client certificate's CN                  */
    const char *cert_sha256;      /* its SHA-256, lowercase hex                   */
    const char *user;             /* the user it maps to                          */
};

/* Writes into OUT (CAP bytes) the header of a stream from SOURCE to DESTINATION (both
 * AF_INET or both AF_INET6, an IPv4-mapped pair written as IPv4; anything else is
 * written as AF_UNSPEC, which tells the target to use the connection's own addresses)
 * with the PP2_TYPE_SSL TLV (verified client certificate) and the custom TLVs of TLS.
 * A field longer than 255 bytes is refused. Returns the header's length, or 0 when a
 * field is too long or CAP too small. */
size_t proxy_header_build(const struct sockaddr *source, const struct sockaddr *destination,
                          const struct proxy_header_tls *tls, unsigned char *out, size_t cap);

#endif
