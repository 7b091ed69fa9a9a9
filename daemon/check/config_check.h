/* config_check — what `ktlstund -t`, `ktlstun check-config`, the daemon's start and a
 * reload verify beyond parsing: every certificate, key, CA and CRL loads into a TLS
 * context, and nothing the configuration asks for would fail once it runs (see
 * cert_check, crl_check, host_check, listen_check). */
#ifndef KTLSTUN_CONFIG_CHECK_H
#define KTLSTUN_CONFIG_CHECK_H

#include <stddef.h>

#include "check/check_report.h"
#include "check/listen_check.h"
#include "config/config.h"

/* Who checks: the daemon's own binary runs as the daemon will (ktlstund -t is the
 * unit's ExecStartPre= and ExecReload=); `ktlstun check-config` may be run by anyone,
 * so what depends on the daemon's privileges is only a warning there when it is not
 * run by root. */
enum config_check_caller { CONFIG_CHECK_DAEMON, CONFIG_CHECK_CLI };

/* Runs every check over CONFIG into REPORT. HELD (may be NULL) says which listeners
 * the running daemon keeps: they are not bound again. Builds and frees each tunnel's
 * TLS context; a context that does not build is logged where it fails. Returns 0, or
 * -1 when a context did not build. */
int config_check_run(const struct config *config, enum config_check_caller caller,
                     const struct listen_check_held *held, struct check_report *report);

/* `ktlstund -t` and `ktlstun check-config`: loads PATH, asks a daemon running with it
 * (its status sockets in runtime_dir) which listeners it holds, runs the checks, and
 * prints each problem on stderr ("FILE:LINE: [section] key: reason", a warning's
 * reason starting "warning: ") and "configuration PATH is ok" on stdout. Returns 0
 * when the daemon would start with it (warnings allowed), 1 otherwise. */
int config_check_file(const char *path, enum config_check_caller caller);

/* The daemon's start and reload: runs the checks over CONFIG and logs each problem at
 * its level. HELD (HELD_COUNT addresses as address_format writes them) are the
 * listeners the running generation holds. Returns 0 when CONFIG may go live, -1 when
 * it has an error. */
int config_check_loaded(const struct config *config, const char *const *held, size_t held_count);

#endif
