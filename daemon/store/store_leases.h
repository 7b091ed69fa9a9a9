/* store_leases — network hubs' pool addresses in the shared state store (ktlstun_lease),
 * so that the hubs of a fleet never give one address to two clients.
 *
 * A client identity keeps its address (one per pool) across hubs and reconnections:
 * the row stays its own after the last hub holding it released it, and goes to
 * another identity only when the pool has no never-used address left, the one released
 * longest ago first. A row held only by gateways not seen for LEASE_STALE_SECONDS is
 * released (their clients are gone with them). Every change runs in one transaction
 * under STORE_SCHEMA_LEASE_LOCK, so two hubs leasing at once are served in turn. */
#ifndef KTLSTUN_STORE_LEASES_H
#define KTLSTUN_STORE_LEASES_H

#include <stddef.h>
#include <libpq-fe.h>

#include "proto/lease_msg.h"

/* Leases REQ->identity (a LEASE_MSG_TAKE) an address from each of REQ's pools for
 * GATEWAY, after marking REQ's reserve addresses as never leased. Fills REPLY (a
 * LEASE_MSG_RESULT with REQ's id): LEASE_RESULT_OK with the addresses in the pools'
 * order, or LEASE_RESULT_REFUSED with the reason (a pool has no address left; nothing
 * taken). Returns 0, or -1 with libpq's reason in ERR (ERRLEN bytes; nothing taken). */
int store_leases_take(PGconn *conn, const char *gateway, const struct lease_msg *req,
                      struct lease_msg *reply, char *err, size_t errlen);

/* GATEWAY no longer holds the addresses of IDENTITY in TUNNEL, or any address when
 * TUNNEL is NULL. Returns 0, or -1 with libpq's reason in ERR. */
int store_leases_release(PGconn *conn, const char *gateway, const char *tunnel,
                         const char *identity, char *err, size_t errlen);

#endif
