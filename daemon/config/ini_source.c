#include "config/ini_source.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <iniparser/iniparser.h>

#define NO_SECTION (-1)
#define SKIPPED_SECTION (-2)   /* after "[]" or an allocation failure: keys not indexed */

/* What each physical line belongs to, so iniparser's complaints (which name the last
 * physical line of a continued line) map onto the lines our index reports. */
struct line_origin {
    int first_line;
    long section;
    int has_nul;       /* reported by the index, so iniparser's "too long" is noise */
};

struct loading {
    struct ini_source *source;
    struct line_origin *origins;     /* indexed by physical line number */
    size_t origin_capacity;
    int failed_errno;                /* set on the first allocation failure */
};

/* iniparser's error callback has no user pointer: this is the load in progress. */
static struct loading *loading_now;

static const char *section_name_at(const struct loading *ld, long section)
{
    return section >= 0 ? ld->source->sections[section].name : NULL;
}

static void add_problem(struct loading *ld, int line, const char *section, const char *key,
                        const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void add_problem(struct loading *ld, int line, const char *section, const char *key,
                        const char *fmt, ...)
{
    struct ini_source *source = ld->source;
    struct ini_problem problem = { .line = line };
    va_list args;

    if (ld->failed_errno != 0)
        return;
    va_start(args, fmt);
    int printed = vasprintf(&problem.reason, fmt, args);
    va_end(args);
    if (printed < 0) {
        problem.reason = NULL;
        goto fail;
    }
    if (section != NULL && (problem.section = strdup(section)) == NULL)
        goto fail;
    if (key != NULL && (problem.key = strdup(key)) == NULL)
        goto fail;
    struct ini_problem *grown = realloc(source->problems,
                                        (source->problem_count + 1) * sizeof(*grown));
    if (grown == NULL)
        goto fail;
    source->problems = grown;
    source->problems[source->problem_count++] = problem;
    return;

fail:
    ld->failed_errno = ENOMEM;
    free(problem.key);
    free(problem.section);
    free(problem.reason);
}

static int has_syntax_problem(const struct ini_source *source, int line)
{
    for (size_t i = 0; i < source->problem_count; i++)
        if (source->problems[i].line == line
            && strncmp(source->problems[i].reason, "syntax error", 12) == 0)
            return 1;
    return 0;
}

/* Same as iniparser's strstrip: isspace() on both ends, in place. */
static char *strip(char *text)
{
    /* The analyzer does not see getline() fill the line this points into. */
    // NOLINTNEXTLINE(clang-analyzer-core.uninitialized.ArraySubscript)
    while (isspace((unsigned char)*text))
        text++;
    size_t len = strlen(text);
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        text[--len] = '\0';
    return text;
}

static void lowercase(char *text)
{
    for (; *text != '\0'; text++)
        *text = (char)tolower((unsigned char)*text);
}

static long find_section(const struct ini_source *source, const char *name)
{
    for (size_t i = 0; i < source->section_count; i++)
        if (strcasecmp(source->sections[i].name, name) == 0)
            return (long)i;
    return NO_SECTION;
}

static long open_section(struct loading *ld, char *header, int line)
{
    struct ini_source *source = ld->source;
    /* iniparser reads the name up to the first ']' ("[%[^]]"). */
    char *inner = header + 1;
    char *close = strchr(inner, ']');
    int stray_bracket = close != NULL && close[1] != '\0';
    if (close != NULL)
        *close = '\0';
    int bracket_only = *inner == '\0';
    char *name = strip(inner);

    if (*name == '\0') {
        add_problem(ld, line, NULL, NULL, "empty section name");
        /* iniparser 4.1 files the keys after "[ ]" with those before any header, and
         * those after "[]" under a stray truncation of the previous name: either way
         * the load fails on this problem, so only the former are worth reporting. */
        return bracket_only ? SKIPPED_SECTION : NO_SECTION;
    }
    if (stray_bracket)
        add_problem(ld, line, name, NULL, "unexpected text after ']' in the section header");

    long existing = find_section(source, name);
    if (existing >= 0) {
        const struct ini_section *first = &source->sections[existing];
        if (strcmp(first->name, name) == 0)
            add_problem(ld, line, name, NULL, "duplicate section (first at line %d)", first->line);
        else
            add_problem(ld, line, name, NULL,
                        "duplicate section: [%s] at line %d is the same (names ignore case)",
                        first->name, first->line);
        return existing;
    }

    struct ini_section *grown = realloc(source->sections,
                                        (source->section_count + 1) * sizeof(*grown));
    if (grown == NULL) {
        ld->failed_errno = ENOMEM;
        return SKIPPED_SECTION;
    }
    source->sections = grown;
    struct ini_section *section = &source->sections[source->section_count];
    memset(section, 0, sizeof(*section));
    section->line = line;
    if ((section->name = strdup(name)) == NULL) {
        ld->failed_errno = ENOMEM;
        return SKIPPED_SECTION;
    }
    return (long)source->section_count++;
}

/* Returns the offset of the first byte of TEXT[0, LEN) that does not begin a valid
 * UTF-8 sequence (overlong forms, surrogates and code points past U+10FFFF are not
 * valid), or LEN when there is none. */
static size_t utf8_invalid_at(const unsigned char *text, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char lead = text[i], low = 0x80, high = 0xbf;
        size_t follow;
        if (lead < 0x80) {
            i++;
            continue;
        }
        if (lead >= 0xc2 && lead <= 0xdf) {
            follow = 1;
        } else if (lead >= 0xe0 && lead <= 0xef) {
            follow = 2;
            low = lead == 0xe0 ? 0xa0 : 0x80;    /* overlong below */
            high = lead == 0xed ? 0x9f : 0xbf;   /* surrogates above */
        } else if (lead >= 0xf0 && lead <= 0xf4) {
            follow = 3;
            low = lead == 0xf0 ? 0x90 : 0x80;
            high = lead == 0xf4 ? 0x8f : 0xbf;   /* past U+10FFFF above */
        } else {
            return i;
        }
        if (len - i <= follow || text[i + 1] < low || text[i + 1] > high)
            return i;
        for (size_t k = 2; k <= follow; k++)
            if ((text[i + k] & 0xc0) != 0x80)
                return i;
        i += follow + 1;
    }
    return len;
}

