#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config/ini_source.h"

static char test_dir[PATH_MAX];
static char ini_path[PATH_MAX + 32];

static int setup_dir(void **state)
{
    char template[] = "/tmp/ktlstun-ini-test-XXXXXX";
    (void)state;
    if (mkdtemp(template) == NULL)
        return -1;
    snprintf(test_dir, sizeof(test_dir), "%s", template);
    snprintf(ini_path, sizeof(ini_path), "%s/test.ini", test_dir);
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    unlink(ini_path);
    return rmdir(test_dir);
}

/* The LEN bytes at TEXT as the file (NUL bytes included). */
static void load_bytes(const char *text, size_t len, struct ini_source *source)
{
    FILE *out = fopen(ini_path, "w");
    assert_non_null(out);
    assert_int_equal(fwrite(text, 1, len, out), len);
    assert_int_equal(fclose(out), 0);
    assert_int_equal(ini_source_load(ini_path, source), 0);
}

static void load(const char *text, struct ini_source *source)
{
    load_bytes(text, strlen(text), source);
}

static void assert_problem(const struct ini_problem *problem, int line, const char *section,
                           const char *key, const char *reason)
{
    assert_int_equal(problem->line, line);
    if (section == NULL)
        assert_null(problem->section);
    else
        assert_string_equal(problem->section, section);
    if (key == NULL)
        assert_null(problem->key);
    else
        assert_string_equal(problem->key, key);
    assert_string_equal(problem->reason, reason);
}

static void test_index_matches_iniparser(void **state)
{
    struct ini_source source;
    (void)state;

    load("# comment\n"
         "\n"
         "[Web Site]\n"
         "  Listen =  127.0.0.1:1  ; trailing comment\n"
         "Quoted = \"a;b#c\"\n"
         "empty =\n"
         "[other]\n"
         "joined = one \\\n"
         "  two\n"
         "after = x\n",
         &source);
    assert_non_null(source.dictionary);
    assert_int_equal(source.problem_count, 0);
    assert_int_equal(source.section_count, 2);

    const struct ini_section *web = &source.sections[0];
    assert_string_equal(web->name, "Web Site");
    assert_int_equal(web->line, 3);
    assert_int_equal(web->key_count, 3);
    assert_string_equal(web->keys[0].name, "listen");
    assert_int_equal(web->keys[0].line, 4);
    assert_string_equal(web->keys[0].value, "127.0.0.1:1");
    assert_string_equal(web->keys[1].name, "quoted");
    assert_string_equal(web->keys[1].value, "a;b#c");
    assert_string_equal(web->keys[2].value, "");
    assert_ptr_equal(ini_source_find_key(web, "quoted"), &web->keys[1]);
    assert_null(ini_source_find_key(web, "missing"));

    const struct ini_section *other = &source.sections[1];
    assert_int_equal(other->key_count, 2);
    assert_int_equal(other->keys[0].line, 8);
    assert_string_equal(other->keys[0].value, "one   two");
    assert_int_equal(other->keys[1].line, 10);
    ini_source_free(&source);
    assert_int_equal(source.section_count, 0);
    assert_null(source.dictionary);
}

static void test_duplicates_merge_like_iniparser(void **state)
{
    struct ini_source source;
    (void)state;

    load("[a]\n"
         "k = first\n"
         "[b]\n"
         "[A]\n"
         "K = second\n",
         &source);
    assert_int_equal(source.section_count, 2);
    assert_int_equal(source.sections[0].key_count, 1);
    /* iniparser keeps the last value: the index points at that line. */
    assert_int_equal(source.sections[0].keys[0].line, 5);
    assert_string_equal(source.sections[0].keys[0].value, "second");
    assert_int_equal(source.problem_count, 2);
    assert_problem(&source.problems[0], 4, "A", NULL,
                   "duplicate section: [a] at line 1 is the same (names ignore case)");
    assert_problem(&source.problems[1], 5, "a", "k", "duplicate key (first set at line 2)");
    ini_source_free(&source);
}

static void test_syntax_errors_once_with_lines(void **state)
{
    struct ini_source source;
    (void)state;

    load("orphan = 1\n"
         "[s]\n"
         "a = 1 \\\n"
         "  continued\n"
         "no equals here\n",
         &source);
    /* iniparser refuses the whole file on a syntax error. */
    assert_null(source.dictionary);
    assert_int_equal(source.section_count, 1);
    assert_null(source.sections[0].keys[0].value);
    assert_int_equal(source.problem_count, 2);
    assert_problem(&source.problems[0], 1, NULL, "orphan",
                   "outside any section (put it under [global] or a tunnel section)");
    assert_problem(&source.problems[1], 5, "s", NULL,
                   "syntax error: expected \"key = value\", \"[section]\" or a comment");
    ini_source_free(&source);
}

static void test_long_line_reported_from_iniparser(void **state)
{
    struct ini_source source;
    char text[2048];
    (void)state;

    /* The continued line starts at 2; iniparser counts the physical line 3. */
    strcpy(text, "[s]\nk = \\\n");
    size_t used = strlen(text);
    memset(text + used, 'v', 1500);
    strcpy(text + used + 1500, "\nafter = 1\n");
    load(text, &source);
    assert_null(source.dictionary);
    assert_int_equal(source.problem_count, 1);
    assert_problem(&source.problems[0], 2, "s", NULL,
                   "line too long (iniparser reads at most 1022 characters per line)");
    assert_int_equal(source.sections[0].key_count, 2);
    ini_source_free(&source);
}

