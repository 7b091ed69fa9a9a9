/* disconnect — `ktlstun disconnect IDENTITY|ADDRESS [-c FILE]`: ends the live tunnels
 * of a certificate (its CN, subject or SHA-256 fingerprint) or of a peer address, in
 * every worker of the running daemon, old generations included, by asking each
 * worker's control socket in runtime_dir (proto/control_protocol.h; root or the
 * daemon's user). Prints how many tunnels ended. With a shared state store
 * (state_store), it then publishes the disconnect there (STORE_EVENT_DISCONNECT, in
 * this gateway's name), so that every other gateway ends the tunnels it holds too. It
 * does not keep the peer out: it may connect again unless its certificate is revoked,
 * its allow rule removed or its second-factor grant withdrawn. */
#ifndef KTLSTUN_DISCONNECT_H
#define KTLSTUN_DISCONNECT_H

/* Runs the subcommand (ARGV[0] is "disconnect"). Returns the exit status: 0 when
 * every worker answered (whether or not a tunnel matched) and, with a store, the
 * disconnect was published; with a store, a daemon that is not running here is no
 * error (no tunnel here to end). 1 when the daemon is not running (without a store),
 * a worker could not be asked, or the store could not be reached (the local part has
 * happened all the same); 2 on a usage error. */
int disconnect_command(int argc, char **argv);

#endif
