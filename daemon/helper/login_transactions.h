/* login_transactions — the PAM helper's logins: one per BEGIN a worker sends, each run
 * in a short-lived PAM child (pam_transaction) whose prompts go to the worker and whose
 * answers come back to it, until the child reports the outcome, dies, or misses its
 * deadline (pam_timeout inside PAM; the worker's answer timeout while a prompt is
 * out).
 *
 * One login at a time per certificate identity and per local user, whatever the
 * tunnel: a second one is refused ("another login for this identity is in progress").
 * A user with no second-factor enrolment (pam_enrolment, or PAM's "user unknown") is
 * refused plainly and nothing counted. Everything else is counted by login_counting:
 * reserved at the start, settled by the outcome; an attempt abandoned after an answer
 * reached PAM counts as failed. Refused handshakes a worker reports are counted there
 * too (max_handshake_failures).
 *
 * Answers are hashed (salted, in memory) only to count the same code once, and every
 * buffer that held one is wiped. */
#ifndef KTLSTUN_LOGIN_TRANSACTIONS_H
#define KTLSTUN_LOGIN_TRANSACTIONS_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "proto/grants.h"
#include "config/config.h"
#include "helper/alert_commands.h"
#include "helper/fleet_link.h"
#include "helper/lock_table.h"
#include "proto/helper_msg.h"

#define LOGIN_TRANSACTIONS_MAX 512

/* Sends MSG to the worker whose link is numbered LINK_NUMBER (gone: nothing). */
typedef void login_transactions_send_fn(void *arg, uint64_t link_number, struct helper_msg *msg);

struct login_transactions;

/* Returns an empty set of logins that counts into LOCKS, writes grants into GRANTS,
 * runs alert commands through ALERTS and reaches workers through SEND(SEND_ARG, ...);
 * all four outlive it. NULL when out of memory or randomness. */
struct login_transactions *login_transactions_create(struct lock_table *locks,
                                                     struct grants *grants,
                                                     struct alert_commands *alerts,
                                                     login_transactions_send_fn *send,
                                                     void *send_arg);

/* Ends every login (killing PAM children still at work) and frees LOGINS (NULL is
 * fine). */
void login_transactions_free(struct login_transactions *logins);

/* A worker on link LINK_NUMBER sent BEGIN (MSG) under CONFIG: starts the login, or
 * replies why not (no second factor here, another login of the identity or user
 * running, no enrolment, locked, failures that cannot be counted, busy, no PAM
 * child). */
void login_transactions_begin(struct login_transactions *logins, const struct config *config,
                              uint64_t link_number, const struct helper_msg *msg);

/* A worker sent ANSWER (MSG, wiped by the caller): passes it to the PAM child that
 * asked on that link, if one waits. */
void login_transactions_answer(struct login_transactions *logins, const struct config *config,
                               uint64_t link_number, struct helper_msg *msg);

/* A worker sent CANCEL for request ID: ends that login without a reply (counted as
 * failed when an answer had reached PAM, under CONFIG). */
void login_transactions_cancel(struct login_transactions *logins, const struct config *config,
                               uint64_t link_number, uint32_t id);

/* A worker refused a handshake (MSG: tunnel, source): counts it against the tunnel's
 * max_handshake_failures and raises an alert when that many came in the window. */
void login_transactions_handshake_failure(struct login_transactions *logins,
                                          const struct config *config,
                                          const struct helper_msg *msg);

/* Link LINK_NUMBER is gone: ends its logins without replies (as
 * login_transactions_cancel). */
void login_transactions_drop_link(struct login_transactions *logins, const struct config *config,
                                  uint64_t link_number);

/* Fills FDS (ROOM entries) with the PAM children's sockets to watch for input and KEYS
 * with what login_transactions_ready needs to find each again. Returns how many. */
size_t login_transactions_poll_fds(const struct login_transactions *logins, struct pollfd *fds,
                                   uint64_t *keys, size_t room);

/* The PAM child watched under KEY has something to say. */
void login_transactions_ready(struct login_transactions *logins, const struct config *config,
                              uint64_t key);

/* Ends the logins whose deadline passed at NOW_MS (event_loop_now_ms): "no answer came
 * in time" when a prompt was out, else a PAM timeout, which counts as a failure. */
void login_transactions_expire(struct login_transactions *logins, const struct config *config,
                               uint64_t now_ms);

/* PID was reaped: a PAM child with that pid needs no kill any more. */
void login_transactions_reaped(struct login_transactions *logins, pid_t pid);

/* Returns the earlier of SOONEST and the next login deadline. */
uint64_t login_transactions_next_deadline(const struct login_transactions *logins,
                                          uint64_t soonest);

/* Counts another gateway's failure or success (login_counting_apply_remote). */
void login_transactions_apply_remote(struct login_transactions *lt, const struct config *config,
                                     const struct store_event *event);

/* LT grants only while FLEET's store is reachable, and publishes its grants and
 * withdrawals through it (FLEET outlives LT; NULL: state in files). */
void login_transactions_use_fleet(struct login_transactions *lt, struct fleet_link *fleet);

#endif
