/* ktlstun — the command-line tool. Every subcommand takes -c FILE like the daemon. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"
#include "check/config_check.h"
#include "ktls_probe.h"
#include "core/log.h"
#include "cli/db_status.h"
#include "cli/disconnect.h"
#include "cli/login.h"
#include "cli/revoke.h"
#include "cli/unlock.h"
#include "cli/status_client.h"
#include "core/version.h"

struct command {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
};

/* Parses the options every subcommand shares; returns the config path. */
static const char *config_path_option(int argc, char **argv, int *ok)
{
    const char *path = CONFIG_DEFAULT_PATH;
    int opt;
    optind = 1;
    *ok = 1;
    while ((opt = getopt(argc, argv, "c:")) != -1) {
        if (opt == 'c')
            path = optarg;
        else
            *ok = 0;
    }
    if (optind != argc)
        *ok = 0;
    return path;
}

static int run_version(int argc, char **argv)
{
    (void)argc, (void)argv;
    printf("ktlstun %s\n", KTLSTUN_VERSION);
    return EXIT_SUCCESS;
}

static int run_check_config(int argc, char **argv)
{
    int ok;
    const char *path = config_path_option(argc, argv, &ok);
    if (!ok) {
        fprintf(stderr, "usage: ktlstun check-config [-c FILE]\n");
        return 2;
    }
    return config_check_file(path, CONFIG_CHECK_CLI);
}

static int run_help(int argc, char **argv);

static const struct command commands[] = {
    { "version", "print the version", run_version },
    { "check-config", "test the configuration, certificates and keys (like ktlstund -t)",
      run_check_config },
    { "probe", "show which kernel TLS versions, ciphers and options this kernel offers [--json]",
      ktls_probe_command },
    { "status", "tunnels and live connections of the running daemon (--json for machines)",
      status_client_command },
    { "login", "TUNNEL [--answer-fd N]: pass the server's second factor (one-time password)",
      login_command },
    { "unlock", "IDENTITY|USER|ADDRESS | --list: lift a second-factor lock", unlock_command },
    { "disconnect", "IDENTITY|ADDRESS: end the live tunnels of a certificate or address",
      disconnect_command },
    { "revoke", "IDENTITY [--tunnel NAME]: withdraw second-factor grants; their tunnels end",
      revoke_command },
    { "db", "status | migrate: the shared state store (state_store): gateways, grants, schema",
      db_status_command },
    { "help", "list the subcommands", run_help },
};

static int run_help(int argc, char **argv)
{
    (void)argc, (void)argv;
    printf("usage: ktlstun COMMAND [-c FILE] [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        printf("  %-14s %s\n", commands[i].name, commands[i].summary);
    return EXIT_SUCCESS;
}

int main(int argc, char **argv)
{
    log_init("ktlstun", LOG_LEVEL_WARNING);
    if (argc < 2) {
        run_help(0, NULL);
        return 2;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "ktlstun: unknown command '%s' (try: ktlstun help)\n", argv[1]);
    return 2;
}
