/* clock_shift.so — for LD_PRELOAD into a ktlstund under test that must see wall-clock
 * time pass faster than it does, without waiting for it: time() answers the real time
 * plus the whole seconds written in the file that KTLSTUN_TEST_CLOCK_SHIFT names, read
 * on every call (no file, or none named: no shift). The daemon's clock for locks and
 * grants (core/utc_time.c) and OpenSSL's certificate checks are time(); the monotonic
 * clock of its timers is left alone. Only the tests load it; the daemon knows nothing
 * of it. Built without sanitizers: an ASan daemon preloads its libasan first. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

time_t time(time_t *out);

time_t time(time_t *out)
{
    struct timespec now = { 0 };
    long long shift = 0;
    char text[32];
    const char *path = getenv("KTLSTUN_TEST_CLOCK_SHIFT");
    FILE *file = path != NULL ? fopen(path, "re") : NULL;
    if (file != NULL) {
        if (fgets(text, sizeof(text), file) != NULL)
            shift = strtoll(text, NULL, 10);
        fclose(file);
    }
    clock_gettime(CLOCK_REALTIME, &now);
    time_t answer = (time_t)(now.tv_sec + shift);
    if (out != NULL)
        *out = answer;
    return answer;
}
