/* daemonize — ktlstund's detached start (without -f, outside systemd): the command
 * that started it returns only once the daemon serves (exit 0) or has failed (exit
 * non-zero, the reason on its stderr), not as soon as it has forked. */
#ifndef KTLSTUN_DAEMONIZE_H
#define KTLSTUN_DAEMONIZE_H

/* Forks. The parent never returns: it keeps what the child's start-up logs until the
 * child calls daemonize_ready() (then it prints the warnings among them and exits 0) or exits (then it prints
 * those lines on its stderr and exits with the child's status, 1 at least), or a
 * minute passes (it prints them and exits 1, the child going on in the background). The child starts a new session, logs to
 * syslog and, until daemonize_ready(), to the parent as well. Returns 0 in the child,
 * -1 when the fork fails (logged). */
int daemonize_detach(void);

/* In the detached daemon once it serves: lets the waiting parent exit 0 and stops
 * writing to it. Does nothing when the daemon did not detach or said so before. */
void daemonize_ready(void);

/* In a process the daemon forks (worker, helper launcher): lets go of the waiting
 * parent, so that only the daemon's own end keeps it waiting. */
void daemonize_forget(void);

#endif
