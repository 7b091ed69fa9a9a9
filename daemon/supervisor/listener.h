/* listener — binds a tunnel's listen address (TCP or unix), as root, before workers fork. */
#ifndef KTLSTUN_LISTENER_H
#define KTLSTUN_LISTENER_H

#include <stddef.h>

#include "core/address.h"

/* Opens a non-blocking listening socket on ADDR (for systemd:NAME, takes the socket
 * systemd passed). A stale unix socket file is replaced; any other file at that path
 * is an error. Returns the fd, or -1 with the
 * reason written into ERR. */
int listener_open(const struct address *addr, char *err, size_t errlen);

/* Closes FD and, for a unix listener, removes its socket file. */
void listener_close(int fd, const struct address *addr);

#endif
