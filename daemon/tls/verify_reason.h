/* verify_reason — turns an X509 verification failure into words a user can act on. */
#ifndef KTLSTUN_VERIFY_REASON_H
#define KTLSTUN_VERIFY_REASON_H

#include <stddef.h>
#include <openssl/x509.h>

/* Writes into BUF the reason for X509 error ERROR (X509_V_ERR_*) raised at CERT
 * (may be NULL). CRL_PATH names the CRL for revocations and SERVER_NAME the expected
 * name for hostname mismatches (either may be NULL). Fixed phrasings the tests and
 * operators rely on:
 *   "certificate expired on 2026-11-21 12:00:00 UTC (CN=...)"
 *   "certificate not valid before 2026-11-23 12:00:00 UTC (CN=...)"
 *   "unknown CA: issuer CN=... is not trusted"
 *   "self-signed certificate is not trusted (CN=...)"
 *   "revoked (CRL /path/crl.pem) (CN=...)"
 *   "certificate not allowed for client authentication: extendedKeyUsage lacks clientAuth (CN=...)"
 *   "certificate not allowed for server authentication: extendedKeyUsage lacks serverAuth (CN=...)"
 *   "certificate is a CA certificate (basicConstraints CA:TRUE), not a leaf (CN=...)"
 *   "server certificate does not match server_name NAME (CN=...)"
 *   "weak signature digest (SHA-1) on CN=..."
 *   "key too small (RSA 1024 bits) in CN=..."
 * and otherwise "certificate verification failed: <OpenSSL's text> (CN=...)". */
void verify_reason_format(int error, X509 *cert, const char *crl_path, const char *server_name,
                          char *buf, size_t len);

#endif
