/* second_factor_keys — internal to daemon/config/: a server tunnel's second factor
 * keys (second_factor, pam_*, user_map, grant_lifetime, bind_grant_to_address,
 * browser_login, the lockout keys, alert_command, max_handshake_failures), their setters
 * and defaults. */
#ifndef KTLSTUN_SECOND_FACTOR_KEYS_H
#define KTLSTUN_SECOND_FACTOR_KEYS_H

#include <stddef.h>

#include "config/config_loader.h"

/* Returns the key table (static) and its size in *COUNT. */
const struct config_tunnel_key *second_factor_keys_list(size_t *count);

/* Sets the defaults that do not depend on second_factor in TUNNEL (none, timeouts,
 * lockout counts). */
void second_factor_keys_defaults(struct tunnel_config *tunnel);

/* Runs once SECTION's keys are all set into TUNNEL: with second_factor = pam, fills
 * pam_service, user_map and max_handshake_failures when they were not written;
 * otherwise reports each key that only means something with it (server mode).
 * Returns 0, or -1 after reporting a problem or setting ld->out_of_memory. */
int second_factor_keys_finish(struct config_loader *ld, const struct ini_section *section,
                              struct tunnel_config *tunnel);

#endif
