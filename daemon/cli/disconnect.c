#include "cli/disconnect.h"

#include <errno.h>
#include <getopt.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "cli/daemon_request.h"
#include "cli/status_client.h"
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

int disconnect_command(int argc, char **argv)
{
    static const struct option options[] = { { "help", no_argument, NULL, 'h' }, { 0, 0, 0, 0 } };
    const char *config_path = CONFIG_DEFAULT_PATH;
    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
        if (opt == 'c') {
            config_path = optarg;
        } else if (opt == 'h') {
            usage(stdout);
            return 0;
        } else {
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc - 1) {
        usage(stderr);
        return 2;
    }
    const char *key = argv[optind];
    if (key[0] == '\0' || strlen(key) > LIMIT_IDENTITY || strchr(key, '\n') != NULL) {
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
    if (answered == 0 && !failed)
        fprintf(stderr, "ktlstun: ktlstund is not running, or its control sockets in %s cannot "
                        "be reached (needs root or the daemon's user)\n", dir);
    if (answered > 0)
        printf("ended %lu tunnel%s of %s\n", ended, ended == 1 ? "" : "s", key);
    int status = answered == 0 || failed ? 1 : 0;
    free(dir);
    return status;
}