static void test_nul_bytes_are_errors(void **state)
{
    struct ini_source source;
    static const char text[] = "[s]\n"
                               "\0allow_cn = alice\n"
                               "k = al\0ice\n"
                               "# a comment\0 too\n"
                               "after = 1\n";
    (void)state;

    /* A NUL at the start hid the whole allow_cn line from both readings. */
    load_bytes(text, sizeof(text) - 1, &source);
    assert_int_equal(source.problem_count, 3);
    assert_problem(&source.problems[0], 2, "s", NULL,
                   "NUL byte at column 1 (libiniparser would read the line only up to it)");
    assert_problem(&source.problems[1], 3, "s", NULL,
                   "NUL byte at column 7 (libiniparser would read the line only up to it)");
    assert_problem(&source.problems[2], 4, "s", NULL,
                   "NUL byte at column 12 (libiniparser would read the line only up to it)");
    ini_source_free(&source);
}

static void test_nul_byte_on_a_continued_line(void **state)
{
    struct ini_source source;
    static const char text[] = "[s]\n"
                               "k = one \\\n"
                               "  tw\0o\n";
    (void)state;

    /* The physical line that holds it, not the first line of the logical one. */
    load_bytes(text, sizeof(text) - 1, &source);
    assert_int_equal(source.problem_count, 1);
    assert_problem(&source.problems[0], 3, "s", NULL,
                   "NUL byte at column 5 (libiniparser would read the line only up to it)");
    ini_source_free(&source);
}

static void test_invalid_utf8_values_are_errors(void **state)
{
    struct ini_source source;
    (void)state;

    load("[s]\n"
         "latin1 = Jos\xe9\n"
         "utf8 = Jos\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92\n"
         "overlong = \xc0\xaf\n"
         "surrogate = a\xed\xa0\x80\n"
         "beyond = \xf4\x90\x80\x80\n"
         "cut = ab\xe2\x82\n"
         "quoted = \"x\xff\"\n"
         "in_comment = fine ; caf\xe9\n"
         "; caf\xe9 in a comment line\n",
         &source);
    assert_int_equal(source.problem_count, 6);
    assert_problem(&source.problems[0], 2, "s", "latin1",
                   "value is not valid UTF-8 (byte 0xE9 at position 4 of the value)");
    assert_problem(&source.problems[1], 4, "s", "overlong",
                   "value is not valid UTF-8 (byte 0xC0 at position 1 of the value)");
    assert_problem(&source.problems[2], 5, "s", "surrogate",
                   "value is not valid UTF-8 (byte 0xED at position 2 of the value)");
    assert_problem(&source.problems[3], 6, "s", "beyond",
                   "value is not valid UTF-8 (byte 0xF4 at position 1 of the value)");
    assert_problem(&source.problems[4], 7, "s", "cut",
                   "value is not valid UTF-8 (byte 0xE2 at position 3 of the value)");
    assert_problem(&source.problems[5], 8, "s", "quoted",
                   "value is not valid UTF-8 (byte 0xFF at position 2 of the value)");
    assert_string_equal(ini_source_find_key(&source.sections[0], "utf8")->value,
                        "Jos\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92");
    ini_source_free(&source);
}

static void test_unterminated_quotes_are_errors(void **state)
{
    struct ini_source source;
    (void)state;

    load("[s]\n"
         "double = \"a;b\n"
         "single = 'abc\n"
         "alone = \"\n"
         "closed = \"x;y#z\"  ; comment\n"
         "empty = \"\"\n"
         "inner = O'Brien\n"
         "mixed = 'say \"hi\"'\n",
         &source);
    assert_int_equal(source.problem_count, 3);
    assert_problem(&source.problems[0], 2, "s", "double", "value opens a quote (\") that is never closed");
    assert_problem(&source.problems[1], 3, "s", "single", "value opens a quote (') that is never closed");
    assert_problem(&source.problems[2], 4, "s", "alone", "value opens a quote (\") that is never closed");
    const struct ini_section *s = &source.sections[0];
    assert_string_equal(ini_source_find_key(s, "closed")->value, "x;y#z");
    assert_string_equal(ini_source_find_key(s, "empty")->value, "");
    assert_string_equal(ini_source_find_key(s, "inner")->value, "O'Brien");
    assert_string_equal(ini_source_find_key(s, "mixed")->value, "say \"hi\"");
    ini_source_free(&source);
}

static void test_unreadable_file(void **state)
{
    struct ini_source source;
    char path[PATH_MAX + 32];
    (void)state;

    snprintf(path, sizeof(path), "%s/absent.ini", test_dir);
    errno = 0;
    assert_int_equal(ini_source_load(path, &source), -1);
    assert_int_equal(errno, ENOENT);
    ini_source_free(&source);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_index_matches_iniparser),
        cmocka_unit_test(test_duplicates_merge_like_iniparser),
        cmocka_unit_test(test_syntax_errors_once_with_lines),
        cmocka_unit_test(test_long_line_reported_from_iniparser),
        cmocka_unit_test(test_nul_bytes_are_errors),
        cmocka_unit_test(test_nul_byte_on_a_continued_line),
        cmocka_unit_test(test_invalid_utf8_values_are_errors),
        cmocka_unit_test(test_unterminated_quotes_are_errors),
        cmocka_unit_test(test_unreadable_file),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
