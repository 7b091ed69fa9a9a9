#include "check/check_report.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void add(struct check_report *report, enum check_severity severity, const char *file,
                int line, const char *section, const char *key, const char *fmt, va_list args)
{
    char *where = NULL, *reason = NULL;
    char line_text[16] = "";
    if (line > 0)
        snprintf(line_text, sizeof(line_text), ":%d", line);
    if (report->count == report->capacity) {
        size_t capacity = report->capacity == 0 ? 8 : 2 * report->capacity;
        struct check_problem *grown = realloc(report->problems, capacity * sizeof(*grown));
        if (grown == NULL)
            goto fail;
        report->problems = grown;
        report->capacity = capacity;
    }
    if (asprintf(&where, "%s%s:%s%s%s%s%s", file != NULL ? file : "(config)", line_text,
                 section != NULL ? " [" : "", section != NULL ? section : "",
                 section != NULL ? "]" : "", key != NULL ? " " : "", key != NULL ? key : "") < 0) {
        where = NULL;
        goto fail;
    }
    if (vasprintf(&reason, fmt, args) < 0) {
        reason = NULL;
        goto fail;
    }
    report->problems[report->count++] =
        (struct check_problem){ .severity = severity, .where = where, .reason = reason };
    return;
fail:
    free(where);
    free(reason);
    report->out_of_memory = 1;
}

void check_report_add(struct check_report *report, enum check_severity severity,
                      const char *file, int line, const char *section, const char *key,
                      const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    add(report, severity, file, line, section, key, fmt, args);
    va_end(args);
}

void check_report_tunnel(struct check_report *report, enum check_severity severity,
                         const struct tunnel_config *tunnel, const char *key,
                         const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    add(report, severity, tunnel->source, config_key_line(tunnel, key), tunnel->name, key, fmt,
        args);
    va_end(args);
}

size_t check_report_errors(const struct check_report *report)
{
    size_t errors = report->out_of_memory ? 1 : 0;
    for (size_t i = 0; i < report->count; i++)
        if (report->problems[i].severity == CHECK_ERROR)
            errors++;
    return errors;
}

int check_report_has(const struct check_report *report, enum check_severity severity,
                     const char *text)
{
    for (size_t i = 0; i < report->count; i++)
        if (report->problems[i].severity == severity &&
            strstr(report->problems[i].reason, text) != NULL)
            return 1;
    return 0;
}

void check_report_free(struct check_report *report)
{
    for (size_t i = 0; i < report->count; i++) {
        free(report->problems[i].where);
        free(report->problems[i].reason);
    }
    free(report->problems);
    *report = (struct check_report){ 0 };
}
