/* login — `ktlstun login TUNNEL [-c FILE] [--answer-fd N]`, the worker's side of the
 * second factor.
 *
 * Connects to the server of client tunnel TUNNEL with that tunnel's certificate,
 * key, CA and server name, asks for the login protocol by ALPN, shows every prompt
 * and reads the answers (from the terminal without echo, or line by line from fd N),
 * and says plainly how it ended: granted until when, wrong code, locked for how
 * long, certificate not mapped to a user, server unreachable.
 * Exit status: 0 granted, 1 refused, 2 usage or configuration error, 3 the server
 * could not be reached or its login service is unavailable. */
#ifndef KTLSTUN_LOGIN_H
#define KTLSTUN_LOGIN_H

/* Runs the subcommand (ARGV[0] is "login"). Returns the exit status. */
int login_command(int argc, char **argv);

#endif
