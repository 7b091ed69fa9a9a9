/* state_store_keys — internal to daemon/config/: the [global] keys of the shared state
 * store (state_store, gateway_name), which let several gateways share second-factor
 * grants and operator actions through PostgreSQL. */
#ifndef KTLSTUN_STATE_STORE_KEYS_H
#define KTLSTUN_STATE_STORE_KEYS_H

#include "config/config_loader.h"

/* state_store = file | a libpq connection string. A connection string must parse
 * (libpq's own parser), must not hold a password (use passfile=), and every TCP host
 * must be reached with verified TLS (sslmode=verify-full or verify-ca). Returns 0, or
 * -1 after config_loader_error(). */
int state_store_keys_set_store(struct config_loader *ld, const struct ini_section *section,
                               const struct ini_key *key, struct global_config *global);

/* gateway_name = NAME: this daemon's name among the gateways of one store (default:
 * the host name). Returns 0, or -1 after config_loader_error(). */
int state_store_keys_set_gateway_name(struct config_loader *ld, const struct ini_section *section,
                                      const struct ini_key *key, struct global_config *global);

/* Fills in gateway_name from the host name when a store is set and the name is not.
 * Returns 0, or -1 when the host name cannot be read (ld->out_of_memory on ENOMEM). */
int state_store_keys_finish(struct config_loader *ld, struct global_config *global);

#endif
