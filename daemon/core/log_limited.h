/* log_limited — a struct log_limit made on first use and its summary written at
 * warning: what every rate-limited warning of a worker does around log_limit. */
#ifndef KTLSTUN_LOG_LIMITED_H
#define KTLSTUN_LOG_LIMITED_H

#include <stdint.h>

#include "core/log_limit.h"

/* LINE is due at NOW_MS under *SLOT (NULL until first use, then owned by the slot).
 * Writes a summary that fell due first. Returns 1 when the caller writes LINE now
 * (also when no limit could be made), 0 when it is held back. */
int log_limited_admit(struct log_limit **slot, uint64_t now_ms, const char *line);

/* Writes LIMIT's summary at warning when its window ended by NOW_MS; LIMIT may be NULL. */
void log_limited_flush(struct log_limit *limit, uint64_t now_ms);

#endif
