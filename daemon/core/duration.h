/* duration — "30", "30s", "5m", "8h", "1d" (and sums such as "1h30m") to seconds. */
#ifndef KTLSTUN_DURATION_H
#define KTLSTUN_DURATION_H

#include <stdint.h>

/* Parses TEXT. Returns 0 and sets *seconds, or -1 with a static reason in *reason
 * ("empty", "unknown unit 'x' (use s, m, h or d)", "too large", ...). */
int duration_parse(const char *text, uint64_t *seconds, const char **reason);

#endif
