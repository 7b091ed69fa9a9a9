/* status_client — `ktlstun status [--json] [-c FILE]`: asks every status socket in
 * runtime_dir (status_server) and prints tunnels and live connections. */
#ifndef KTLSTUN_STATUS_CLIENT_H
#define KTLSTUN_STATUS_CLIENT_H

/* Runs the subcommand (ARGV[0] is "status"). Returns the exit status: 0, 1 when the
 * daemon is not running or cannot be asked, 2 on a usage error. */
int status_client_command(int argc, char **argv);

#endif
