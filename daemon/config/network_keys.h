/* network_keys — internal to daemon/config/: `type` and the keys of a network
 * (layer-3) tunnel (address, push_routes, client_address, client_networks, mtu,
 * keepalive, mss_clamp on a hub; device, reconnect_max on a client), their setters,
 * defaults and the checks across keys and tunnels. */
#ifndef KTLSTUN_NETWORK_KEYS_H
#define KTLSTUN_NETWORK_KEYS_H

#include <stddef.h>

#include "config/config_loader.h"

/* Returns the key table (static) and its size in *COUNT. */
const struct config_tunnel_key *network_keys_list(size_t *count);

/* Sets the defaults of these keys in TUNNEL (type = stream, MTU, keepalive,
 * mss_clamp, reconnect_max). */
void network_keys_defaults(struct tunnel_config *tunnel);

/* Reads SECTION's type key into TUNNEL before the other keys, as it decides which of
 * them are allowed. Returns 0 (also when there is none: stream), or -1 after
 * reporting a value that is not a type. */
int network_keys_type(struct config_loader *ld, const struct ini_section *section,
                      struct tunnel_config *tunnel);

/* Returns 0 when KEY (any tunnel key but type) may be written in TUNNEL, whose type
 * is known; or reports why not (a network key on a stream tunnel, listen on a network
 * client, target on a network hub) and returns -1. */
int network_keys_allowed(struct config_loader *ld, const struct ini_section *section,
                         const struct ini_key *key, const struct tunnel_config *tunnel);

/* Returns 1 when NAME, a key every tunnel requires, is one TUNNEL has no use for
 * (listen on a network client, target on a network hub), else 0. */
int network_keys_not_needed(const struct tunnel_config *tunnel, const char *name);

/* Runs once SECTION's keys are all set into TUNNEL (type = network): the device's
 * default name, a hub's address, the MTU IPv6 needs. Returns 0, or -1 after
 * reporting a problem. */
int network_keys_finish(struct config_loader *ld, const struct ini_section *section,
                        struct tunnel_config *tunnel);

/* Reports what clashes between the network tunnels of ld->config: two clients with
 * one device, two hubs whose pools overlap. */
void network_keys_check_all(struct config_loader *ld);

/* Frees what these keys allocated in TUNNEL. */
void network_keys_free(struct tunnel_config *tunnel);

#endif
