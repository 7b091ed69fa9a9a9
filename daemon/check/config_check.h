/* config_check — what `ktlstund -t` and `ktlstun check-config` do: load the config,
 * then every certificate, key, CA and CRL it names, and the run-as user. */
#ifndef KTLSTUN_CONFIG_CHECK_H
#define KTLSTUN_CONFIG_CHECK_H

/* Checks PATH, printing each problem on stderr and "configuration PATH is ok" on
 * stdout. Returns 0 when the daemon would start with it, 1 otherwise. */
int config_check_file(const char *path);

#endif
