/* address_plan — a network hub's address plan (addrplan/address_lease.h) built from
 * its tunnel's configuration: the pools of `address`, the fixed addresses of
 * `client_address` and the networks of `client_networks`. */
#ifndef KTLSTUN_ADDRESS_PLAN_H
#define KTLSTUN_ADDRESS_PLAN_H

#include <stddef.h>

#include "addrplan/address_lease.h"
#include "config/config.h"

/* Builds the plan of TUNNEL (a network hub). Returns it (free with address_lease_free),
 * or NULL with ERR (ERRLEN bytes): "FILE:LINE: [tunnel] key: reason" for the first
 * entry that conflicts (an overlap, an address fixed twice, a hub address), or the
 * memory that was short. */
struct address_lease *address_plan_build(const struct tunnel_config *tunnel, char *err,
                                         size_t errlen);

#endif
