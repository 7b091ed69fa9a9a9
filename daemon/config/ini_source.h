/* ini_source — an INI file read twice: by libiniparser for the values, and by a small
 * line index of our own for what iniparser 4.1 does not give: line numbers of keys,
 * section names as written (it lowercases them), and duplicate sections and keys
 * (it lets the later one win silently). The index follows iniparser's own rules
 * (comments, continuation lines, lowercasing) so both readings agree. */
#ifndef KTLSTUN_INI_SOURCE_H
#define KTLSTUN_INI_SOURCE_H

#include <stddef.h>

struct ini_key {
    char *name;                /* lowercased, as iniparser stores it */
    int line;                  /* line of the last assignment: the one whose value counts */
    const char *value;         /* iniparser's value (owned by it); NULL when iniparser
                                  rejected the file */
};

struct ini_section {
    char *name;                /* as written, blanks around it trimmed */
    int line;                  /* line of the first [name] header */
    size_t key_count;
    struct ini_key *keys;      /* a section written twice is merged, like iniparser does */
};

struct ini_problem {
    int line;                  /* 0 = the file as a whole */
    char *section;             /* as written, or NULL */
    char *key;                 /* lowercased, or NULL */
    char *reason;
};

struct ini_source {
    size_t section_count;
    struct ini_section *sections;
    size_t problem_count;
    struct ini_problem *problems;   /* syntax errors, duplicates, keys outside sections,
                                       NUL bytes, values not UTF-8, unclosed quotes */
    void *dictionary;               /* iniparser's; NULL when it rejected the file */
};

/* Reads PATH into *SOURCE (which it zeroes first). Syntax errors, duplicate sections or
 * keys, keys outside any section, NUL bytes (the physical line that holds one), values
 * that are not UTF-8 and values whose opening quote is never closed do not fail the
 * call: they are listed in source->problems with their line. Installs a process-wide iniparser error callback
 * for the duration of the call, so it is not thread-safe. Returns 0, or -1 with errno
 * set when the file cannot be read or memory runs out; free *SOURCE with
 * ini_source_free() in both cases. */
int ini_source_load(const char *path, struct ini_source *source);

/* Returns the key NAME (lowercase) of SECTION, or NULL. */
const struct ini_key *ini_source_find_key(const struct ini_section *section, const char *name);

/* Frees everything SOURCE holds and zeroes it. */
void ini_source_free(struct ini_source *source);

#endif
