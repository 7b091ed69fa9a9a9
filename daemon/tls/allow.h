/* allow — a server tunnel's admission rules: allow_cn/ou/dns/uri/email and pin_sha256.
 *
 * Semantics (ghostunnel's): with no allow_* rule, every certificate the CA vouches
 * for is admitted; otherwise at least one rule must match. pin_sha256, when set, must
 * match as well (it is an extra condition, not an alternative). */
#ifndef KTLSTUN_ALLOW_H
#define KTLSTUN_ALLOW_H

#include <stddef.h>

#include "config/config.h"
#include "core/identity.h"

/* Returns 1 when ID may use TUNNEL. Otherwise returns 0 and writes a reason a human
 * can act on into REASON, e.g. "CN=mallory not in allow_cn" or
 * "CN=mallory, DNS:m.example matched none of allow_cn, allow_dns" or
 * "public key pin mismatch (pin_sha256): spki sha256 ab12…". */
int allow_check(const struct tunnel_config *tunnel, const struct identity *id,
                char *reason, size_t reason_len);

/* Matches VALUE against PATTERN with ghostunnel's wildcards: "*" stands for one
 * label/path segment, "**" for any number of them (see allow.c for the separators).
 * Comparison is case-insensitive for DNS names and CNs, exact for URIs.
 * Returns 1 on a match. */
int allow_wildcard_match(const char *pattern, const char *value, char separator, int ignore_case);

#endif
