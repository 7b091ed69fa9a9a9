#include "cli/cli_args.h"

#include <getopt.h>
#include <string.h>

#include "config/config.h"

/* Long options: the spec's own, then help; the value getopt_long returns for an own
 * option without a letter is its index plus OWN_BASE (above any character). */
#define OWN_BASE 0x100

int cli_args_parse(int argc, char **argv, const struct cli_args_spec *spec,
                   struct cli_args *args)
{
    struct option options[CLI_ARGS_MAX_OWN + 2];
    char letters[4 + 2 * CLI_ARGS_MAX_OWN + 1] = "c:h";
    size_t n = 0, at = strlen(letters);
    memset(args, 0, sizeof(*args));
    args->config_path = CONFIG_DEFAULT_PATH;
    for (size_t i = 0; i < CLI_ARGS_MAX_OWN && spec->own[i].name != NULL; i++, n++) {
        const struct cli_option *o = &spec->own[i];
        options[n] = (struct option){ o->name, o->takes_value ? required_argument : no_argument,
                                      NULL, o->letter != 0 ? o->letter : OWN_BASE + (int)i };
        if (o->letter != 0) {
            letters[at++] = (char)o->letter;
            if (o->takes_value)
                letters[at++] = ':';
        }
    }
    letters[at] = '\0';
    options[n++] = (struct option){ "help", no_argument, NULL, 'h' };
    options[n] = (struct option){ NULL, 0, NULL, 0 };

    int opt;
    optind = 1;
    while ((opt = getopt_long(argc, argv, letters, options, NULL)) != -1) {
        if (opt == 'c') {
            args->config_path = optarg;
            continue;
        }
        if (opt == 'h') {
            spec->usage(stdout);
            return 0;
        }
        size_t i = 0;
        while (i < CLI_ARGS_MAX_OWN && spec->own[i].name != NULL &&
               opt != (spec->own[i].letter != 0 ? spec->own[i].letter : OWN_BASE + (int)i))
            i++;
        if (i == CLI_ARGS_MAX_OWN || spec->own[i].name == NULL) {
            spec->usage(stderr);
            return 2;
        }
        args->own[i] = spec->own[i].takes_value ? optarg : "";
    }
    args->args = argv + optind;
    args->arg_count = (unsigned)(argc - optind);
    if (args->arg_count < spec->min_args || args->arg_count > spec->max_args) {
        spec->usage(stderr);
        return 2;
    }
    return -1;
}
