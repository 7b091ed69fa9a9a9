/* runtime_lock — one daemon per runtime_dir: its status, control and admin sockets
 * live there, so a second daemon would mix its sockets with the first one's. The
 * lock is flock() on runtime_dir/ktlstund.lock, which holds the pid of its holder;
 * the kernel lets go of it when the daemon exits, however it exits, so a file left
 * by a crashed daemon does not block the next start. `ktlstund -t` never takes it. */
#ifndef KTLSTUN_RUNTIME_LOCK_H
#define KTLSTUN_RUNTIME_LOCK_H

#include "config/config.h"

#define RUNTIME_LOCK_FILE "ktlstund.lock"

/* Takes the lock of CONFIG's runtime_dir (made, mode 0750, when missing) and writes
 * this process's pid into it. The descriptor stays open (close-on-exec) for the life
 * of the process. When another daemon holds the lock it
 * logs "FILE:LINE: [global] runtime_dir: runtime_dir DIR is in use by ktlstund (pid
 * N); stop it or give this instance another runtime_dir". Returns 0, or -1 after
 * logging why not. */
int runtime_lock_take(const struct config *config);

/* In a process the daemon forks: closes its copy of the lock, so that the lock goes
 * with the daemon itself. */
void runtime_lock_close_in_child(void);

/* Returns 1 when runtime_lock_take() made DIR (so its owner is still to be set). */
int runtime_lock_made_dir(const char *dir);

#endif