/* Checks the value after "KEY =" the way iniparser will read it: quoted ("..." or
 * '...') up to the closing quote, otherwise up to the first ';' or '#'. iniparser would
 * take an unclosed quote's text as the value without a word, and bytes that are not
 * UTF-8 would reach allow rules, logs and status output as they are. */
static void check_value(struct loading *ld, const char *section, const char *key,
                        const char *text, int line)
{
    while (isspace((unsigned char)*text))
        text++;
    size_t len;
    if (*text == '"' || *text == '\'') {
        const char *close = strchr(text + 1, *text);
        if (close == NULL) {
            add_problem(ld, line, section, key, "value opens a quote (%c) that is never closed", *text);
            return;
        }
        text++;
        len = (size_t)(close - text);
    } else {
        len = strcspn(text, ";#");
        /* A PKCS#11 URI separates its attributes with ';': cut there, it would name
         * another key of the token, or none. */
        if (text[len] == ';' && strncasecmp(text, "pkcs11:", 7) == 0) {
            add_problem(ld, line, section, key, "a pkcs11: URI holds ';', which starts a "
                        "comment here: put the value in double quotes");
            return;
        }
    }
    size_t bad = utf8_invalid_at((const unsigned char *)text, len);
    if (bad < len)
        add_problem(ld, line, section, key,
                    "value is not valid UTF-8 (byte 0x%02X at position %zu of the value)",
                    (unsigned char)text[bad], bad + 1);
}

static void add_key(struct loading *ld, long section_index, char *text, char *equals, int line)
{
    *equals = '\0';
    char *name = strip(text);
    lowercase(name);

    if (section_index == SKIPPED_SECTION)
        return;
    if (section_index == NO_SECTION) {
        add_problem(ld, line, NULL, name,
                    "outside any section (put it under [global] or a tunnel section)");
        return;
    }

    struct ini_section *section = &ld->source->sections[section_index];
    check_value(ld, section->name, name, equals + 1, line);
    for (size_t i = 0; i < section->key_count; i++) {
        struct ini_key *key = &section->keys[i];
        if (strcmp(key->name, name) == 0) {
            add_problem(ld, line, section->name, name, "duplicate key (first set at line %d)",
                        key->line);
            /* iniparser keeps the last value, so its line is the one to report. */
            key->line = line;
            return;
        }
    }
    struct ini_key *grown = realloc(section->keys, (section->key_count + 1) * sizeof(*grown));
    if (grown == NULL) {
        ld->failed_errno = ENOMEM;
        return;
    }
    section->keys = grown;
    struct ini_key *key = &section->keys[section->key_count];
    memset(key, 0, sizeof(*key));
    key->line = line;
    if ((key->name = strdup(name)) == NULL) {
        ld->failed_errno = ENOMEM;
        return;
    }
    section->key_count++;
}

