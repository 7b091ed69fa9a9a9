/* ktlstund — the daemon: parse the command line, load the config, run the supervisor. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "auth/second_factor.h"
#include "config/config.h"
#include "check/config_check.h"
#include "kmod_load.h"
#include "core/log.h"
#include "supervisor/daemonize.h"
#include "supervisor/runtime_lock.h"
#include "supervisor/supervisor.h"
#include "core/version.h"

static void usage(FILE *out)
{
    fprintf(out,
            "usage: ktlstund [-c FILE] [-f] [-t] [-V]\n"
            "  -c FILE  configuration file (default %s)\n"
            "  -f       stay in the foreground, log to stderr\n"
            "  -t       test the configuration (certificates and keys too) and exit 0 or 1\n"
            "  -V       print the version\n",
            CONFIG_DEFAULT_PATH);
}

/* Each tunnel holds two sockets and, offloaded, two pipes: ten thousand tunnels need
 * more descriptors than the usual soft limit of 1024. */
static void raise_fd_limit(void)
{
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

static int wants_ktls(const struct config *config)
{
    for (size_t i = 0; i < config->tunnel_count; i++)
        if (config->tunnels[i].ktls != KTLS_POLICY_OFF)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *config_path = CONFIG_DEFAULT_PATH;
    int foreground = 0, test_only = 0, opt;
    tls_context_set_gate(&second_factor_gate);
    while ((opt = getopt(argc, argv, "c:ftVh")) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 'f': foreground = 1; break;
        case 't': test_only = 1; break;
        case 'V': printf("ktlstun %s\n", KTLSTUN_VERSION); return EXIT_SUCCESS;
        case 'h': usage(stdout); return EXIT_SUCCESS;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    log_init("ktlstund", LOG_LEVEL_INFO);
    log_use_journal_if_connected();
    if (test_only)
        return config_check_file(config_path, CONFIG_CHECK_DAEMON);

    char *errors = NULL;
    struct config *config = config_load(config_path, &errors);
    if (config == NULL) {
        fprintf(stderr, "%s", errors != NULL ? errors : "configuration could not be loaded\n");
        fprintf(stderr, "ktlstund: not starting: %s has errors\n", config_path);
        free(errors);
        return EXIT_FAILURE;
    }
    log_set_level(config->global.log_level);
    /* Under systemd (or with -f) the daemon stays in front; otherwise it detaches
     * first, so that whatever fails the start is in the system log, and the command
     * returns once the daemon serves (0) or has failed (1, the reason on stderr). */
    int under_systemd = getenv("INVOCATION_ID") != NULL || getenv("NOTIFY_SOCKET") != NULL;
    if (!foreground && !under_systemd && daemonize_detach() < 0) {
        config_free(config);
        return EXIT_FAILURE;
    }
    raise_fd_limit();
    /* Load the tls module while we still may; without CAP_SYS_MODULE (the systemd
     * unit) this only checks, so a missing module is still reported at start. */
    if (wants_ktls(config))
        kmod_load_tls_modules();
    /* The parent holds every private key: keep same-uid processes (a compromised
     * worker under the unit's single uid) out of its memory and core files. */
    prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
    /* Before the checks: a second daemon on the same runtime_dir would also find
     * its listen addresses taken, which says less. */
    if (runtime_lock_take(config) < 0) {
        log_error("not starting: another ktlstund uses runtime_dir %s",
                  config->global.runtime_dir);
        config_free(config);
        return EXIT_FAILURE;
    }
    /* What -t finds wrong would fail the start or every connection: say so now,
     * rather than from a crash loop or a refusal per client. */
    if (config_check_loaded(config, NULL, 0) < 0) {
        log_error("not starting: %s has errors", config_path);
        config_free(config);
        return EXIT_FAILURE;
    }
    return supervisor_run(config_path, config);
}
