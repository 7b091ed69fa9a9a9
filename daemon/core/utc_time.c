#include "core/utc_time.h"

#include <stdio.h>
#include <time.h>

int64_t utc_time_now(void)
{
    return (int64_t)time(NULL);
}

char *utc_time_format(int64_t epoch, char *buf, size_t len)
{
    struct tm tm;
    time_t when = (time_t)epoch;
    if (gmtime_r(&when, &tm) == NULL || strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "%lld", (long long)epoch);
    return buf;
}
