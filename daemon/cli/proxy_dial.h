/* proxy_dial — `ktlstun login`'s way through a client tunnel's HTTP proxy (proxy =
 * http://...): the CONNECT on the blocking socket the login uses, its reply read
 * bounded and judged as the daemon judges it (proto/http_connect.h). */
#ifndef KTLSTUN_PROXY_DIAL_H
#define KTLSTUN_PROXY_DIAL_H

#include <stddef.h>

#include "config/config.h"

/* Asks the proxy FD is connected to (TUNNEL's, blocking, with timeouts set) for a
 * tunnel to TUNNEL's target. Returns 0 once the proxy said yes (FD then carries the
 * TLS handshake), or -1 with the reason in REASON (LEN bytes). The request, which may
 * carry credentials, is wiped. */
int proxy_dial_connect(int fd, const struct tunnel_config *tunnel, char *reason, size_t len);

#endif
