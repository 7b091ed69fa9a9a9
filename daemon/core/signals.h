/* signals — signals arrive through a signalfd read in the event loop, never in a
 * handler (no work in signal context). */
#ifndef KTLSTUN_SIGNALS_H
#define KTLSTUN_SIGNALS_H

/* Blocks SIGHUP, SIGTERM, SIGINT, SIGQUIT and SIGCHLD, ignores SIGPIPE, and returns a
 * non-blocking, close-on-exec signalfd for the blocked ones, or -1 with errno set. For
 * the long-lived processes: the supervisor and the PAM helper. */
int signals_open_fd(void);

/* In a freshly forked child about to run other code (a PAM module, an alert command):
 * unblocks every signal and gives SIGPIPE its default action back. */
void signals_reset_in_child(void);

#endif
