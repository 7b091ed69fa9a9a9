/* store_events — the shared state store's event log (ktlstun_event) and grant table
 * (ktlstun_grant), read and written over one libpq connection.
 *
 * A gateway publishes what the others must apply: a grant (kept in ktlstun_grant
 * too), the withdrawal of an identity's grants, an operator's disconnect. Each event
 * is written in one transaction under an advisory lock, so event ids commit in
 * order and a reader that remembers the last id it applied misses none; the
 * transaction's NOTIFY on STORE_SCHEMA_CHANNEL wakes every listening gateway. */
#ifndef KTLSTUN_STORE_EVENTS_H
#define KTLSTUN_STORE_EVENTS_H

#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>

#include "core/limits.h"

enum store_event_kind {
    STORE_EVENT_GRANT = 1,     /* sha256 may use tunnel until expires_at */
    STORE_EVENT_REVOKE,        /* identity's grants end (on tunnel; on all when empty);
                                  with sha256, those of that certificate instead; tag
                                  STORE_REVOKE_BY_ADMIN: `ktlstun revoke` */
    STORE_EVENT_DISCONNECT,    /* end the live tunnels of identity (a CN, subject,
                                  fingerprint or address, as `ktlstun disconnect`) */
    STORE_EVENT_FAILURE,       /* a wrong code of identity as username from source on
                                  tunnel, counted for the keys COUNTED names, with TAG */
    STORE_EVENT_SUCCESS,       /* a right code of identity as username from source */
    STORE_EVENT_UNLOCK,        /* an administrator lifted the locks of identity (a key) */
};

/* Which keys of a failure were counted (STORE_EVENT_FAILURE's counted). */
#define STORE_COUNTED_IDENTITY 1u
#define STORE_COUNTED_USER 2u
#define STORE_COUNTED_SOURCE 4u

/* A revoke's tag when an administrator withdrew the grants (0: a lock did). */
#define STORE_REVOKE_BY_ADMIN 1u

struct store_event {
    int64_t id;                /* set by the store */
    int64_t at;                /* seconds since the epoch, set by the store */
    enum store_event_kind kind;
    char gateway[LIMIT_GATEWAY_NAME + 1];   /* who published it */
    char tunnel[LIMIT_TUNNEL_NAME + 1];
    char sha256[LIMIT_SHA256_HEX + 1];
    char identity[LIMIT_IDENTITY + 1];
    char username[LIMIT_USER_NAME + 1];
    char source[LIMIT_SOURCE_ADDRESS + 1];
    int64_t expires_at;        /* seconds since the epoch (grants), else 0 */
    uint64_t tag;              /* failures: lock_policy_tag of the identity; revokes:
                                  STORE_REVOKE_BY_ADMIN or 0 */
    uint32_t counted;          /* failures: STORE_COUNTED_* */
};

/* Fills EVENT (zeroed first) as an administrator's revoke of KEY's grants on TUNNEL
 * (NULL: every tunnel), published by GATEWAY. KEY is the name a grant carries (the
 * certificate's CN, or its subject when it has no CN) or a SHA-256 fingerprint (hex,
 * with or without colons), which then goes into sha256 and identity in lowercase. */
void store_events_admin_revoke(struct store_event *event, const char *gateway,
                               const char *tunnel, const char *key);

/* Returns "grant", "revoke", "disconnect", "failure", "success" or "unlock". */
const char *store_events_kind_name(enum store_event_kind kind);

/* Writes EVENT (id and at are the store's) and what it changes in ktlstun_grant, and
 * notifies every listener, in one transaction. Sets EVENT->id. Returns 0, or -1 with
 * the reason in ERR (ERRLEN bytes; nothing written). */
int store_events_publish(PGconn *conn, struct store_event *event, char *err, size_t errlen);

/* Reads up to CAP events after id AFTER, in id order, into OUT. Returns how many, or
 * -1 with the reason in ERR. */
int store_events_fetch(PGconn *conn, int64_t after, struct store_event *out, size_t cap,
                       char *err, size_t errlen);

/* Called once per live grant by store_events_snapshot; EVENT is a STORE_EVENT_GRANT. */
typedef void store_events_grant_fn(void *arg, const struct store_event *event);

/* In one consistent snapshot: calls EACH for every grant live now and sets *LAST_ID
 * to the newest event id, so that applying the events after *LAST_ID from then on
 * misses nothing. Returns the number of grants, or -1 with the reason in ERR. */
int store_events_snapshot(PGconn *conn, store_events_grant_fn *each, void *arg,
                          int64_t *last_id, char *err, size_t errlen);

/* Claims the alert of the lock of KEY (KIND: "identity", "user" or "source") on
 * TUNNEL, which ends at LOCKED_UNTIL, for GATEWAY, at NOW (seconds since the epoch).
 * Returns 1 when this gateway raises it (no other gateway claimed a lock of KEY in
 * force at NOW), 0 when another one did, -1 with the reason in ERR. */
int store_events_claim_alert(PGconn *conn, const char *gateway, const char *tunnel,
                             const char *kind, const char *key, int64_t locked_until,
                             int64_t now, char *err, size_t errlen);

/* Deletes events older than MAX_AGE seconds and grants that expired. Returns 0, or -1
 * with the reason in ERR. */
int store_events_prune(PGconn *conn, int64_t max_age, char *err, size_t errlen);

#endif
