/* key_pair_check — a tunnel's certificate and key as the TLS context will load them
 * (through tls/key_source: PEM, PKCS#12, encrypted PEM with its passphrase, PKCS#11
 * tokens), with the fix for what OpenSSL would only call "no start line", "bad
 * decrypt" or "key values mismatch". Never prompts for a passphrase and never
 * reports key material or a passphrase. */
#ifndef KTLSTUN_KEY_PAIR_CHECK_H
#define KTLSTUN_KEY_PAIR_CHECK_H

#include "check/check_report.h"
#include "config/config.h"

/* Checks TUNNEL's cert and key into REPORT (errors at the line of the key concerned):
 *   - what keeps them from loading (tls/key_source's reasons: no PEM certificate or
 *     key, a passphrase missing or not decrypting, a PKCS#12 bundle without a key, a
 *     token refusing the key, a key in a TPM);
 *   - a key whose public half is not the first certificate's (when it is a later
 *     certificate's, and the first is not a CA: the leaf must come first; a CA first
 *     is cert_check's to report).
 * Returns 0 when the pair would load into a TLS context, -1 when it would not (the
 * caller then builds no context, so OpenSSL's own words are not reported too). */
int key_pair_check_tunnel(const struct tunnel_config *tunnel, struct check_report *report);

#endif
