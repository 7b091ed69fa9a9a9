/* listen_clash — internal to daemon/config/: refuses tunnels whose listen sockets
 * would share clients (the same address, or a wildcard and an address on one port)
 * or the same systemd socket. */
#ifndef KTLSTUN_LISTEN_CLASH_H
#define KTLSTUN_LISTEN_CLASH_H

#include "config/config_loader.h"

/* Resolves the listen address of every tunnel of ld->config whose listen key in
 * SOURCE was valid, and reports each one that clashes with an earlier tunnel's (or
 * cannot be resolved) at its listen line. */
void listen_clash_check(struct config_loader *ld, const struct ini_source *source);

#endif
