#include "core/log_limit.h"

#include <stdio.h>

int log_limit_admit(struct log_limit *limit, uint64_t now_ms, const char *line)
{
    /* A window that ended with nothing held back has nothing left to say. */
    if (limit->held_back == 0 && now_ms - limit->window_start_ms >= LOG_LIMIT_WINDOW_MS) {
        limit->window_start_ms = now_ms;
        limit->written = 0;
    }
    if (limit->written < LOG_LIMIT_BURST) {
        limit->written++;
        return 1;
    }
    limit->held_back++;
    snprintf(limit->last, sizeof(limit->last), "%s", line);
    return 0;
}

int log_limit_summary(struct log_limit *limit, uint64_t now_ms, char *out, size_t len)
{
    if (limit->held_back == 0 || now_ms - limit->window_start_ms < LOG_LIMIT_WINDOW_MS)
        return 0;
    if (limit->held_back == 1)
        snprintf(out, len, "%s", limit->last);
    else
        snprintf(out, len, "%s (and %u more like it in the last %u s)", limit->last,
                 limit->held_back - 1, (unsigned)(LOG_LIMIT_WINDOW_MS / 1000));
    /* The summary counts as this window's line: a flood that goes on is summed up
     * once per window from now on. */
    limit->window_start_ms = now_ms;
    limit->written = LOG_LIMIT_BURST;
    limit->held_back = 0;
    return 1;
}
