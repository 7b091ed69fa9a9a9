#include "cli/disconnect.h"

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <iniparser/iniparser.h>

#include "cli/cli_args.h"
#include "cli/daemon_request.h"
#include "cli/status_client.h"
#include "cli/store_publish.h"
#include "config/config.h"
#include "core/limits.h"
#include "proto/control_protocol.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: ktlstun disconnect IDENTITY|ADDRESS [-c FILE]\n"
                 "  IDENTITY  a certificate's CN (alice), subject (CN=alice,O=Example) or\n"
                 "            SHA-256 fingerprint; ADDRESS: a peer address, with or without port\n");
}

/* Asks every worker socket in DIR; adds up what they ended in *ENDED and sets *FAILED
 * (after telling the user why) when one could not be asked. Returns how many answered. */
static unsigned ask_every_worker(const char *dir, const char *request, unsigned long *ended,
                                 int *failed)
{
    char pattern[4200];
    snprintf(pattern, sizeof(pattern), "%s/%s", dir, CONTROL_PROTOCOL_GLOB);
    glob_t found;
    if (glob(pattern, 0, NULL, &found) != 0)
        return 0;
    unsigned answered = 0;
    for (size_t i = 0; i < found.gl_pathc; i++) {
        char reply[CONTROL_PROTOCOL_REPLY_MAX];
        if (daemon_request(found.gl_pathv[i], request, 5, NULL, NULL, reply, sizeof(reply)) < 0) {
            /* A worker that crashed leaves its socket behind until the parent reaps it. */
            if (errno == ECONNREFUSED || errno == ENOENT)
                continue;
            fprintf(stderr, "ktlstun disconnect: cannot ask %s: %s (needs root or the daemon's "
                            "user)\n", found.gl_pathv[i], strerror(errno));
            *failed = 1;
        } else if (strncmp(reply, CONTROL_PROTOCOL_OK "\n", sizeof(CONTROL_PROTOCOL_OK)) == 0) {
            *ended += strtoul(reply + sizeof(CONTROL_PROTOCOL_OK), NULL, 10);
            answered++;
        } else {
            const char *text = strchr(reply, '\n');
            fprintf(stderr, "ktlstun disconnect: %s", text != NULL ? text + 1 : reply);
            *failed = 1;
        }
    }
    globfree(&found);
    return answered;
}

/* Returns 1 when CONFIG_PATH's [global] names a state store other than files. Read
 * without loading the whole configuration, as the local part does: only a store
 * needs the configuration checked and loaded. */
static int uses_store(const char *config_path)
{
    dictionary *ini = iniparser_load(config_path);
    if (ini == NULL)
        return 0;
    const char *store = iniparser_getstring(ini, "global:state_store", "file");
    int yes = strcmp(store, "file") != 0;
    iniparser_freedict(ini);
    return yes;
}

/* Publishes the disconnect of KEY to the other gateways through the state store.
 * Returns 0, or 1 after telling the user why it could not. */
static int tell_other_gateways(const char *config_path, const char *key)
{
    char *errors = NULL;
    struct config *config = config_load(config_path, &errors);
    int status = 1;
    if (config == NULL) {
        fprintf(stderr, "%sktlstun disconnect: %s has errors: not sent to the other gateways\n",
                errors != NULL ? errors : "", config_path);
        goto out;
    }
    if (config->global.state_store == NULL) {
        status = 0;
        goto out;
    }
    char err[512], where[160];
    struct store_event event = { .kind = STORE_EVENT_DISCONNECT };
    snprintf(event.identity, sizeof(event.identity), "%s", key);
    switch (store_publish_event(config, "ktlstun disconnect", &event, where, sizeof(where), err,
                                sizeof(err))) {
    case STORE_PUBLISH_UNREACHABLE:
        fprintf(stderr, "ktlstun disconnect: cannot reach the state store, so the other "
                        "gateways were not told: %s\n", err);
        goto out;
    case STORE_PUBLISH_REFUSED:
        fprintf(stderr, "ktlstun disconnect: the state store refused the disconnect, so the "
                        "other gateways were not told: %s\n", err);
        goto out;
    case STORE_PUBLISH_OK:
        break;
    }
    printf("sent the disconnect of %s to the other gateways (event %lld)\n", key,
           (long long)event.id);
    status = 0;
out:
    config_free(config);
    free(errors);
    return status;
}

/* Returns 1 when DIR can be listed, so that finding no control socket there means no
 * daemon runs, or when it does not exist; 0 when it cannot be read (permissions). */
static int runtime_dir_seen(const char *dir)
{
    return access(dir, R_OK | X_OK) == 0 || errno == ENOENT;
}

int disconnect_command(int argc, char **argv)
{
    static const struct cli_args_spec spec = { .min_args = 1, .max_args = 1, .usage = usage };
    struct cli_args args;
    int parsed = cli_args_parse(argc, argv, &spec, &args);
    if (parsed >= 0)
        return parsed;
    const char *config_path = args.config_path, *key = args.args[0];
    if (!daemon_request_key_ok(key)) {
        fprintf(stderr, "ktlstun disconnect: '%s' is not an identity or address\n", key);
        return 2;
    }
    char *dir = status_client_runtime_dir(config_path);
    if (dir == NULL)
        return 1;
    char request[LIMIT_IDENTITY + 32];
    snprintf(request, sizeof(request), "%s%s", CONTROL_PROTOCOL_DISCONNECT, key);
    unsigned long ended = 0;
    int failed = 0;
    unsigned answered = ask_every_worker(dir, request, &ended, &failed);
    int store = uses_store(config_path);
    int status = answered == 0 || failed ? 1 : 0;
    if (answered == 0 && !failed && store && runtime_dir_seen(dir)) {
        /* With a store, the other gateways' tunnels are the point: no daemon here
         * only means no tunnel here to end. */
        printf("ktlstund is not running here: no tunnel of %s to end on this gateway\n", key);
        status = 0;
    } else if (answered == 0 && !failed) {
        fprintf(stderr, "ktlstun: ktlstund is not running, or its control sockets in %s cannot "
                        "be reached (needs root or the daemon's user)\n", dir);
    }
    if (answered > 0)
        printf("ended %lu tunnel%s of %s\n", ended, ended == 1 ? "" : "s", key);
    if (store && tell_other_gateways(config_path, key) != 0)
        status = 1;
    free(dir);
    return status;
}
