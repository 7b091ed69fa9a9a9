/* address_plan — a network hub's address plan built from its tunnel's configuration. */
#include "addrplan/address_plan.h"

#include <stdio.h>

/* Pool leases a hub keeps (held and recently released) and released ones kept for
 * their client: far beyond a /16 pool's use, small next to the memory they cost. */
#define ADDRESS_PLAN_CAPACITY 65536
#define ADDRESS_PLAN_STICKY 256

/* Writes "FILE:LINE: [tunnel] KEY: REASON" into ERR. */
static void locate(const struct tunnel_config *tunnel, int line, const char *key,
                   const char *reason, char *err, size_t errlen)
{
    snprintf(err, errlen, "%s:%d: [%s] %s: %s", tunnel->source ? tunnel->source : "-", line,
             tunnel->name, key, reason);
}

struct address_lease *address_plan_build(const struct tunnel_config *tunnel, char *err,
                                         size_t errlen)
{
    const struct network_config *net = &tunnel->network;
    char reason[256];
    struct address_lease *al = address_lease_new(ADDRESS_PLAN_CAPACITY, ADDRESS_PLAN_STICKY);
    if (al == NULL) {
        locate(tunnel, tunnel->line, "address", "out of memory for the address plan", err,
               errlen);
        goto fail;
    }
    for (size_t i = 0; i < net->hub_address_count; i++) {
        if (address_lease_add_pool(al, &net->hub_addresses[i], reason, sizeof(reason)) != 0) {
            locate(tunnel, config_key_line(tunnel, "address"), "address", reason, err,
                   errlen);
            goto fail;
        }
    }
    for (size_t i = 0; i < net->client_network_count; i++) {
        const struct network_client_entry *e = &net->client_networks[i];
        if (address_lease_add_network(al, e->identity, &e->prefix, reason,
                                      sizeof(reason)) != 0) {
            locate(tunnel, e->line, "client_networks", reason, err, errlen);
            goto fail;
        }
    }
    for (size_t i = 0; i < net->fixed_count; i++) {
        const struct network_client_entry *e = &net->fixed[i];
        if (address_lease_add_fixed(al, e->identity, &e->prefix, reason, sizeof(reason)) != 0) {
            locate(tunnel, e->line, "client_address", reason, err, errlen);
            goto fail;
        }
    }
    return al;
fail:
    address_lease_free(al);
    return NULL;
}
