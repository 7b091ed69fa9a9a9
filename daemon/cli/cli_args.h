/* cli_args — the command line of a `ktlstun` subcommand: -c FILE, -h/--help, the
 * subcommand's own options and its positional arguments. One parser, so that every
 * subcommand answers --help and a mistake the same way. */
#ifndef KTLSTUN_CLI_ARGS_H
#define KTLSTUN_CLI_ARGS_H

#include <stdio.h>

#define CLI_ARGS_MAX_OWN 2

struct cli_option {
    const char *name;          /* long name: "tunnel" for --tunnel; NULL ends the list */
    int letter;                /* short letter ('t' for -t), 0 for none */
    int takes_value;           /* 1: --name VALUE; 0: a flag */
};

struct cli_args_spec {
    struct cli_option own[CLI_ARGS_MAX_OWN];   /* the subcommand's own options */
    unsigned min_args, max_args;               /* how many positional arguments */
    void (*usage)(FILE *out);                  /* prints "usage: ..." */
};

struct cli_args {
    const char *config_path;           /* -c FILE; CONFIG_DEFAULT_PATH without it */
    const char *own[CLI_ARGS_MAX_OWN]; /* each own option's value ("" for a flag given),
                                          NULL when absent; the last one given counts */
    char **args;                       /* the positional arguments (within ARGV) */
    unsigned arg_count;
};

/* Parses ARGC/ARGV (ARGV[0] is the subcommand's name) by SPEC into ARGS, whose
 * strings point into ARGV. Returns -1 when the subcommand goes on; otherwise the exit
 * status to end with, the usage printed: 0 after -h/--help (on stdout), 2 after an
 * unknown option, a missing value or a wrong number of arguments (on stderr). */
int cli_args_parse(int argc, char **argv, const struct cli_args_spec *spec,
                   struct cli_args *args);

#endif
