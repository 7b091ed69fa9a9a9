/* fleet_leases — the supervisor's side of network hubs' address leases through the
 * shared state store: one link to the PAM helper, which passes lease_msg to its store
 * process and back (proto/lease_msg.h), and the hub device requests waiting for an
 * answer. The link is made when first needed, and again after the helper restarted;
 * the first time, the store is told that this hub holds no lease (RELEASE_ALL:
 * whatever a previous run of this gateway held is gone). Nothing here waits: answers
 * are read by fleet_leases_receive when the link is readable. */
#ifndef KTLSTUN_FLEET_LEASES_H
#define KTLSTUN_FLEET_LEASES_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/ip_prefix.h"
#include "proto/lease_msg.h"
#include "supervisor/helper_process.h"

struct fleet_leases;

/* A worker's hub device request waiting for the store's addresses. */
struct fleet_request {
    pid_t pid;                     /* the worker and its request */
    uint32_t id;
    unsigned generation;
    char tunnel[LIMIT_TUNNEL_NAME + 1];
    char identity[LEASE_MSG_IDENTITY_MAX + 1];
    unsigned attempts;             /* TAKEs sent for it */
    size_t reserve_count;          /* addresses never to lease: the hubs', and any the */
    struct ip_prefix reserve[LEASE_MSG_RESERVE_MAX];   /* plan refused from an answer */
};

/* Returns leases asked of HELPER's store process (the caller keeps HELPER alive longer),
 * or NULL when out of memory (logged). */
struct fleet_leases *fleet_leases_new(struct helper_process *helper);

/* Makes the link now (a gateway that starts tells the store at once that it holds no
 * lease), when there is none. Returns 0, or -1 when there is no helper (logged). */
int fleet_leases_open(struct fleet_leases *fl);

/* Closes the link and frees FL with the requests still waiting. NULL is a no-op. */
void fleet_leases_free(struct fleet_leases *fl);

/* Asks for REQ's addresses (REQ is copied and counted one attempt more), one from each
 * of the COUNT POOLS (the hub's address with the pool's length), never one of REQ's
 * reserve. Returns 0: the answer comes through fleet_leases_receive; or -1 with the
 * reason in ERR (ERRLEN bytes). */
int fleet_leases_take(struct fleet_leases *fl, const struct fleet_request *req,
                      const struct ip_prefix *pools, size_t count, char *err, size_t errlen);

/* Tells the store that this hub no longer holds IDENTITY's addresses of TUNNEL. */
void fleet_leases_release(struct fleet_leases *fl, const char *tunnel, const char *identity);

/* Writes the link's pollfd into FDS (room for one). Returns 1, or 0 without a link. */
size_t fleet_leases_poll_fd(const struct fleet_leases *fl, struct pollfd *fds);

/* Takes one answered request into REQ with its answer in ANSWER. Returns 1 with one,
 * 0 when none is there yet. When the link broke, every request still waiting comes
 * out this way with LEASE_RESULT_UNAVAILABLE and the reason. */
int fleet_leases_receive(struct fleet_leases *fl, struct fleet_request *req,
                         struct lease_msg *answer);

#endif
