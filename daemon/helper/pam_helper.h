/* pam_helper — the privileged process that runs PAM for the workers.
 *
 * The supervisor forks it (as root, before the first worker) and gives every worker
 * a SOCK_SEQPACKET socketpair to it, created at the worker's spawn and handed over
 * with SCM_RIGHTS. The helper never blocks on PAM: each login runs in a short-lived
 * child (pam_transaction) that it relays prompts and answers for, and kills when a
 * module hangs longer than pam_timeout. It is also the one owner of the lockout
 * table (state_dir/lockout.state), the only writer of the shared grants table, the
 * sender of alerts, and the server of the admin socket runtime_dir/second-factor.sock
 * `ktlstun unlock` talks to. It reads the configuration itself (at start and on the
 * supervisor's reload signal): nothing a worker sends can choose a PAM service,
 * confdir or alert command. */
#ifndef KTLSTUN_PAM_HELPER_H
#define KTLSTUN_PAM_HELPER_H

#include <sys/types.h>

#include "config/config.h"
#include "auth/grants.h"

struct pam_helper;

/* Parent: forks the helper for CONFIG (loaded from CONFIG_PATH), writing grants into
 * GRANTS. Returns the handle, or NULL after logging (the daemon then runs without
 * logins: gated tunnels refuse everyone). */
struct pam_helper *pam_helper_start(const char *config_path, const struct config *config,
                                    struct grants *grants);

/* Parent: makes a new worker's link. Returns the worker's end (non-blocking), or -1
 * when there is no helper (logged). */
int pam_helper_new_link(struct pam_helper *helper);

/* In a freshly forked worker: drops the parent's control channel to the helper. */
void pam_helper_close_in_child(struct pam_helper *helper);

/* Parent: tells the helper to read the configuration again (after a reload). */
void pam_helper_reload(struct pam_helper *helper);

/* Parent: PID exited with STATUS. Returns 1 when it was the helper, which is then
 * started again for CONFIG (workers' old links are dead: the caller replaces its
 * workers), unless it keeps dying or CONFIG is NULL (the daemon is stopping); 0 for
 * any other process. */
int pam_helper_reaped(struct pam_helper *helper, pid_t pid, int status,
                      const struct config *config);

/* Parent: returns 1 while a helper process runs. */
int pam_helper_running(const struct pam_helper *helper);

/* Parent: stops the helper (SIGTERM, then SIGKILL after a few seconds), waits for it
 * and frees HELPER (NULL is fine). */
void pam_helper_stop(struct pam_helper *helper);

#endif
