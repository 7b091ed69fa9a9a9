/* cert_check — a tunnel's own certificate file as its peers will judge it: the dates
 * of every certificate in it, the leaf first and each issuer after what it issued,
 * the leaf's issuer sent along unless it is a root, and the extendedKeyUsage the
 * tunnel's mode needs. */
#ifndef KTLSTUN_CERT_CHECK_H
#define KTLSTUN_CERT_CHECK_H

#include <stdint.h>
#include <time.h>

#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "check/check_report.h"
#include "config/config.h"

/* Checks FILE_CHAIN (the certificates of TUNNEL's cert file in file order, at least
 * one) at time NOW into REPORT, at the cert key's line:
 *   errors    a CA certificate first while an end-entity certificate follows (the
 *             leaf must come first); a certificate that did not issue the one before
 *             it (out of order); a certificate expired or not yet valid; the leaf's
 *             issuer not sent (neither in the file nor in SENT) although TRUSTED holds
 *             it and it is not a root; an extendedKeyUsage without serverAuth (server
 *             mode) or clientAuth (client mode)
 *   warnings  a certificate that expires within EXPIRY_WARNING seconds; the leaf's
 *             issuer found nowhere (in neither the file, SENT nor TRUSTED: it may be a
 *             root the peers trust, or an intermediate they will miss)
 * TRUSTED (the tunnel's ca; NULL: unknown) and SENT (the chain the daemon sends after
 * the leaf, as its TLS context built it; NULL: none) are only read. With TRUSTED
 * NULL the issuer is not looked for. */
void cert_check_chain(const struct tunnel_config *tunnel, STACK_OF(X509) *file_chain,
                      X509_STORE *trusted, STACK_OF(X509) *sent, time_t now,
                      uint64_t expiry_warning, struct check_report *report);

/* Reads TUNNEL's cert file and checks it as cert_check_chain does, with the ca store
 * and the chain of CTX, the tunnel's built TLS context (NULL when it did not build:
 * then the issuer is not looked for). A file that cannot be read adds nothing: the
 * context's load has reported it. */
void cert_check_tunnel(const struct tunnel_config *tunnel, SSL_CTX *ctx, time_t now,
                       uint64_t expiry_warning, struct check_report *report);

#endif
