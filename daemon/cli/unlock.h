/* unlock — `ktlstun unlock IDENTITY|USER|ADDRESS [-c FILE]` and `ktlstun unlock --list`.
 *
 * With the daemon running, asks its PAM helper over runtime_dir/second-factor.sock
 * (root only; and only a listener running as root or pam_user is believed): the
 * helper lifts the lock, clears the failure counts, saves the state
 * file and logs the unlock. With no daemon listening, edits
 * state_dir/lockout.state directly (atomically), which the daemon reads at start.
 * Exit status: 0 unlocked (or listed), 1 nothing was locked under that name,
 * 2 usage, configuration or permission error. */
#ifndef KTLSTUN_UNLOCK_H
#define KTLSTUN_UNLOCK_H

#include <stddef.h>

/* Sends REQUEST ("list", or "unlock KEY") to the daemon's PAM helper on
 * RUNTIME_DIR/second-factor.sock and puts its answer ("ok\n..." or an error word and
 * text) in REPLY (CAP bytes). Only a listener running as root, as the caller, or as
 * the default pam_user (ktlstun-pam) is asked; another (a worker that took the path)
 * is refused with a message on stderr. Returns 0, or -1 with errno when nobody
 * answers (EPERM: an untrusted listener). */
int unlock_ask_daemon(const char *runtime_dir, const char *request, char *reply, size_t cap);

/* Runs the subcommand (ARGV[0] is "unlock"). Returns the exit status. */
int unlock_command(int argc, char **argv);

#endif
