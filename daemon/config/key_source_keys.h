/* key_source_keys — internal to daemon/config/: where a tunnel's certificate and key
 * come from. `cert` is a file (PEM, or a PKCS#12 bundle that may carry the key and
 * chain too); `key` is a file (PEM, encrypted PEM, PKCS#12) or a PKCS#11 URI
 * (`pkcs11:…`) or a TPM's persistent handle (`handle:0x81…`; a TSS2 key file is
 * refused, key_file.h says why); the passphrase or PIN
 * comes from `key_passphrase_file` or `key_passphrase_credential`; `pkcs11_module`
 * names the PKCS#11 library. The keys are read here; opening them is tls/key_source. */
#ifndef KTLSTUN_KEY_SOURCE_KEYS_H
#define KTLSTUN_KEY_SOURCE_KEYS_H

#include <stddef.h>

#include "config/config_loader.h"

/* Returns the key table (static) and its size in *COUNT: key_passphrase_file,
 * key_passphrase_credential, pkcs11_module. */
const struct config_tunnel_key *key_source_keys_list(size_t *count);

/* The setters of `cert` and `key` (listed in tunnel_keys.c's table, which orders the
 * missing keys). A certificate is a readable file; a key a readable file, a pkcs11:
 * URI or a handle: URI, kept as written in tunnel->key with tunnel->key_location. Return 0, or -1
 * after reporting the problem. */
int key_source_keys_set_cert(struct config_loader *ld, const struct ini_section *section,
                             const struct ini_key *key, struct tunnel_config *tunnel);
int key_source_keys_set_key(struct config_loader *ld, const struct ini_section *section,
                            const struct ini_key *key, struct tunnel_config *tunnel);

/* Returns 1 when NAME, a required key, may be left out of TUNNEL: `key` when its cert
 * is a PKCS#12 bundle (the key comes from the bundle). Else 0. */
int key_source_keys_not_needed(const struct tunnel_config *tunnel, const char *name);

/* Runs once SECTION's keys are all set into TUNNEL: both passphrase keys at once are
 * refused. Returns 0, or -1 after reporting it. */
int key_source_keys_finish(struct config_loader *ld, const struct ini_section *section,
                           const struct tunnel_config *tunnel);

/* Frees what these keys allocated in TUNNEL (not cert and key: config.c frees them). */
void key_source_keys_free(struct tunnel_config *tunnel);

#endif
