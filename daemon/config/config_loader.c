#include "config/config_loader.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/duration.h"

/* Timeouts end up in milliseconds and timespecs: a year keeps every conversion exact. */
#define DURATION_MAX (365ULL * 24 * 3600)

/* ---------------------------------------------------------------- errors */

void config_loader_error(struct config_loader *ld, int line, const char *section,
                         const char *key, const char *fmt, ...)
{
    char *reason = NULL;
    char *text = NULL;
    char where[32] = "";
    va_list args;

    va_start(args, fmt);
    int printed = vasprintf(&reason, fmt, args);
    va_end(args);
    if (printed < 0) {
        reason = NULL;
        goto fail;
    }
    if (line > 0)
        snprintf(where, sizeof(where), ":%d", line);
    if (asprintf(&text, "%s%s: %s%s%s%s%s%s", ld->path, where,
                 section ? "[" : "", section ? section : "", section ? "] " : "",
                 key ? key : "", key ? ": " : "", reason) < 0) {
        text = NULL;
        goto fail;
    }
    struct config_error *grown = realloc(ld->errors, (ld->error_count + 1) * sizeof(*grown));
    if (grown == NULL)
        goto fail;
    ld->errors = grown;
    ld->errors[ld->error_count] = (struct config_error){ line, ld->error_count, text };
    ld->error_count++;
    free(reason);
    return;

fail:
    ld->out_of_memory = 1;
    free(text);
    free(reason);
}

static int compare_errors(const void *a, const void *b)
{
    const struct config_error *left = a, *right = b;
    if (left->line != right->line)
        return left->line < right->line ? -1 : 1;
    return left->sequence < right->sequence ? -1 : left->sequence > right->sequence;
}

char *config_loader_join_errors(struct config_loader *ld)
{
    size_t total = 1;
    char *joined;

    if (ld->out_of_memory)
        config_loader_error(ld, 0, NULL, NULL, "out of memory");
    qsort(ld->errors, ld->error_count, sizeof(*ld->errors), compare_errors);
    for (size_t i = 0; i < ld->error_count; i++)
        total += strlen(ld->errors[i].text) + 1;
    if ((joined = malloc(total)) == NULL)
        return NULL;
    size_t used = 0;
    for (size_t i = 0; i < ld->error_count; i++) {
        size_t len = strlen(ld->errors[i].text);
        memcpy(joined + used, ld->errors[i].text, len);
        used += len;
        joined[used++] = '\n';
    }
    joined[used] = '\0';
    return joined;
}

void config_loader_free(struct config_loader *ld)
{
    for (size_t i = 0; i < ld->error_count; i++)
        free(ld->errors[i].text);
    free(ld->errors);
    ini_source_free(&ld->source);
    free(ld->directory);
}

/* ---------------------------------------------------------------- value helpers */

int config_loader_number(const char *text, uint64_t min, uint64_t max, uint64_t *value)
{
    uint64_t number = 0;

    if (*text == '\0')
        return -1;
    for (const char *cursor = text; *cursor != '\0'; cursor++) {
        if (!isdigit((unsigned char)*cursor))
            return -1;
        number = number * 10 + (uint64_t)(*cursor - '0');
        if (number > max)
            return -1;
    }
    if (number < min)
        return -1;
    *value = number;
    return 0;
}

int config_loader_timeout(struct config_loader *ld, const struct ini_section *section,
                          const struct ini_key *key, uint64_t minimum, uint64_t *seconds)
{
    const char *reason;
    uint64_t parsed;

    if (duration_parse(key->value, &parsed, &reason) < 0) {
        config_loader_error(ld, key->line, section->name, key->name, "%s", reason);
        return -1;
    }
    if (parsed < minimum) {
        config_loader_error(ld, key->line, section->name, key->name, "must be at least %llus",
                            (unsigned long long)minimum);
        return -1;
    }
    if (parsed > DURATION_MAX) {
        config_loader_error(ld, key->line, section->name, key->name, "too large (at most 365d)");
        return -1;
    }
    *seconds = parsed;
    return 0;
}

int config_loader_yes_no(struct config_loader *ld, const struct ini_section *section,
                         const struct ini_key *key, int *value)
{
    static const char *const yes[] = { "yes", "true", "on", "1" };
    static const char *const no[] = { "no", "false", "off", "0" };
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(key->value, yes[i]) == 0) {
            *value = 1;
            return 0;
        }
        if (strcasecmp(key->value, no[i]) == 0) {
            *value = 0;
            return 0;
        }
    }
    config_loader_error(ld, key->line, section->name, key->name, "'%s' is not yes or no",
                        key->value);
    return -1;
}

int config_loader_require_value(struct config_loader *ld, const struct ini_section *section,
                                const struct ini_key *key)
{
    if (key->value[0] != '\0')
        return 0;
    config_loader_error(ld, key->line, section->name, key->name, "empty value");
    return -1;
}

int config_loader_copy_string(struct config_loader *ld, const struct ini_section *section,
                              const struct ini_key *key, char **field)
{
    if (config_loader_require_value(ld, section, key) < 0)
        return -1;
    free(*field);
    if ((*field = strdup(key->value)) == NULL) {
        ld->out_of_memory = 1;
        return -1;
    }
    return 0;
}

/* Relative paths are taken from the config file's directory, so a config and its
 * certificates can move together. */
static char *absolute_path(struct config_loader *ld, const char *path)
{
    char *joined;

    if (path[0] == '/')
        joined = strdup(path);
    else if (asprintf(&joined, "%s/%s", ld->directory, path) < 0)
        joined = NULL;
    if (joined == NULL)
        ld->out_of_memory = 1;
    return joined;
}

/* Opens PATH to prove it can be read at load time, not at the first handshake; the TLS
 * module parses the PEM. O_NONBLOCK keeps a FIFO from hanging the load. */
static int check_readable(const char *path, int directory_allowed, int *is_directory,
                          int *error)
{
    struct stat info;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

    if (fd < 0) {
        *error = errno;
        return -1;
    }
    int result = -1;
    if (fstat(fd, &info) < 0) {
        *error = errno;
    } else if (S_ISDIR(info.st_mode)) {
        if (directory_allowed) {
            *is_directory = 1;
            result = 0;
        } else {
            *error = EISDIR;
        }
    } else if (!S_ISREG(info.st_mode)) {
        *error = EINVAL;
    } else {
        *is_directory = 0;
        result = 0;
    }
    close(fd);
    return result;
}

int config_loader_file(struct config_loader *ld, const struct ini_section *section,
                       const struct ini_key *key, int directory_allowed, char **field,
                       int *is_directory)
{
    int error = 0;
    int directory = 0;

    if (config_loader_require_value(ld, section, key) < 0)
        return -1;
    char *path = absolute_path(ld, key->value);
    if (path == NULL)
        return -1;
    if (check_readable(path, directory_allowed, &directory, &error) < 0) {
        config_loader_error(ld, key->line, section->name, key->name, "%s: %s", path,
                            error == EINVAL ? "not a regular file" : strerror(error));
        free(path);
        return -1;
    }
    free(*field);
    *field = path;
    if (is_directory != NULL)
        *is_directory = directory;
    return 0;
}

int config_loader_list(struct config_loader *ld, const struct ini_section *section,
                       const struct ini_key *key, struct string_list *list)
{
    string_list_clear(list);
    int appended = string_list_split(list, key->value);
    if (appended < 0) {
        ld->out_of_memory = 1;
        return -1;
    }
    if (appended == 0) {
        config_loader_error(ld, key->line, section->name, key->name, "empty list");
        return -1;
    }
    return 0;
}
