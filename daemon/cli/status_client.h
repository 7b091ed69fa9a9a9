/* status_client — `ktlstun status [--json] [-c FILE]`: asks every status socket in
 * runtime_dir (status_server) and prints tunnels and live connections. */
#ifndef KTLSTUN_STATUS_CLIENT_H
#define KTLSTUN_STATUS_CLIENT_H

/* Returns the runtime_dir CONFIG_PATH names (default /run/ktlstun) as a new string the
 * caller frees, reading that key only (the keys it names may be unreadable); NULL
 * after telling the user why on stderr. */
char *status_client_runtime_dir(const char *config_path);

/* Runs the subcommand (ARGV[0] is "status"). Returns the exit status: 0, 1 when the
 * daemon is not running or cannot be asked, 2 on a usage error. */
int status_client_command(int argc, char **argv);

#endif