/* Classifies one logical line the way iniparser_line() does. */
static long index_line(struct loading *ld, char *raw, int line, long section)
{
    char *text = strip(raw);
    size_t len = strlen(text);

    if (len == 0 || text[0] == '#' || text[0] == ';')
        return section;
    if (text[0] == '[' && text[len - 1] == ']')
        return open_section(ld, text, line);

    char *equals = strchr(text, '=');
    if (equals == NULL || equals == text) {
        add_problem(ld, line, section_name_at(ld, section), NULL,
                    "syntax error: expected \"key = value\", \"[section]\" or a comment");
        return section;
    }
    add_key(ld, section, text, equals, line);
    return section;
}

static int remember_origin(struct loading *ld, int line, int first_line, long section)
{
    if ((size_t)line >= ld->origin_capacity) {
        size_t capacity = ld->origin_capacity ? ld->origin_capacity * 2 : 64;
        while (capacity <= (size_t)line)
            capacity *= 2;
        struct line_origin *grown = realloc(ld->origins, capacity * sizeof(*grown));
        if (grown == NULL)
            return -1;
        ld->origins = grown;
        ld->origin_capacity = capacity;
    }
    ld->origins[line].first_line = first_line;
    ld->origins[line].section = section;
    ld->origins[line].has_nul = 0;
    return 0;
}

static int append_text(char **buffer, size_t *len, size_t *capacity, const char *text,
                       size_t text_len)
{
    if (*len + text_len + 1 > *capacity) {
        size_t wanted = (*len + text_len + 1) * 2;
        char *grown = realloc(*buffer, wanted);
        if (grown == NULL)
            return -1;
        *buffer = grown;
        *capacity = wanted;
    }
    memcpy(*buffer + *len, text, text_len);
    *len += text_len;
    (*buffer)[*len] = '\0';
    return 0;
}

static int index_file(struct loading *ld, FILE *in)
{
    int result = -1;
    char *physical = NULL;
    size_t physical_capacity = 0;
    char *logical = NULL;
    size_t logical_len = 0, logical_capacity = 0;
    int line = 0, first_line = 0, continuing = 0;
    long section = NO_SECTION;
    ssize_t got;

    errno = 0;
    while ((got = getline(&physical, &physical_capacity, in)) >= 0) {
        line++;
        if (!continuing)
            first_line = line;
        if (remember_origin(ld, line, first_line, section) < 0)
            goto out;
        /* Both readings stop at a NUL: one at the start makes the line vanish (an
         * allow_cn line, say) without a word. */
        size_t len = strnlen(physical, (size_t)got);
        if (len < (size_t)got) {
            ld->origins[line].has_nul = 1;
            add_problem(ld, line, section_name_at(ld, section), NULL,
                        "NUL byte at column %zu (libiniparser would read the line only up to it)",
                        len + 1);
        }
        while (len > 0 && isspace((unsigned char)physical[len - 1]))
            len--;
        /* A trailing backslash joins the next line, as in iniparser. */
        continuing = len > 0 && physical[len - 1] == '\\';
        if (continuing)
            len--;
        if (append_text(&logical, &logical_len, &logical_capacity, physical, len) < 0)
            goto out;
        if (continuing)
            continue;
        section = index_line(ld, logical, first_line, section);
        logical_len = 0;
        if (ld->failed_errno != 0)
            goto out;
        errno = 0;
    }
    if (ferror(in))
        goto out;
    if (continuing)
        add_problem(ld, first_line, section_name_at(ld, section), NULL,
                    "the last line ends with '\\' but nothing follows it");
    if (ld->failed_errno == 0)
        result = 0;

out:
    if (result < 0)
        errno = ld->failed_errno != 0 ? ld->failed_errno : errno != 0 ? errno : ENOMEM;
    free(logical);
    free(physical);
    return result;
}

/* Turns iniparser's messages ("iniparser: syntax error in FILE (LINE):\n-> TEXT") into
 * problems. The file name may hold anything, so the line number is the last
 * "(digits)" of the first line. */
