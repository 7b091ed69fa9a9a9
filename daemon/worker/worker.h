/* worker — one event-loop process: accepts on every tunnel's listener, runs the
 * connections, drains on request.
 *
 * Signals: SIGQUIT = stop accepting and let connections end on their own (a reload
 * replaced this worker); SIGTERM = stop accepting, close what is left after
 * shutdown_timeout (the daemon is stopping). After a reload, the parent sends the new
 * configuration's access rules on the rules link (access_recheck): connections they
 * no longer admit end at once. */
#ifndef KTLSTUN_WORKER_H
#define KTLSTUN_WORKER_H

#include "worker/conn_limit.h"
#include "supervisor/generation.h"
#include "worker/heartbeat.h"
#include "worker/stats.h"

/* What every worker shares with the parent. */
struct worker_shared {
    struct conn_limit *limits;
    struct heartbeat *heartbeat;
    struct stats *stats;
    int ready_fd;      /* pipe: a worker writes its slot number once it serves */
    int helper_link;   /* this worker's own link to the PAM helper (set per spawn), or -1 */
    int rules_link;    /* its end of its rules link with the parent (set per spawn), or -1 */
    int tun_link;      /* its end of its network-device link with the parent (worker/tun_link.h;
                          set per spawn), or -1 */
    int dialer;        /* this worker runs its generation's network client tunnels (one
                          worker per generation; set per spawn) */
};

/* Runs the worker for GEN in this (freshly forked) process until it is done, dropping
 * privileges first. Returns the process exit status. */
int worker_run(struct generation *gen, const struct worker_shared *shared, int worker_slot);

#endif
