/* fuzz_ini_source — libFuzzer target for the configuration file's reader
 * (ini_source_load): our own line index next to libiniparser, on any file contents,
 * NUL bytes and invalid UTF-8 included.
 *
 * Checked: the load succeeds (it fails only when memory runs out); every section,
 * key and problem it reports sits on a line the file has, with the names as promised
 * (sections trimmed and unique ignoring case, keys lowercase and unique per section,
 * every key findable); and when it reports no problem, both readings agree: each key
 * has iniparser's value and each section as many keys in iniparser as in the index.
 *
 *   make fuzz FUZZ_RUN=ini_source
 * tests/unit/test_fuzz_corpus.c replays the corpus in `make check` without clang. */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <iniparser/iniparser.h>

#include "fuzz_check.h"
#include "config/ini_source.h"
#include "fuzz_file.h"

static void check_section(const struct ini_section *section, int lines)
{
    size_t len = strlen(section->name);
    CHECK(len > 0 && !isspace((unsigned char)section->name[0]) &&
          !isspace((unsigned char)section->name[len - 1]));
    CHECK(section->line >= 1 && section->line <= lines);
    for (size_t k = 0; k < section->key_count; k++) {
        const struct ini_key *key = &section->keys[k];
        CHECK(key->line >= 1 && key->line <= lines);
        for (const char *c = key->name; *c != '\0'; c++)
            CHECK(!isupper((unsigned char)*c));
        CHECK(ini_source_find_key(section, key->name) == key);
    }
}

/* No problem reported: iniparser read the same sections and keys. */
static void check_agreement(const struct ini_source *source)
{
    CHECK(source->dictionary != NULL);
    for (size_t s = 0; s < source->section_count; s++) {
        const struct ini_section *section = &source->sections[s];
        for (size_t k = 0; k < section->key_count; k++)
            CHECK(section->keys[k].value != NULL);
        /* iniparser names a key "section:key", so a section name holding ':' overlaps
         * the keys of another section in its counts. */
        if (strchr(section->name, ':') != NULL)
            return;
    }
    for (size_t s = 0; s < source->section_count; s++) {
        const struct ini_section *section = &source->sections[s];
        char lower[1100];
        size_t len = strlen(section->name);
        if (len >= sizeof(lower))
            continue;
        for (size_t i = 0; i <= len; i++)
            lower[i] = (char)tolower((unsigned char)section->name[i]);
        CHECK(iniparser_getsecnkeys(source->dictionary, lower) == (int)section->key_count);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';

    struct ini_source source;
    CHECK(ini_source_load(fuzz_file_path(data, size), &source) == 0);
    for (size_t p = 0; p < source.problem_count; p++) {
        const struct ini_problem *problem = &source.problems[p];
        CHECK(problem->line >= 0 && problem->line <= lines);
        CHECK(problem->reason != NULL && problem->reason[0] != '\0');
    }
    for (size_t s = 0; s < source.section_count; s++) {
        check_section(&source.sections[s], lines);
        for (size_t t = 0; t < s; t++)
            CHECK(strcasecmp(source.sections[s].name, source.sections[t].name) != 0);
    }
    if (source.problem_count == 0)
        check_agreement(&source);
    ini_source_free(&source);
    CHECK(source.section_count == 0 && source.problem_count == 0 && source.dictionary == NULL);
    return 0;
}
