/* pin — decodes a pin_sha256 value: the SHA-256 of a certificate's DER
 * SubjectPublicKeyInfo (RFC 7469), as allow_check() compares it. */
#ifndef KTLSTUN_PIN_H
#define KTLSTUN_PIN_H

#define PIN_SHA256_LEN 32

/* Decodes TEXT, written as 64 hex digits in either case with any colons ("AB:CD:…",
 * as openssl prints fingerprints), or as strict base64 of 32 bytes with or without
 * its '=' (HPKP's pin-sha256), optionally after curl's "sha256//" (any case).
 * Returns 0 with the digest in DIGEST, or -1 when TEXT is none of these (DIGEST may
 * then hold part of a result). */
int pin_decode(const char *text, unsigned char digest[PIN_SHA256_LEN]);

#endif
