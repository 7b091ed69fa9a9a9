/* fleet_leases — the supervisor's side of network hubs' address leases through the
 * shared state store: one link to the PAM helper, which passes lease_msg to its store
 * process and back (proto/lease_msg.h). The link is made when first needed, and again
 * after the helper restarted; the first time, the store is told that this hub holds no
 * lease (RELEASE_ALL: whatever a previous run of this gateway held is gone). Nothing
 * here waits: a TAKE's answer comes later, read by fleet_leases_receive. */
#ifndef KTLSTUN_FLEET_LEASES_H
#define KTLSTUN_FLEET_LEASES_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "core/ip_prefix.h"
#include "proto/lease_msg.h"
#include "supervisor/helper_process.h"

struct fleet_leases;

/* Returns leases asked of HELPER's store process (the caller keeps HELPER alive longer),
 * or NULL when out of memory (logged). */
struct fleet_leases *fleet_leases_new(struct helper_process *helper);

/* Closes the link and frees FL. NULL is a no-op. */
void fleet_leases_free(struct fleet_leases *fl);

/* Asks for IDENTITY's addresses of TUNNEL, one from each of the COUNT POOLS (the hub's
 * address with the pool's length), never any of the RESERVE_COUNT addresses in RESERVE
 * (at most LEASE_MSG_RESERVE_MAX). Returns the request's id (never 0), which its answer
 * carries, or 0 with the reason in ERR (ERRLEN bytes). */
uint32_t fleet_leases_take(struct fleet_leases *fl, const char *tunnel, const char *identity,
                           const struct ip_prefix *pools, size_t count,
                           const struct ip_prefix *reserve, size_t reserve_count, char *err,
                           size_t errlen);

/* Tells the store that this hub no longer holds IDENTITY's addresses of TUNNEL. */
void fleet_leases_release(struct fleet_leases *fl, const char *tunnel, const char *identity);

/* Writes the link's pollfd into FDS (room for one). Returns 1, or 0 without a link. */
size_t fleet_leases_poll_fd(const struct fleet_leases *fl, struct pollfd *fds);

/* Reads one answer into OUT. Returns 1 with one, 0 when none is waiting, -1 when the
 * link broke (the helper is gone: no answer to an earlier request will come). */
int fleet_leases_receive(struct fleet_leases *fl, struct lease_msg *out);

#endif
