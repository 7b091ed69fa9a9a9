/* systemd_sockets — the listening sockets systemd passed (socket activation), by
 * FileDescriptorName, for `listen = systemd:NAME`. */
#ifndef KTLSTUN_SYSTEMD_SOCKETS_H
#define KTLSTUN_SYSTEMD_SOCKETS_H

#include <stddef.h>

/* Takes the sockets systemd passed to this process (once, at start; clears
 * LISTEN_FDS so children do not see them). Returns how many, or -1 after logging. */
int systemd_sockets_collect(void);

/* Returns a new descriptor (a dup, made non-blocking) for the passed socket named
 * NAME, or -1 with the reason in ERR: no such name (the names passed are listed), or
 * not a listening stream socket. The original stays with this module, so a reload
 * that drops and later re-adds the tunnel still finds it. */
int systemd_sockets_dup(const char *name, char *err, size_t errlen);

/* Logs a warning for every passed socket no tunnel asked for. */
void systemd_sockets_warn_unused(void);

#endif
