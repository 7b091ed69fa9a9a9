#include "cli/unlock.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_args.h"
#include "cli/daemon_request.h"
#include "cli/store_publish.h"
#include "config/config.h"
#include "helper/lock_policy.h"
#include "helper/lock_state.h"
#include "proto/admin_protocol.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: ktlstun unlock IDENTITY|USER|ADDRESS [-c FILE]\n"
                 "       ktlstun unlock --list [-c FILE]\n"
                 "  IDENTITY  as shown in the lock alert (identity=\"...\"), e.g. alice or\n"
                 "            alice@example.com; USER: a local user (lock=user);\n"
                 "            ADDRESS: a locked source address\n"
                 "  --list    show the locks in force, each with its end in local time\n");
}

int unlock_ask_daemon(const char *runtime_dir, const char *request, char *reply, size_t cap)
{
    return daemon_request_helper(runtime_dir, NULL, request, reply, cap);
}

/* Returns 1 when REPLY's first line is STATUS. */
static int has_status(const char *reply, const char *status)
{
    size_t len = strlen(status);
    return strncmp(reply, status, len) == 0 && reply[len] == '\n';
}

/* Prints the lock list TEXT ("TUNNEL KIND KEY until EPOCH (level N)" per line, as
 * lock_policy_list writes it for the daemon and for us) with each end in local time,
 * e.g. "2026-12-06 11:02:03 +0100": the reader's clock, not a count of seconds. */
static void print_locks(const char *text)
{
    static const char marker[] = " until ";
    while (*text != '\0') {
        const char *end = strchr(text, '\n');
        size_t len = end != NULL ? (size_t)(end - text) + 1 : strlen(text);
        /* The last marker on the line: a key may contain the word itself. */
        const char *until = NULL;
        for (const char *at = text; (at = strstr(at, marker)) != NULL && at < text + len; at++)
            until = at;
        char *rest = NULL;
        long long epoch = until != NULL ? strtoll(until + sizeof(marker) - 1, &rest, 10) : 0;
        time_t when = (time_t)epoch;
        struct tm tm;
        char shown[64];
        if (until != NULL && rest != until + sizeof(marker) - 1 && localtime_r(&when, &tm) != NULL &&
            strftime(shown, sizeof(shown), "%Y-%m-%d %H:%M:%S %z", &tm) > 0)
            printf("%.*s%s%s%.*s", (int)(until - text), text, marker, shown,
                   (int)(text + len - rest), rest);
        else
            printf("%.*s", (int)len, text);
        text += len;
    }
}

static int from_reply(const char *reply, int list)
{
    const char *text = strchr(reply, '\n');
    text = text != NULL ? text + 1 : reply;
    if (has_status(reply, ADMIN_PROTOCOL_OK)) {
        if (list)
            print_locks(text);
        else
            printf("%s", text);
        return 0;
    }
    fprintf(stderr, "ktlstun unlock: %s", text);
    return has_status(reply, ADMIN_PROTOCOL_NOT_LOCKED) || has_status(reply, ADMIN_PROTOCOL_UNKNOWN)
               ? 1 : 2;
}

/* No daemon: the state file is ours to edit. */
static int edit_state_file(const char *state_dir, const char *key, int list)
{
    char path[4200], err[600];
    snprintf(path, sizeof(path), "%s/%s", state_dir, ADMIN_PROTOCOL_STATE_FILE);
    struct lock_policy *table = lock_policy_create();
    if (table == NULL) {
        fprintf(stderr, "ktlstun unlock: out of memory\n");
        return 2;
    }
    int status = 2;
    int64_t now = (int64_t)time(NULL);
    if (lock_state_load(table, path, err, sizeof(err)) < 0) {
        fprintf(stderr, "ktlstun unlock: %s\n", err);
        goto out;
    }
    if (list) {
        char text[ADMIN_PROTOCOL_REPLY_MAX];
        unsigned locks = lock_policy_list(table, now, text, sizeof(text));
        print_locks(locks > 0 ? text : "no locks\n");
        status = 0;
        goto out;
    }
    int lifted = lock_policy_unlock(table, key, now);
    if (lifted < 0) {
        fprintf(stderr, "ktlstun unlock: %s has no failed logins or locks on record in %s\n", key,
                path);
        status = 1;
        goto out;
    }
    if (lock_state_save(table, path, err, sizeof(err)) < 0) {
        fprintf(stderr, "ktlstun unlock: %s\n", err);
        goto out;
    }
    if (lifted > 0) {
        printf("unlocked %s in %s (ktlstund is not running; it reads the file at start)\n", key,
               path);
        status = 0;
    } else {
        fprintf(stderr, "ktlstun unlock: %s was not locked (its failure counts were cleared)\n",
                key);
        status = 1;
    }
out:
    lock_policy_free(table);
    return status;
}