static int iniparser_complaint(const char *format, ...)
{
    char message[1024];
    va_list args;

    va_start(args, format);
    vsnprintf(message, sizeof(message), format, args);
    va_end(args);
    if (loading_now == NULL)
        return 0;
    struct loading *ld = loading_now;

    char *newline = strchr(message, '\n');
    if (newline != NULL)
        *newline = '\0';
    int physical = 0;
    char *open = strrchr(message, '(');
    if (open != NULL) {
        char *end;
        long number = strtol(open + 1, &end, 10);
        if (end != open + 1 && *end == ')' && number > 0 && number < 1000000000)
            physical = (int)number;
    }
    int line = physical;
    const char *section = NULL;
    if (physical > 0 && (size_t)physical < ld->origin_capacity) {
        line = ld->origins[physical].first_line;
        section = section_name_at(ld, ld->origins[physical].section);
    }

    if (strstr(message, "syntax error") != NULL) {
        if (!has_syntax_problem(ld->source, line))
            add_problem(ld, line, section, NULL,
                        "syntax error: expected \"key = value\", \"[section]\" or a comment");
    } else if (strstr(message, "too long") != NULL) {
        /* iniparser measures lines with strlen: a NUL reads as a line cut short. */
        if (physical > 0 && (size_t)physical < ld->origin_capacity && ld->origins[physical].has_nul)
            return 0;
        add_problem(ld, line, section, NULL,
                    "line too long (iniparser reads at most 1022 characters per line)");
    } else {
        const char *text = message;
        if (strncmp(text, "iniparser: ", 11) == 0)
            text += 11;
        add_problem(ld, 0, NULL, NULL, "%s", text);
    }
    return 0;
}

static int fill_values(struct loading *ld)
{
    struct ini_source *source = ld->source;

    for (size_t s = 0; s < source->section_count; s++) {
        struct ini_section *section = &source->sections[s];
        for (size_t k = 0; k < section->key_count; k++) {
            struct ini_key *key = &section->keys[k];
            char *entry;
            if (asprintf(&entry, "%s:%s", section->name, key->name) < 0)
                return -1;
            /* iniparser_getstring lowercases ENTRY itself. */
            key->value = iniparser_getstring(source->dictionary, entry, NULL);
            free(entry);
            if (key->value == NULL)
                add_problem(ld, key->line, section->name, key->name,
                            "iniparser did not read a value here (check the quoting)");
        }
    }
    return ld->failed_errno == 0 ? 0 : -1;
}

int ini_source_load(const char *path, struct ini_source *source)
{
    int result = -1;
    int saved_errno = 0;
    struct loading ld = { .source = source };
    FILE *in = NULL;

    memset(source, 0, sizeof(*source));
    if ((in = fopen(path, "re")) == NULL) {
        saved_errno = errno;
        goto out;
    }
    if (index_file(&ld, in) < 0) {
        saved_errno = errno;
        goto out;
    }

    loading_now = &ld;
    iniparser_set_error_callback(iniparser_complaint);
    source->dictionary = iniparser_load(path);
    iniparser_set_error_callback(NULL);
    loading_now = NULL;
    if (ld.failed_errno != 0) {
        saved_errno = ld.failed_errno;
        goto out;
    }

    if (source->dictionary != NULL && fill_values(&ld) < 0) {
        saved_errno = ENOMEM;
        goto out;
    }
    result = 0;

out:
    if (in != NULL)
        fclose(in);
    free(ld.origins);
    if (result < 0)
        errno = saved_errno != 0 ? saved_errno : EIO;
    return result;
}

const struct ini_key *ini_source_find_key(const struct ini_section *section, const char *name)
{
    for (size_t i = 0; i < section->key_count; i++)
        if (strcmp(section->keys[i].name, name) == 0)
            return &section->keys[i];
    return NULL;
}

void ini_source_free(struct ini_source *source)
{
    for (size_t i = 0; i < source->problem_count; i++) {
        free(source->problems[i].reason);
        free(source->problems[i].key);
        free(source->problems[i].section);
    }
    free(source->problems);
    for (size_t s = 0; s < source->section_count; s++) {
        for (size_t k = 0; k < source->sections[s].key_count; k++)
            free(source->sections[s].keys[k].name);
        free(source->sections[s].keys);
        free(source->sections[s].name);
    }
    free(source->sections);
    if (source->dictionary != NULL)
        iniparser_freedict(source->dictionary);
    memset(source, 0, sizeof(*source));
}
