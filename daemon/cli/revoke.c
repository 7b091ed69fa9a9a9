#include "cli/revoke.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_args.h"
#include "cli/daemon_request.h"
#include "cli/store_publish.h"
#include "config/config.h"
#include "core/limits.h"
#include "proto/admin_protocol.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: ktlstun revoke IDENTITY [--tunnel NAME] [-c FILE]\n"
                 "  IDENTITY       the name a second-factor grant carries (ktlstun status lists\n"
                 "                 them: the certificate's CN, or its subject when it has no CN),\n"
                 "                 or the certificate's SHA-256 fingerprint\n"
                 "  --tunnel NAME  only its grant on tunnel NAME (default: every tunnel)\n");
}

/* Returns 1 when REPLY's first line is STATUS. */
static int has_status(const char *reply, const char *status)
{
    size_t len = strlen(status);
    return strncmp(reply, status, len) == 0 && reply[len] == '\n';
}

/* Returns NULL when TUNNEL (NULL: any) can hold grants in CONFIG, else why not. */
static const char *no_grants_on(const struct config *config, const char *tunnel)
{
    for (size_t i = 0; i < config->tunnel_count; i++) {
        const struct tunnel_config *t = &config->tunnels[i];
        if (tunnel != NULL && strcmp(t->name, tunnel) != 0)
            continue;
        if (t->mode == TUNNEL_MODE_SERVER && t->second_factor == SECOND_FACTOR_PAM)
            return NULL;
        if (tunnel != NULL)
            return "is no server tunnel with second_factor = pam, so it has no grants";
    }
    return tunnel != NULL ? "is not in the configuration"
                          : "has no server tunnel with second_factor = pam, so there are no grants";
}

static int from_reply(const char *reply, const struct config *config)
{
    const char *text = strchr(reply, '\n');
    text = text != NULL ? text + 1 : reply;
    if (has_status(reply, ADMIN_PROTOCOL_OK)) {
        printf("%s", text);
        if (config->global.state_store != NULL)
            printf("the revoke goes to every other gateway through the shared state store\n");
        return 0;
    }
    fprintf(stderr, "ktlstun revoke: %s", text);
    return has_status(reply, ADMIN_PROTOCOL_UNKNOWN) ? 1 : 2;
}

/* No daemon here, but a shared state store: the revoke goes to every gateway through
 * it (and out of the store's grants, which a gateway reads at its start). */
static int revoke_in_store(const struct config *config, const char *tunnel, const char *key)
{
    char err[300], where[160];
    struct store_event event;
    store_events_admin_revoke(&event, config->global.gateway_name, tunnel, key);
    switch (store_publish_event(config, "ktlstun revoke", &event, where, sizeof(where), err,
                                sizeof(err))) {
    case STORE_PUBLISH_UNREACHABLE:
        fprintf(stderr, "ktlstun revoke: ktlstund is not running here and the shared state store "
                        "cannot be reached, so no grant was revoked: %s\n", err);
        return 1;
    case STORE_PUBLISH_REFUSED:
        fprintf(stderr, "ktlstun revoke: the shared state store %s refused the revoke, so no "
                        "grant was revoked: %s\n", where, err);
        return 1;
    case STORE_PUBLISH_OK:
        break;
    }
    printf("ktlstund is not running here: the revoke of the grants of %s%s%s was sent to every "
           "gateway through the shared state store %s (event %lld)\n", key,
           tunnel != NULL ? " on tunnel " : "", tunnel != NULL ? tunnel : "", where,
           (long long)event.id);
    return 0;
}

int revoke_command(int argc, char **argv)
{
    static const struct cli_args_spec spec = {
        .own = { { "tunnel", 't', 1 } }, .min_args = 1, .max_args = 1, .usage = usage,
    };
    struct cli_args args;
    int parsed = cli_args_parse(argc, argv, &spec, &args);
    if (parsed >= 0)
        return parsed;
    const char *config_path = args.config_path, *tunnel = args.own[0], *key = args.args[0];
    char cn[LIMIT_IDENTITY + 1];
    if ((key = daemon_request_key_of_subject("ktlstun revoke", "an identity or fingerprint", key,
                                             cn, sizeof(cn))) == NULL)
        return 2;
    char *errors = NULL;
    struct config *config = config_load(config_path, &errors);
    if (config == NULL) {
        fprintf(stderr, "%sktlstun revoke: %s has errors\n", errors ? errors : "", config_path);
        free(errors);
        return 2;
    }
    int status = 2;
    const char *why = no_grants_on(config, tunnel);
    if (why != NULL) {
        fprintf(stderr, "ktlstun revoke: %s%s %s\n", tunnel != NULL ? "tunnel " : "",
                tunnel != NULL ? tunnel : config_path, why);
        goto out;
    }
    char request[LIMIT_IDENTITY + LIMIT_TUNNEL_NAME + 16], reply[ADMIN_PROTOCOL_REPLY_MAX];
    snprintf(request, sizeof(request), "%s%s %s", ADMIN_PROTOCOL_REVOKE,
             tunnel != NULL ? tunnel : ADMIN_PROTOCOL_ALL_TUNNELS, key);
    if (daemon_request_helper(config->global.runtime_dir, config->global.pam_user, request, reply,
                              sizeof(reply)) == 0) {
        status = from_reply(reply, config);
    } else if ((errno == ENOENT || errno == ECONNREFUSED) && config->global.state_store != NULL) {
        status = revoke_in_store(config, tunnel, key);
    } else if (errno == ENOENT || errno == ECONNREFUSED) {
        fprintf(stderr, "ktlstun revoke: ktlstund is not running (nothing answers on %s/%s): "
                        "grants live in its memory only, so there is none to revoke\n",
                config->global.runtime_dir, ADMIN_PROTOCOL_SOCKET);
        status = 1;
    } else {
        fprintf(stderr, "ktlstun revoke: cannot ask ktlstund through %s/%s: %s\n",
                config->global.runtime_dir, ADMIN_PROTOCOL_SOCKET, strerror(errno));
    }
out:
    config_free(config);
    return status;
}
