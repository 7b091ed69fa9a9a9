/* store_schema — the tables of the shared state store, created and migrated by
 * ktlstun itself. The version is a row of ktlstun_schema; each migration runs in one
 * transaction under an advisory lock, so gateways starting together migrate once.
 *
 * Version 1:
 *   ktlstun_gateway  name, pid, version, started_at, last_seen: who uses the store
 *   ktlstun_grant    tunnel, sha256, identity, username, source, expires_at, gateway:
 *                    the live second-factor grants, one per certificate and tunnel
 *   ktlstun_event    id (bigserial), at, gateway, kind (grant, revoke, disconnect),
 *                    tunnel, sha256, identity, username, source, expires_at: what each
 *                    gateway applies, in id order; written under an advisory lock so
 *                    ids commit in order, announced with NOTIFY ktlstun_event
 * Version 2:
 *   ktlstun_event    also kinds failure, success and unlock: the lock table's changes
 *                    (a wrong code of identity as username from source, counted for
 *                    the keys COUNTED names, with its TAG; a right code; an
 *                    administrator's unlock of identity)
 *   ktlstun_gateway  also instance: the gateway's own random id (state_dir/gateway.id),
 *                    so that two gateways given one name are told apart
 *   ktlstun_lock_alert  tunnel, kind, key, locked_until, gateway: who raised the alert
 *                    of the lock in force, so that a lock two gateways make at once
 *                    raises one alert
 * Version 3:
 *   ktlstun_lease    tunnel, address, identity, reserved, held_by (gateway names),
 *                    leased_at, released_at: the pool addresses of network hubs, one
 *                    row per address a client of some hub was given (reserved: a hub's
 *                    own or a fixed address, never leased) */
#ifndef KTLSTUN_STORE_SCHEMA_H
#define KTLSTUN_STORE_SCHEMA_H

#include <stddef.h>
#include <libpq-fe.h>

#define STORE_SCHEMA_VERSION 3
#define STORE_SCHEMA_CHANNEL "ktlstun_event"
/* The advisory lock key every writer of ktlstun_event takes (pg_advisory_xact_lock). */
#define STORE_SCHEMA_EVENT_LOCK "7465787401"
/* Held by a transaction that leases or releases network tunnel addresses. */
#define STORE_SCHEMA_LEASE_LOCK "7465787402"

/* Brings CONN's database to STORE_SCHEMA_VERSION. Sets *FROM to the version found (0:
 * none). Returns 0, or -1 with the reason in ERR (ERRLEN bytes), also when the
 * database's version is newer than this ktlstun knows (nothing is changed then). */
int store_schema_migrate(PGconn *conn, int *from, char *err, size_t errlen);

/* Returns the schema version of CONN's database (0: no ktlstun tables yet), or -1 with
 * the reason in ERR. */
int store_schema_version(PGconn *conn, char *err, size_t errlen);

#endif
