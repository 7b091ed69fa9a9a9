/* helper_spawner — the process that starts PAM helpers (helper_main) as the helper's
 * own user ("ktlstund-spawn").
 *
 * The supervisor forks it first, while it still may switch users. Before it gives up
 * its privileges it closes the inherited listeners, binds the admin socket
 * (admin_socket_bind) and creates state_dir for the helper's user when missing; then
 * it becomes that user (privdrop: groups, uid, no capability) and waits. For each
 * request on its socket (one byte with a SOCK_SEQPACKET descriptor: the new helper's
 * control channel) it starts a helper as a child of the supervisor (clone with
 * CLONE_PARENT, so the supervisor reaps it as before) and answers with its pid (an
 * int32). So the supervisor can keep no privilege at all and still start the helper
 * again when it dies. */
#ifndef KTLSTUN_HELPER_SPAWNER_H
#define KTLSTUN_HELPER_SPAWNER_H

#include "config/config.h"
#include "core/privdrop.h"
#include "proto/grants.h"

struct helper_spawner_params {
    int request_fd;                 /* its end of the supervisor's socketpair */
    const char *config_path;
    const struct config *config;    /* this process's copy of the parent's, at start */
    struct grants *grants;          /* the writable table every helper writes */
    struct privdrop_target user;    /* the helper's user (disabled: stay as started) */
};

/* Runs the spawner in a freshly forked child of the supervisor until REQUEST_FD
 * closes. Returns the exit status (failure when it could not give up privileges). */
int helper_spawner_run(const struct helper_spawner_params *params);

#endif
