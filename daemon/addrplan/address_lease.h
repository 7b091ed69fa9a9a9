/* address_lease — a hub's address plan: which tunnel address each client gets, and
 * which networks behind clients the hub routes to them.
 *
 * A pool is given per family as the hub's own address with the pool's length
 * ("10.8.0.1/24": the hub is 10.8.0.1, clients get 10.8.0.2..10.8.0.254). The hub
 * address and the pool's first and last address (network and broadcast) are never
 * leased. Fixed addresses are given by client identity (the certificate identity
 * string of core/identity.h, compared as given); one inside a pool is kept for its
 * client and never leased to another.
 *
 * A client takes one address per family the plan has for it (its fixed one, or one from
 * the pool). The same identity taking again gets the same addresses back while its
 * lease is held (a count: a connection still ending) or was released recently: the
 * last STICKY_MAX released leases stay reserved, the oldest going first, and are given
 * to another client only when the pool has no never-used address left. A pool whose
 * every address is held refuses. No address is ever given to two identities.
 *
 * Pure: no I/O, no clock; memory is the only resource. Errors are written into ERR
 * (ERRLEN bytes) in words a user can act on. */
#ifndef KTLSTUN_ADDRESS_LEASE_H
#define KTLSTUN_ADDRESS_LEASE_H

#include <stddef.h>

#include "core/ip_prefix.h"

#define ADDRESS_LEASE_FAMILIES 2          /* one address per family: IPv4, IPv6 */
#define ADDRESS_LEASE_MAX_NETWORKS 1024   /* networks behind clients, all clients */

struct address_lease;

/* The addresses one take gave: each a host prefix (/32 or /128), IPv4 first. */
struct address_lease_grant {
    size_t count;
    struct ip_prefix addresses[ADDRESS_LEASE_FAMILIES];
};

/* Makes an empty plan that keeps at most CAPACITY pool leases (held and recently
 * released, 1..1000000) and at most STICKY_MAX released ones (0..CAPACITY). Returns it
 * (free with address_lease_free), or NULL when out of memory or out of range. */
struct address_lease *address_lease_new(size_t capacity, size_t sticky_max);

/* Frees AL and everything it holds. NULL is a no-op. */
void address_lease_free(struct address_lease *al);

/* Adds the pool of HUB's family: HUB is the hub's address, its length the pool's
 * (at most /30 or /126, so that some address is left). Returns 0, or -1 with ERR (a
 * second pool of one family; a pool that overlaps a network or holds another's fixed
 * address the wrong way round). */
int address_lease_add_pool(struct address_lease *al, const struct ip_prefix *hub, char *err,
                           size_t errlen);

/* Gives IDENTITY (copied) the fixed address ADDR (its length is ignored) in ADDR's
 * family. Returns 0, or -1 with ERR: a second fixed address of one family, one already
 * fixed for another identity, a hub address, a pool's first or last address, or an
 * address inside a client's network. */
int address_lease_add_fixed(struct address_lease *al, const char *identity,
                            const struct ip_prefix *addr, char *err, size_t errlen);

/* Records NETWORK (no host bits) as behind IDENTITY (copied): the hub routes it to that
 * client. Returns 0, or -1 with ERR naming the conflict: host bits set, an overlap with
 * a pool or with another network (any client's), or a hub or fixed address inside. */
int address_lease_add_network(struct address_lease *al, const char *identity,
                              const struct ip_prefix *network, char *err, size_t errlen);

/* Copies the networks behind IDENTITY into OUT (MAX entries, in the order added).
 * Returns how many IDENTITY has (may exceed MAX: only MAX were copied). */
size_t address_lease_networks(const struct address_lease *al, const char *identity,
                              struct ip_prefix *out, size_t max);

/* Leases IDENTITY its addresses into *OUT and counts them held once more. Returns 0,
 * or -1 with ERR and nothing taken: the plan has no address for it, or a pool is full
 * (every address held). A caller that holds a connection of IDENTITY already gets the
 * same addresses: it ends the older connection before the newer one's routes go in. */
int address_lease_take(struct address_lease *al, const char *identity,
                       struct address_lease_grant *out, char *err, size_t errlen);

/* Copies into POOLS (ADDRESS_LEASE_FAMILIES entries) the pool of each family IDENTITY
 * takes its address from (it has no fixed one there): each as the hub's address with
 * the pool's length. Returns how many. */
size_t address_lease_pools_for(const struct address_lease *al, const char *identity,
                               struct ip_prefix *pools);

/* Returns 1 when ADDR may be IDENTITY's pool address: inside its family's pool (within
 * the range a pool leases from), not the hub's nor the pool's first or last, not
 * another identity's fixed address, not inside a client's network; else 0. */
int address_lease_may_lease(const struct address_lease *al, const char *identity,
                            const struct ip_prefix *addr);

/* Like address_lease_take, with the pool addresses chosen elsewhere (the shared state
 * store, for the fleet's hubs): GIVEN (COUNT entries) holds one address per pool
 * family IDENTITY takes from. A released lease of another identity on one of them is
 * dropped (the fleet gave the address away). Returns 0, or -1 with ERR and nothing
 * taken: a pool family without an address in GIVEN, an address address_lease_may_lease
 * refuses, one held here by another identity, IDENTITY holding another address here,
 * or no room. */
int address_lease_take_given(struct address_lease *al, const char *identity,
                             const struct ip_prefix *given, size_t count,
                             struct address_lease_grant *out, char *err, size_t errlen);

/* Counts IDENTITY's addresses held once less; once no longer held, pool addresses stay
 * reserved for it as recently released. Returns 0, or -1 when IDENTITY held none. */
int address_lease_release(struct address_lease *al, const char *identity);

/* Returns how many pool and fixed leases are held now (each identity and family once). */
size_t address_lease_held(const struct address_lease *al);

#endif
