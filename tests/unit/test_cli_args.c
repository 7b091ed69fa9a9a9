#include <getopt.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cli/cli_args.h"
#include "config/config.h"

static int usage_stdout, usage_stderr;

static void count_usage(FILE *out)
{
    if (out == stdout)
        usage_stdout++;
    else
        usage_stderr++;
}

/* revoke's shape: --tunnel/-t VALUE, a flag without a letter, one argument. */
static const struct cli_args_spec spec = {
    .own = { { "tunnel", 't', 1 }, { "list", 0, 0 } },
    .min_args = 1, .max_args = 1, .usage = count_usage,
};

static int parse(struct cli_args *args, char **argv)
{
    int argc = 0;
    while (argv[argc] != NULL)
        argc++;
    usage_stdout = usage_stderr = 0;
    opterr = 0;   /* getopt's own complaint would only clutter the test's output */
    return cli_args_parse(argc, argv, &spec, args);
}

static void test_defaults(void **state)
{
    (void)state;
    struct cli_args args;
    char *argv[] = { "revoke", "alice", NULL };
    assert_int_equal(parse(&args, argv), -1);
    assert_string_equal(args.config_path, CONFIG_DEFAULT_PATH);
    assert_null(args.own[0]);
    assert_null(args.own[1]);
    assert_int_equal(args.arg_count, 1);
    assert_string_equal(args.args[0], "alice");
    assert_int_equal(usage_stdout + usage_stderr, 0);
}

static void test_options_anywhere(void **state)
{
    (void)state;
    struct cli_args args;
    char *argv[] = { "revoke", "alice", "-c", "/tmp/k.ini", "--tunnel", "vpn", "--list", NULL };
    assert_int_equal(parse(&args, argv), -1);
    assert_string_equal(args.config_path, "/tmp/k.ini");
    assert_string_equal(args.own[0], "vpn");
    assert_string_equal(args.own[1], "");
    assert_string_equal(args.args[0], "alice");

    char *short_form[] = { "revoke", "-t", "web", "bob", NULL };
    assert_int_equal(parse(&args, short_form), -1);
    assert_string_equal(args.own[0], "web");
    assert_string_equal(args.args[0], "bob");
}

static void test_help(void **state)
{
    (void)state;
    struct cli_args args;
    char *long_help[] = { "revoke", "--help", NULL };
    assert_int_equal(parse(&args, long_help), 0);
    assert_int_equal(usage_stdout, 1);
    char *short_help[] = { "revoke", "-h", "alice", NULL };
    assert_int_equal(parse(&args, short_help), 0);
    assert_int_equal(usage_stdout, 1);
    assert_int_equal(usage_stderr, 0);
}

static void test_mistakes(void **state)
{
    (void)state;
    struct cli_args args;
    char *unknown[] = { "revoke", "--bogus", "alice", NULL };
    char *no_value[] = { "revoke", "alice", "--tunnel", NULL };
    char *none[] = { "revoke", NULL };
    char *two[] = { "revoke", "alice", "bob", NULL };
    char *flag_letter[] = { "revoke", "-l", "alice", NULL };   /* --list has no letter */
    char **cases[] = { unknown, no_value, none, two, flag_letter };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(parse(&args, cases[i]), 2);
        assert_int_equal(usage_stderr, 1);
        assert_int_equal(usage_stdout, 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_options_anywhere),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_mistakes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
