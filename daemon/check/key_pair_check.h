/* key_pair_check — a tunnel's cert and key files as the TLS context will load them,
 * with the fix for what OpenSSL would only call "no start line" or "key values
 * mismatch": a PKCS#12 bundle instead of PEM, a key encrypted with a passphrase, a
 * file without a PEM certificate or key, and a key that does not belong to the
 * certificate. Never prompts for a passphrase and never reports key material. */
#ifndef KTLSTUN_KEY_PAIR_CHECK_H
#define KTLSTUN_KEY_PAIR_CHECK_H

#include "check/check_report.h"
#include "config/config.h"

/* Checks TUNNEL's cert and key files into REPORT (errors at the cert or key line):
 *   - a DER PKCS#12 (PFX) file given as cert or key: the openssl pkcs12 commands that
 *     split it;
 *   - an encrypted PEM key (ENCRYPTED PRIVATE KEY, or Proc-Type: 4,ENCRYPTED): the
 *     openssl pkey command that writes it unencrypted;
 *   - no PEM certificate in cert, no PEM private key in key;
 *   - a key whose public half is not the first certificate's (when it is a later
 *     certificate's, and the first is not a CA: the leaf must come first; a CA first
 *     is cert_check's to report).
 * Returns 0 when the pair would load into a TLS context, -1 when it would not (the
 * caller then builds no context, so OpenSSL's own words are not reported too). */
int key_pair_check_tunnel(const struct tunnel_config *tunnel, struct check_report *report);

#endif
