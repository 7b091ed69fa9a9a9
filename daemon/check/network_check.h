/* network_check — what `-t` verifies of network tunnels beyond their keys: each hub's
 * address plan (addrplan/address_plan.h), push routes that clash with the plan, and
 * the TUN device the host must offer. */
#ifndef KTLSTUN_NETWORK_CHECK_H
#define KTLSTUN_NETWORK_CHECK_H

#include "check/check_report.h"
#include "config/config.h"

/* Adds to REPORT an error for the first conflict in each network hub's address plan
 * (at the line of the entry that causes it), a warning for each push route that
 * overlaps the hub's pool or a network behind a client, and a warning when network
 * tunnels are configured but this host has no /dev/net/tun. */
void network_check_config(const struct config *config, struct check_report *report);

#endif
