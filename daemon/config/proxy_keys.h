/* proxy_keys — internal to daemon/config/: the keys of proxies on a tunnel's way,
 * proxy_protocol (a server tunnel's PROXY v2 header to its target) and proxy,
 * proxy_credentials (a client tunnel's HTTP CONNECT proxy), with their defaults,
 * the checks across them and the wiping of the credentials. */
#ifndef KTLSTUN_PROXY_KEYS_H
#define KTLSTUN_PROXY_KEYS_H

#include <stddef.h>

#include "config/config_loader.h"

/* Returns the key table (static) and its size in *COUNT. */
const struct config_tunnel_key *proxy_keys_list(size_t *count);

/* Sets the defaults of these keys in TUNNEL: no PROXY header, no proxy. */
void proxy_keys_defaults(struct tunnel_config *tunnel);

/* Runs once SECTION's keys are all set into TUNNEL: proxy_credentials needs proxy.
 * Returns 0, or -1 after reporting the problem. */
int proxy_keys_finish(struct config_loader *ld, const struct ini_section *section,
                      struct tunnel_config *tunnel);

/* Frees what these keys allocated in TUNNEL, the credentials wiped first. */
void proxy_keys_free(struct tunnel_config *tunnel);

#endif
