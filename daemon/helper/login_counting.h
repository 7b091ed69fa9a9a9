/* login_counting — what one second-factor login counts, from its start to its outcome,
 * against three keys of its tunnel in the lock table (lock_policy): the certificate
 * identity, the local user it maps to, and the source address.
 *
 *   - at the start a locked key refuses the login before PAM; otherwise the identity
 *     and the user each get a reserved failure (saved at once), and the address a
 *     serial that marks when the attempt began. When a reservation cannot be recorded
 *     (the lock table has no room for one more identity or user) the login is refused
 *     and the refusal logged: counting never fails open;
 *   - a wrong code (or a hung module, or an attempt abandoned after an answer) settles
 *     the reservations as failures. The identity locks at max_failures; the user and
 *     the address only when failures of two identities or more are among theirs. A
 *     lock withdraws the identity's grants and raises one alert, however many keys it
 *     locked at once;
 *   - a right code is granted only when no key became locked while the attempt ran;
 *     its success clears what was counted before the attempt began and nothing a
 *     concurrent failure imposed;
 *   - anything else (no answer given, no enrolment, PAM's own failure, a right code the
 *     account check refused) releases the reservations: no guess was made.
 * Refused handshakes a worker reports are counted here too (max_handshake_failures). */
#ifndef KTLSTUN_LOGIN_COUNTING_H
#define KTLSTUN_LOGIN_COUNTING_H

#include <stdint.h>

#include "config/config.h"
#include "core/limits.h"
#include "helper/alert_commands.h"
#include "helper/fleet_link.h"
#include "helper/lock_table.h"
#include "proto/auth_protocol.h"
#include "proto/grants.h"

/* One attempt's keys and what it holds in the lock table. */
struct login_counting_attempt {
    char identity[LIMIT_IDENTITY + 1];
    char user[LIMIT_USER_NAME + 1];
    char source[LIMIT_SOURCE_ADDRESS + 1];
    uint64_t identity_serial;   /* reservations (lock_policy serials), 0: none */
    uint64_t user_serial;
    uint64_t source_serial;     /* when the attempt began, for the address */
};

/* What to tell the worker. */
struct login_counting_reply {
    enum auth_result result;
    int64_t value;              /* lock end (LOCKED), else 0 */
    unsigned failures;          /* failed attempts left before a lock (DENIED, TIMEOUT) */
    char text[200];
};

struct login_counting;

/* Returns a counter over LOCKS that withdraws grants from GRANTS and runs alert commands
 * through ALERTS (all three outlive it), or NULL when out of memory. */
struct login_counting *login_counting_create(struct lock_table *locks, struct grants *grants,
                                             struct alert_commands *alerts);

/* COUNTING publishes the grants a lock withdraws through FLEET (which outlives it;
 * NULL: state in files). */
void login_counting_use_fleet(struct login_counting *counting, struct fleet_link *fleet);

/* Applies another gateway's failure or success (EVENT, from the shared state store) to
 * the lock table as CONFIG's tunnel of that name counts: locks it makes withdraw
 * grants here, but raise no alert (the other gateway raised it). Events of tunnels
 * CONFIG does not have are left out. */
void login_counting_apply_remote(struct login_counting *counting, const struct config *config,
                                 const struct store_event *event);

/* Frees COUNTING (NULL is fine). */
void login_counting_free(struct login_counting *counting);

/* ATTEMPT (its names filled, serials 0) starts on tunnel T of CONFIG. Returns 0 with
 * the reservations in ATTEMPT, or -1 with the refusal in *REPLY (logged). */
int login_counting_start(struct login_counting *counting, const struct config *config,
                         const struct tunnel_config *t, struct login_counting_attempt *attempt,
                         struct login_counting_reply *reply);

/* ATTEMPT ended in a wrong code (OUTCOME: DENIED, or TIMEOUT for a hung module; REASON
 * PAM's words). HASH (LOCK_POLICY_HASH_LEN bytes, salted) identifies its answers, or is
 * NULL when none were given. Settles, logs, alerts, saves; fills *REPLY. */
void login_counting_failure(struct login_counting *counting, const struct config *config,
                            const struct tunnel_config *t, struct login_counting_attempt *attempt,
                            enum auth_result outcome, const char *reason,
                            const unsigned char *hash, struct login_counting_reply *reply);

/* ATTEMPT gave the right code. Returns 0 when it may be granted (its success counted),
 * or -1 when one of its keys was locked while it ran (refusal in *REPLY, logged). */
int login_counting_success(struct login_counting *counting, const struct config *config,
                           const struct tunnel_config *t, struct login_counting_attempt *attempt,
                           struct login_counting_reply *reply);

/* ATTEMPT (on the tunnel named TUNNEL) ended without a guess: releases its
 * reservations. */
void login_counting_release(struct login_counting *counting, const struct config *config,
                            const char *tunnel, struct login_counting_attempt *attempt);

/* SOURCE had a handshake refused on tunnel T: counted against max_handshake_failures,
 * with one alert when that many came in the window. */
void login_counting_handshake_failure(struct login_counting *counting,
                                      const struct config *config,
                                      const struct tunnel_config *t, const char *source);

#endif
