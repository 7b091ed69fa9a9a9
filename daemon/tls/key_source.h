/* key_source — a tunnel's certificate chain and private key, from wherever its
 * configuration says: PEM files, a PKCS#12 bundle (cert = x.p12: its key and chain
 * too), an encrypted PEM key, a PKCS#11 token (key = pkcs11:…), a TPM's persistent
 * handle (key = handle:0x81…: its public half only, see tls/tpm_key.h); a TSS2
 * PRIVATE KEY file is refused. The passphrase (also a token's PIN) comes
 * from key_passphrase_file or key_passphrase_credential ($CREDENTIALS_DIRECTORY),
 * is read for the load alone and wiped; it is never logged. The TLS context and the
 * checks (`ktlstund -t`, check-config, start, reload) load through here, so they
 * agree. Never prompts. */
#ifndef KTLSTUN_KEY_SOURCE_H
#define KTLSTUN_KEY_SOURCE_H

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "config/config.h"

/* What a tunnel presents: all owned by the struct. */
struct key_material {
    X509 *leaf;                   /* the first certificate                          */
    STACK_OF(X509) *chain;        /* the certificates after it, in file order       */
    EVP_PKEY *key;                /* a TPM's key: its public half alone             */
};

/* Why a load failed: KEY is the configuration key to point at ("cert", "key",
 * "key_passphrase_file", "key_passphrase_credential"), REASON the words for users. */
struct key_source_error {
    const char *key;
    char reason[1024];
};

/* Loads TUNNEL's certificate chain and key into *OUT (zeroed first). Returns 0, or
 * -1 with *ERROR filled and nothing left in *OUT. Does not check that the key belongs
 * to the certificate (the caller words that). OpenSSL's error queue is left empty. */
int key_source_load(const struct tunnel_config *tunnel, struct key_material *out,
                    struct key_source_error *error);

/* Frees what MATERIAL holds and zeroes it. */
void key_source_release(struct key_material *material);

/* Returns where TUNNEL's key is, as the configuration names it: its file or URI, or
 * the PKCS#12 bundle given as cert when there is no key line. */
const char *key_source_name(const struct tunnel_config *tunnel);

#endif
