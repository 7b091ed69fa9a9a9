/* unlock — `ktlstun unlock IDENTITY|ADDRESS [-c FILE]` and `ktlstun unlock --list`.
 *
 * With the daemon running, asks its PAM helper over runtime_dir/second-factor.sock
 * (root only): the helper lifts the lock, clears the failure counts, saves the state
 * file and logs the unlock. With no daemon listening, edits
 * state_dir/lockout.state directly (atomically), which the daemon reads at start.
 * Exit status: 0 unlocked (or listed), 1 nothing was locked under that name,
 * 2 usage, configuration or permission error. */
#ifndef KTLSTUN_UNLOCK_H
#define KTLSTUN_UNLOCK_H

/* Runs the subcommand (ARGV[0] is "unlock"). Returns the exit status. */
int unlock_command(int argc, char **argv);

#endif
