/* tunnel_keys — internal to daemon/config/: the keys of a tunnel section (mode,
 * listen, target, cert, key, ca, crl, allow_*, pin_sha256, server_name, TLS versions
 * and ciphers, ktls, timeouts, max_connections), their setters and defaults. The
 * second factor's keys are in second_factor_keys.h. */
#ifndef KTLSTUN_TUNNEL_KEYS_H
#define KTLSTUN_TUNNEL_KEYS_H

#include <stddef.h>

#include "config/config_loader.h"

/* Returns the key table (static, in the order keys are reported missing) and its size
 * in *COUNT. */
const struct config_tunnel_key *tunnel_keys_list(size_t *count);

/* Sets the defaults of these keys in TUNNEL (mode = server, TLS 1.2, ktls = auto,
 * timeouts, max_connections). */
void tunnel_keys_defaults(struct tunnel_config *tunnel);

#endif
