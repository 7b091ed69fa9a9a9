/* supervisor — the privileged parent: owns the live generation, forks one worker per
 * configured slot, replaces workers that die, reloads on SIGHUP, drains on SIGTERM. */
#ifndef KTLSTUN_SUPERVISOR_H
#define KTLSTUN_SUPERVISOR_H

#include "config/config.h"

/* Runs the daemon with CONFIG (owned) loaded from CONFIG_PATH until it is told to
 * stop. Returns the process exit status. */
int supervisor_run(const char *config_path, struct config *config);

#endif
