#include "core/log_limited.h"

#include <stdlib.h>

#include "core/log.h"

void log_limited_flush(struct log_limit *limit, uint64_t now_ms)
{
    char summary[LOG_LIMIT_TEXT + 64];
    if (limit != NULL && log_limit_summary(limit, now_ms, summary, sizeof(summary)))
        log_warning("%s", summary);
}

int log_limited_admit(struct log_limit **slot, uint64_t now_ms, const char *line)
{
    /* A line that cannot be limited is written: losing it would hide the flood. */
    if (*slot == NULL && (*slot = calloc(1, sizeof(**slot))) == NULL)
        return 1;
    log_limited_flush(*slot, now_ms);
    return log_limit_admit(*slot, now_ms, line);
}
