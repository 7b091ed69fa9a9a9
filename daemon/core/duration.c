#include "core/duration.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

struct duration_unit {
    const char *name;
    uint64_t seconds;
};

/* The short forms are the documented ones; the long forms are what systemd users type. */
static const struct duration_unit duration_units[] = {
    { "s", 1 },      { "sec", 1 },      { "secs", 1 },    { "second", 1 },  { "seconds", 1 },
    { "m", 60 },     { "min", 60 },     { "mins", 60 },   { "minute", 60 }, { "minutes", 60 },
    { "h", 3600 },   { "hr", 3600 },    { "hour", 3600 }, { "hours", 3600 },
    { "d", 86400 },  { "day", 86400 },  { "days", 86400 },
};

/* The reason names the unit the user wrote; one buffer per thread keeps it "static"
 * for the caller without a data race. */
static __thread char unknown_unit_reason[96];

static int lookup_unit(const char *unit, size_t len, uint64_t *seconds)
{
    for (size_t i = 0; i < sizeof(duration_units) / sizeof(duration_units[0]); i++) {
        if (strlen(duration_units[i].name) == len
            && strncasecmp(duration_units[i].name, unit, len) == 0) {
            *seconds = duration_units[i].seconds;
            return 0;
        }
    }
    return -1;
}

static const char *skip_blanks(const char *cursor)
{
    while (*cursor == ' ' || *cursor == '\t')
        cursor++;
    return cursor;
}

int duration_parse(const char *text, uint64_t *seconds, const char **reason)
{
    uint64_t total = 0;
    int components = 0;
    const char *cursor = skip_blanks(text);

    if (*cursor == '\0') {
        *reason = "empty";
        return -1;
    }
    if (*cursor == '-') {
        *reason = "negative durations are not allowed";
        return -1;
    }
    while (*cursor != '\0') {
        if (!isdigit((unsigned char)*cursor)) {
            *reason = "expected a number (e.g. 30s, 5m, 8h, 1d or 1h30m)";
            return -1;
        }
        uint64_t number = 0;
        while (isdigit((unsigned char)*cursor)) {
            unsigned digit = (unsigned)(*cursor - '0');
            if (number > (UINT64_MAX - digit) / 10) {
                *reason = "too large";
                return -1;
            }
            number = number * 10 + digit;
            cursor++;
        }
        cursor = skip_blanks(cursor);
        const char *unit = cursor;
        while (isalpha((unsigned char)*cursor))
            cursor++;
        size_t unit_len = (size_t)(cursor - unit);
        uint64_t multiplier = 1;
        if (unit_len == 0) {
            /* "90" means seconds, but "1h30" is ambiguous (minutes? seconds?): refuse it. */
            if (*cursor != '\0' || components > 0) {
                *reason = *cursor != '\0' && !isdigit((unsigned char)*cursor)
                        ? "expected a unit (s, m, h or d) after the number"
                        : "a number without a unit must stand alone (write 1h30m, not 1h30)";
                return -1;
            }
        } else if (lookup_unit(unit, unit_len, &multiplier) < 0) {
            snprintf(unknown_unit_reason, sizeof(unknown_unit_reason),
                     "unknown unit '%.*s' (use s, m, h or d)", (int)(unit_len > 16 ? 16 : unit_len),
                     unit);
            *reason = unknown_unit_reason;
            return -1;
        }
        if (number > UINT64_MAX / multiplier || total > UINT64_MAX - number * multiplier) {
            *reason = "too large";
            return -1;
        }
        total += number * multiplier;
        components++;
        cursor = skip_blanks(cursor);
    }
    *seconds = total;
    return 0;
}
