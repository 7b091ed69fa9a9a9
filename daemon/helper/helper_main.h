/* helper_main — the process that runs PAM for the workers ("ktlstund-pam").
 *
 * helper_spawner starts it as the helper's own user (pam_user), a child of the
 * supervisor, which gives every worker a SOCK_SEQPACKET socketpair to it, created at
 * the worker's spawn and handed over the control channel with SCM_RIGHTS. The helper
 * never blocks on PAM: each login runs in a short-lived child (login_transactions,
 * pam_transaction) that it relays prompts and answers for, and kills when a module
 * hangs longer than pam_timeout. It is also the one owner of the lock table
 * (lock_table, state_dir/lockout.state), the only writer of the shared grants table,
 * the sender of alerts (alert, alert_commands), and the server of the admin socket
 * runtime_dir/second-factor.sock `ktlstun unlock` talks to (admin_socket). It reads
 * the configuration itself (at start, and when the supervisor sends
 * HELPER_MAIN_RELOAD or SIGHUP): nothing a worker sends can choose a PAM service,
 * confdir or alert command. */
#ifndef KTLSTUN_HELPER_MAIN_H
#define KTLSTUN_HELPER_MAIN_H

#include "proto/grants.h"
#include "config/config.h"

/* The one byte the supervisor sends on the control channel, without a descriptor, to
 * make the helper read its configuration again; a worker link comes with one. */
#define HELPER_MAIN_RELOAD 'R'
/* The byte that comes with the supervisor's own link for network hubs' address leases
 * (proto/lease_msg.h), which the helper passes to the store process and back; any
 * other byte with a descriptor is a worker link. */
#define HELPER_MAIN_LEASE_LINK 'A'

/* Runs the helper in a freshly started child until SIGTERM (or the parent's end of
 * CONTROL_FD closes). Worker links and reload requests arrive on CONTROL_FD; CONFIG
 * (loaded from CONFIG_PATH; NULL when it did not load) becomes the helper's own and is
 * freed by it; grants go into GRANTS (shared memory the parent owns); ADMIN_FD, when
 * not -1, is the listening admin socket (admin_socket_bind), closed at exit. Returns
 * the exit status. */
int helper_main_run(int control_fd, const char *config_path, const struct config *config,
                    struct grants *grants, int admin_fd);

#endif
