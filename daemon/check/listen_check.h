/* listen_check — whether each tunnel's listener can be had: no more tunnels than the
 * daemon keeps counters for, and every listen address bindable now. */
#ifndef KTLSTUN_LISTEN_CHECK_H
#define KTLSTUN_LISTEN_CHECK_H

#include <stddef.h>

#include "check/check_report.h"
#include "config/config.h"

/* What is known of the running daemon's listeners, which a reload keeps. */
struct listen_check_held {
    const char *const *addresses;  /* as address_format writes them */
    size_t count;
    int unknown;                   /* a daemon runs that this process may not ask */
};

/* Checks CONFIG's listeners into REPORT:
 *   - a tunnel past LIMIT_TUNNELS: an error at its section line;
 *   - a TCP listen address: bound once (SO_REUSEADDR, as the listener does) and let go;
 *     in use, not an address of this host, or any other bind failure is an error at
 *     the listen line, and so is a port below the unprivileged range (EACCES), with
 *     PRIVILEGE_SEVERITY instead (a warning for a check run by someone other than
 *     root, who cannot know how the daemon is started);
 *   - a unix listen path: its directory must exist, and a file there must be a socket.
 * systemd:NAME listeners are skipped (systemd binds them), and so is every address
 * HELD (may be NULL) lists; with held->unknown, an address in use is only a warning
 * (it may be the daemon's own). Nothing stays bound. */
void listen_check_config(const struct config *config, const struct listen_check_held *held,
                         enum check_severity privilege_severity, struct check_report *report);

#endif