/* No daemon here, but a shared state store: the unlock goes to every gateway through
 * it (the lock table is the store's, not this machine's file). */
static int unlock_in_store(const struct config *config, const char *key)
{
    if (key == NULL) {
        fprintf(stderr, "ktlstun unlock: ktlstund is not running here; with a shared state store "
                        "the locks are listed by a running gateway (ktlstun unlock --list there)\n");
        return 1;
    }
    char err[300], where[160];
    struct store_event event = { .kind = STORE_EVENT_UNLOCK };
    snprintf(event.identity, sizeof(event.identity), "%s", key);
    switch (store_publish_event(config, "ktlstun unlock", &event, where, sizeof(where), err,
                                sizeof(err))) {
    case STORE_PUBLISH_UNREACHABLE:
        fprintf(stderr, "ktlstun unlock: ktlstund is not running here and the shared state store "
                        "cannot be reached: %s\n", err);
        return 1;
    case STORE_PUBLISH_REFUSED:
        fprintf(stderr, "ktlstun unlock: the shared state store %s refused the unlock: %s\n",
                where, err);
        return 1;
    case STORE_PUBLISH_OK:
        break;
    }
    printf("unlock of %s sent to every gateway through the shared state store %s\n", key, where);
    return 0;
}

int unlock_command(int argc, char **argv)
{
    static const struct cli_args_spec spec = {
        .own = { { "list", 0, 0 } }, .min_args = 0, .max_args = 1, .usage = usage,
    };
    struct cli_args args;
    int parsed = cli_args_parse(argc, argv, &spec, &args);
    if (parsed >= 0)
        return parsed;
    const char *config_path = args.config_path;
    int list = args.own[0] != NULL;
    if (args.arg_count != (list ? 0u : 1u)) {   /* --list, or one lock to lift */
        usage(stderr);
        return 2;
    }
    const char *key = list ? NULL : args.args[0];
    char cn[LIMIT_IDENTITY + 1];
    if (key != NULL && (key = daemon_request_key_of_subject("ktlstun unlock",
                                                            "an identity, user or address", key,
                                                            cn, sizeof(cn))) == NULL)
        return 2;
    char *errors = NULL;
    struct config *config = config_load(config_path, &errors);
    if (config == NULL) {
        fprintf(stderr, "%sktlstun unlock: %s has errors\n", errors ? errors : "", config_path);
        free(errors);
        return 2;
    }
    char request[LIMIT_IDENTITY + 16], reply[ADMIN_PROTOCOL_REPLY_MAX];
    if (list)
        snprintf(request, sizeof(request), "%s", ADMIN_PROTOCOL_LIST);
    else
        snprintf(request, sizeof(request), "%s%s", ADMIN_PROTOCOL_UNLOCK, key);
    int status;
    if (daemon_request_helper(config->global.runtime_dir, config->global.pam_user, request, reply,
                              sizeof(reply)) == 0) {
        status = from_reply(reply, list);
    } else if ((errno == ENOENT || errno == ECONNREFUSED) && config->global.state_store != NULL) {
        status = unlock_in_store(config, key);
    } else if (errno == ENOENT || errno == ECONNREFUSED) {
        status = edit_state_file(config->global.state_dir, key, list);
    } else {
        fprintf(stderr, "ktlstun unlock: cannot ask ktlstund through %s/%s: %s\n",
                config->global.runtime_dir, ADMIN_PROTOCOL_SOCKET, strerror(errno));
        status = 2;
    }
    config_free(config);
    return status;
}
