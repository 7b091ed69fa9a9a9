/* lease_msg — the fixed-size message by which a network hub leases its clients' pool
 * addresses from the shared state store, so that no two clients of the fleet's hubs get
 * one address. It goes supervisor → PAM helper → store process and back: the helper
 * forwards it without reading it (inside a store_msg towards the store process).
 *
 *   TAKE         (id, tunnel, identity, count pools: each the hub's address with the
 *                pool's length, one per family; reserve_count addresses never to lease:
 *                the hub's own, and any the supervisor found it may not lease)
 *   RESULT       (id, result, count addresses: one host address per pool of the TAKE,
 *                in its order; text: the reason when not LEASE_RESULT_OK)
 *   RELEASE      (tunnel, identity): the last connection of IDENTITY on this hub ended
 *   RELEASE_ALL  (): this hub holds no lease (it started)
 *
 * Strings are NUL-terminated inside their arrays; a receiver drops the peer on anything
 * else. */
#ifndef KTLSTUN_LEASE_MSG_H
#define KTLSTUN_LEASE_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "core/ip_prefix.h"
#include "core/limits.h"

#define LEASE_MSG_FAMILIES 2
#define LEASE_MSG_RESERVE_MAX 4
#define LEASE_MSG_IDENTITY_MAX 64    /* a CN, as a hub's device request carries it */

enum lease_msg_type {
    LEASE_MSG_TAKE = 1,
    LEASE_MSG_RESULT = 2,
    LEASE_MSG_RELEASE = 3,
    LEASE_MSG_RELEASE_ALL = 4,
};

enum lease_result {
    LEASE_RESULT_OK = 0,
    LEASE_RESULT_REFUSED = 1,        /* the pool is full across the fleet */
    LEASE_RESULT_UNAVAILABLE = 2,    /* the store cannot be reached or refused */
};

struct lease_msg {
    uint32_t type;
    uint32_t id;
    uint32_t result;
    uint32_t count;
    uint32_t reserve_count;
    char tunnel[LIMIT_TUNNEL_NAME + 1];
    char identity[LEASE_MSG_IDENTITY_MAX + 1];
    struct ip_prefix addresses[LEASE_MSG_FAMILIES];
    struct ip_prefix reserve[LEASE_MSG_RESERVE_MAX];
    char text[256];
};

/* Returns 1 when MSG (LEN bytes, as received) is well-formed: its size, a known type
 * and result, strings terminated, counts in range, every address of a known family and
 * length, the fields its type needs present; else 0. */
int lease_msg_valid(const struct lease_msg *msg, size_t len);

/* Sends MSG on FD whole (never blocking when FD is non-blocking). Returns 0, or -1
 * with errno set. */
int lease_msg_send(int fd, const struct lease_msg *msg);

/* Receives one message from FD into MSG. Returns 1 for a valid message, 0 at end of
 * stream, -1 with errno (EAGAIN: nothing yet; EBADMSG: malformed). */
int lease_msg_recv(int fd, struct lease_msg *msg);

#endif
