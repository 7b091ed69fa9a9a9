/* revoke — `ktlstun revoke IDENTITY [--tunnel NAME] [-c FILE]`: withdraws the
 * second-factor grants of a certificate, so that its live gated tunnels end and its
 * next data connection needs a new login.
 *
 * IDENTITY is the name a grant carries (`ktlstun status` lists them: the
 * certificate's CN, or its subject when it has no CN) or the certificate's SHA-256
 * fingerprint. With the daemon running, asks its PAM helper over
 * runtime_dir/second-factor.sock (admin_protocol; root, and only a listener running
 * as root or pam_user is believed): the helper withdraws the grants, the workers end
 * the tunnels they admitted within a second, and with a shared state store
 * (state_store) the revoke goes to every other gateway (STORE_EVENT_REVOKE). With no
 * daemon here and a store, it publishes the revoke through the store itself. Grants
 * live in the daemon's memory and in the store only, so nothing brings a revoked one
 * back at a restart. */
#ifndef KTLSTUN_REVOKE_H
#define KTLSTUN_REVOKE_H

/* Runs the subcommand (ARGV[0] is "revoke"). Returns the exit status: 0 when the
 * grants were revoked (also when there was none: the output says 0) or, with no
 * daemon here, the revoke was published through the store; 1 when the daemon is not
 * running and there is no store, the store could not be reached or refused the
 * revoke, or the daemon has no such tunnel; 2 on a usage, configuration or
 * permission error. */
int revoke_command(int argc, char **argv);

#endif
