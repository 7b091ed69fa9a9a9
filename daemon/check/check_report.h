/* check_report — the problems the checks of daemon/check/ find, in the order found.
 *
 * Each problem is where it is ("FILE:LINE: [section] key", like every configuration
 * error) and why, with the fix; an error stops a start or a reload, a warning does
 * not. The checks only collect: their callers print or log. */
#ifndef KTLSTUN_CHECK_REPORT_H
#define KTLSTUN_CHECK_REPORT_H

#include <stddef.h>

#include "config/config.h"

enum check_severity { CHECK_ERROR, CHECK_WARNING };

struct check_problem {
    enum check_severity severity;
    char *where;                  /* "FILE:LINE: [section] key" (owned) */
    char *reason;                 /* owned */
};

struct check_report {
    struct check_problem *problems;
    size_t count, capacity;
    int out_of_memory;            /* a problem was lost: the report counts as an error */
};

/* Adds a problem at LINE of FILE (0: no line) in SECTION (NULL: none) about KEY
 * (NULL: none), the reason formatted from FMT. Out of memory, it sets
 * report->out_of_memory instead. */
void check_report_add(struct check_report *report, enum check_severity severity,
                      const char *file, int line, const char *section, const char *key,
                      const char *fmt, ...) __attribute__((format(printf, 7, 8)));

/* Adds a problem about KEY of TUNNEL, at the line that set KEY (or the section's). */
void check_report_tunnel(struct check_report *report, enum check_severity severity,
                         const struct tunnel_config *tunnel, const char *key,
                         const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Returns how many errors REPORT holds (a lost problem counts as one). */
size_t check_report_errors(const struct check_report *report);

/* Returns 1 when REPORT has a problem whose reason contains TEXT (for tests). */
int check_report_has(const struct check_report *report, enum check_severity severity,
                     const char *text);

/* Frees what REPORT holds and empties it (the struct itself is the caller's). */
void check_report_free(struct check_report *report);

#endif
