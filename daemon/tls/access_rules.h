/* access_rules — what decides whether a peer admitted earlier may stay connected, for
 * every tunnel of one loaded configuration, in a form one process writes and another
 * reads back.
 *
 * A reload makes a new configuration live in the parent, but the workers of older
 * generations keep serving their connections and cannot load it themselves (they
 * dropped the privileges to read keys, and must not need them). So the parent writes
 * these rules once per reload, and each older worker reads them and checks its live
 * connections against them (tls_context_recheck_peer, the second factor's grant).
 *
 * Per tunnel: its name and mode, the server name a client tunnel expects, the crl
 * path (for messages), the allow rules and pins, second_factor,
 * bind_grant_to_address, max_connection_lifetime, and every certificate and CRL of
 * the tunnel's trust store (PEM), with the CRL check flags that store had. The text is
 * written by the parent only, from its own configuration; what cannot be written
 * so that it reads back the same is an error, never a silent change. */
#ifndef KTLSTUN_ACCESS_RULES_H
#define KTLSTUN_ACCESS_RULES_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <openssl/ssl.h>

#include "config/config.h"

struct access_rules;

/* Writes the header of the rules of configuration GENERATION, loaded at LOADED_AT
 * (seconds since the epoch), to OUT. Returns 0, or -1 on a write error. */
int access_rules_write_header(FILE *out, unsigned generation, int64_t loaded_at);

/* Writes TUNNEL's rules, with the trust store of CTX (its context), to OUT. Returns
 * 0, or -1 after logging (a value with a line break, a certificate that cannot be
 * encoded, a write error). */
int access_rules_write_tunnel(FILE *out, const struct tunnel_config *tunnel, SSL_CTX *ctx);

/* Reads the rules in TEXT (LEN bytes, not NUL-terminated). Returns them (the caller
 * frees them with access_rules_free), or NULL after logging what was wrong. */
struct access_rules *access_rules_read(const char *text, size_t len);

/* Frees RULES (NULL is fine). */
void access_rules_free(struct access_rules *rules);

/* Returns the generation number of the configuration RULES come from. */
unsigned access_rules_generation(const struct access_rules *rules);

/* Returns when that configuration was loaded (seconds since the epoch). */
int64_t access_rules_loaded_at(const struct access_rules *rules);

/* Returns the rules of the tunnel called NAME, with only the fields listed above set
 * (owned by RULES), and sets *STORE (may be NULL) to its trust store (owned by RULES);
 * returns NULL when the configuration has no such tunnel. */
const struct tunnel_config *access_rules_tunnel(const struct access_rules *rules,
                                                const char *name, X509_STORE **store);

#endif
