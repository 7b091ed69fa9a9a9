/* helper_main — the privileged process that runs PAM for the workers ("ktlstund-pam").
 *
 * The supervisor forks it (as root, before the first worker; helper_process) and gives
 * every worker a SOCK_SEQPACKET socketpair to it, created at the worker's spawn and
 * handed over the control channel with SCM_RIGHTS. The helper never blocks on PAM:
 * each login runs in a short-lived child (login_transactions, pam_transaction) that it
 * relays prompts and answers for, and kills when a module hangs longer than
 * pam_timeout. It is also the one owner of the lock table (lock_table,
 * state_dir/lockout.state), the only writer of the shared grants table, the sender of
 * alerts (alert, alert_commands), and the server of the admin socket
 * runtime_dir/second-factor.sock `ktlstun unlock` talks to (admin_socket). It reads
 * the configuration itself (at start and on the supervisor's SIGHUP): nothing a
 * worker sends can choose a PAM service, confdir or alert command. */
#ifndef KTLSTUN_HELPER_MAIN_H
#define KTLSTUN_HELPER_MAIN_H

#include "proto/grants.h"
#include "config/config.h"

/* Runs the helper in a freshly forked child until SIGTERM (or the parent's end of
 * CONTROL_FD closes). Worker links arrive on CONTROL_FD; CONFIG (loaded from
 * CONFIG_PATH; NULL when it did not load) becomes the helper's own and is freed by it;
 * grants go into GRANTS (shared memory the parent owns). Returns the exit status. */
int helper_main_run(int control_fd, const char *config_path, const struct config *config,
                    struct grants *grants);

#endif
