/* helper_process — the supervisor's handle to the PAM helper process (helper_main):
 * starting it, handing each new worker a link to it, telling it to reload, and
 * starting it again when it dies. */
#ifndef KTLSTUN_HELPER_PROCESS_H
#define KTLSTUN_HELPER_PROCESS_H

#include <sys/types.h>

#include "proto/grants.h"
#include "config/config.h"

struct helper_process;

/* Forks the helper for CONFIG (loaded from CONFIG_PATH), writing grants into GRANTS.
 * Returns the handle, or NULL after logging (the daemon then runs without logins:
 * gated tunnels refuse everyone). */
struct helper_process *helper_process_start(const char *config_path, const struct config *config,
                                            struct grants *grants);

/* Makes a new worker's link. Returns the worker's end (non-blocking), or -1 when
 * there is no helper (logged). */
int helper_process_new_link(struct helper_process *helper);

/* Makes the supervisor's link for network hubs' address leases, which the helper
 * passes to its store process (proto/lease_msg.h). Returns the supervisor's end
 * (non-blocking), or -1 when there is no helper (logged). */
int helper_process_new_lease_link(struct helper_process *helper);

/* In a freshly forked worker: drops the parent's control channel to the helper. */
void helper_process_close_in_child(struct helper_process *helper);

/* Tells the helper to read the configuration again (after a reload). */
void helper_process_reload(struct helper_process *helper);

/* PID exited with STATUS. Returns 1 when it was the helper, which is then started
 * again for CONFIG (workers' old links are dead: the caller replaces its workers),
 * unless it keeps dying or CONFIG is NULL (the daemon is stopping); 0 for any other
 * process. */
int helper_process_reaped(struct helper_process *helper, pid_t pid, int status,
                          const struct config *config);

/* Returns 1 while a helper process runs. */
int helper_process_running(const struct helper_process *helper);

/* Stops the helper (SIGTERM, then SIGKILL after a few seconds), waits for it and
 * frees HELPER (NULL is fine). */
void helper_process_stop(struct helper_process *helper);

#endif
