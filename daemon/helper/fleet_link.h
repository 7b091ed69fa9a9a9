/* fleet_link — the PAM helper's end of the shared state store: it starts the store
 * process (store/store_process.h) when [global] state_store is a connection string,
 * publishes this gateway's grants and withdrawals through it, and applies what the
 * other gateways published: their grants and withdrawals go into this gateway's
 * grants table (which the workers read, so a data connection's check stays in
 * memory), their disconnects go to every worker.
 *
 * While the store is unreachable no login is granted (fleet_link_up): a grant that
 * the other gateways cannot learn, or a lock they cannot see, must not be made. Grants
 * already in the table keep working until they end. */
#ifndef KTLSTUN_FLEET_LINK_H
#define KTLSTUN_FLEET_LINK_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "config/config.h"
#include "helper/alert.h"
#include "proto/grants.h"
#include "proto/lease_msg.h"
#include "store/store_events.h"

struct fleet_link;

/* Called in the store process right after the fork, to close what it must not hold
 * (the helper's sockets). */
typedef void fleet_link_close_fn(void *arg);

/* Called for each disconnect another gateway published: KEY as `ktlstun disconnect`
 * takes it. */
typedef void fleet_link_disconnect_fn(void *arg, const char *key);

/* Called after an administrator's revoke from another gateway was applied to the
 * grants table, so that the workers check their live connections at once. */
typedef void fleet_link_revoked_fn(void *arg);

/* Called for each change of the lock table another gateway published (a failure, a
 * success, an unlock; at the store process's first connection, this gateway's own
 * history too), and with EVENT NULL when the lock table must be emptied before that
 * history. */
typedef void fleet_link_lock_fn(void *arg, const struct store_event *event);

/* Called with the alert of a lock this gateway made, once the store says no other
 * gateway raised it (see fleet_link_claim_alert). */
typedef void fleet_link_alert_fn(void *arg, const struct alert_event *event);

/* Called with the store's answer to a network hub's lease request (a RESULT), for the
 * supervisor. */
typedef void fleet_link_lease_fn(void *arg, const struct lease_msg *result);

/* What the link calls back, all with ARG. */
struct fleet_link_hooks {
    fleet_link_close_fn *close_inherited;
    fleet_link_disconnect_fn *disconnect;
    fleet_link_revoked_fn *revoked;
    fleet_link_lock_fn *lock_event;
    fleet_link_alert_fn *alert;
    fleet_link_lease_fn *lease_result;
    void *arg;
};

/* Returns a link for CONFIG writing into GRANTS and calling HOOKS, with its store
 * process started, or NULL when CONFIG keeps its state in files (or out of memory,
 * logged). */
struct fleet_link *fleet_link_start(const struct config *config, struct grants *grants,
                                    const struct fleet_link_hooks *hooks);

/* Stops the store process and frees FLEET (NULL is fine). */
void fleet_link_free(struct fleet_link *fleet);

/* After a reload to CONFIG: a changed connection string or gateway name restarts the
 * store process with them. */
void fleet_link_configure(struct fleet_link *fleet, const struct config *config);

/* Returns 1 when logins may be granted: FLEET is NULL (state in files) or its store is
 * reachable. Else 0, with the reason in WHY (WHYLEN bytes). */
int fleet_link_up(const struct fleet_link *fleet, char *why, size_t whylen);

/* Returns 1 while the store process replays the lock table's history (at its first
 * connection): the locks it rebuilds withdrew their grants when they were made (the
 * store's grants, loaded just before, no longer hold those), so a replayed lock must
 * not withdraw a grant made after it was lifted. */
int fleet_link_replaying(const struct fleet_link *fleet);

/* Fills FDS (ROOM entries, at most 1) with the socket to the store process. Returns
 * how many. */
size_t fleet_link_poll_fds(const struct fleet_link *fleet, struct pollfd *fds, size_t room);

/* The store process's socket is readable: applies what it sent. */
void fleet_link_ready(struct fleet_link *fleet);

/* PID was reaped with STATUS: when it was the store process, logs it and starts
 * another (at most one a second, see fleet_link_expire). Returns 1 when it was. */
int fleet_link_reaped(struct fleet_link *fleet, pid_t pid, int status);

/* Starts the store process again when it died and its delay passed at NOW_MS. */
void fleet_link_expire(struct fleet_link *fleet, uint64_t now_ms);

/* Returns the earlier of SOONEST and the next restart of the store process. */
uint64_t fleet_link_next_deadline(const struct fleet_link *fleet, uint64_t soonest);

/* Publishes a grant this gateway made: SHA256 may use TUNNEL until EXPIRES_AT (seconds
 * since the epoch), as IDENTITY mapped to USER, from SOURCE. */
void fleet_link_publish_grant(struct fleet_link *fleet, const char *tunnel, const char *sha256,
                              const char *identity, const char *user, const char *source,
                              int64_t expires_at);

/* Publishes that IDENTITY's grants on TUNNEL (every tunnel when NULL) were withdrawn. */
void fleet_link_publish_revoke(struct fleet_link *fleet, const char *tunnel,
                               const char *identity);

/* Publishes a wrong code of IDENTITY as USER from SOURCE on TUNNEL, counted for the
 * keys COUNTED names (STORE_COUNTED_*), with TAG. */
void fleet_link_publish_failure(struct fleet_link *fleet, const char *tunnel,
                                const char *identity, const char *user, const char *source,
                                uint64_t tag, uint32_t counted);

/* Publishes a right code of IDENTITY as USER from SOURCE on TUNNEL. */
void fleet_link_publish_success(struct fleet_link *fleet, const char *tunnel,
                                const char *identity, const char *user, const char *source);

/* EVENT is the alert of a lock this gateway made (of an identity, a user or an
 * address): asks the store whether another gateway already raised the alert of that
 * lock (two gateways locking at once). Returns 1 when the answer will come (the alert
 * hook raises it then, or nothing happens); 0 when the caller must raise it now (no
 * store, or its process is not running: two alerts are better than none). */
int fleet_link_claim_alert(struct fleet_link *fleet, const struct alert_event *event);

/* Hands a network hub's lease message (TAKE, RELEASE, RELEASE_ALL) to the store
 * process. Returns 0, or -1 when no store process runs (the caller answers a TAKE
 * itself: the store cannot be reached). */
int fleet_link_lease(struct fleet_link *fleet, const struct lease_msg *msg);

/* An administrator's revoke (`ktlstun revoke`): withdraws from GRANTS the grants of
 * KEY (the name a grant carries, or a certificate's SHA-256 fingerprint) on TUNNEL
 * (every tunnel when NULL), marked as revoked so that the live tunnels they end say
 * so, and publishes it to the other gateways (FLEET NULL: no store). Returns how many
 * grants were live here. */
unsigned fleet_link_revoke(struct fleet_link *fleet, struct grants *grants, const char *tunnel,
                           const char *key);

/* Publishes an administrator's unlock of KEY. */
void fleet_link_publish_unlock(struct fleet_link *fleet, const char *key);

#endif
