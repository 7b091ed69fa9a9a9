/* user_map — which local (PAM) user a client certificate stands for.
 *
 *   cn                the certificate's commonName
 *   email-local-part  the part before '@' of its email SAN (rfc822Name)
 *   uri-path          the last segment of its URI SAN's path
 *                     (spiffe://example.com/users/alice → alice)
 *   file:/path        lines "IDENTITY USER"; IDENTITY is "cn:NAME", "email:ADDR",
 *                     "uri:URI", "dns:NAME" or "sha256:HEX" (a bare NAME means cn:NAME);
 *                     '#' starts a comment. Read when the configuration is loaded.
 *
 * A certificate whose candidates disagree (two emails for two users) is unmapped, as
 * is one whose name carries escaped bytes (identity_value_has_escapes) or whose
 * result is not a valid user name ([a-z_][a-z0-9_.-]*, at most 32 characters). The
 * identity reported is the certificate name that matched. */
#ifndef KTLSTUN_USER_MAP_H
#define KTLSTUN_USER_MAP_H

#include <stddef.h>

#include "core/identity.h"
#include "core/limits.h"


struct user_map;

/* Parses SPEC (relative file paths are taken from BASE_DIR) and, for file:, reads
 * the file. Returns a map the caller frees with user_map_free(), or NULL with the
 * reason in ERR ("FILE:LINE: ..." for a bad line). */
struct user_map *user_map_parse(const char *spec, const char *base_dir, char *err,
                                size_t errlen);

/* Frees MAP (NULL is fine). */
void user_map_free(struct user_map *map);

/* Returns the spec as configured ("cn", "file:/etc/ktlstun/users.map", ...). */
const char *user_map_describe(const struct user_map *map);

/* Maps ID. Returns 1 and writes the matched certificate name into IDENTITY
 * (LIMIT_IDENTITY + 1 bytes) and the user into USER (LIMIT_USER_NAME + 1
 * bytes); returns 0 with a reason a user can act on in REASON. */
int user_map_lookup(const struct user_map *map, const struct identity *id, char *identity,
                    char *user, char *reason, size_t reason_len);

/* Returns 1 when NAME is acceptable as a mapped user name. */
int user_map_valid_user(const char *name);

#endif
