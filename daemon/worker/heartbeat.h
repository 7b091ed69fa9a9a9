/* heartbeat — each worker stamps the time at every turn of its event loop into memory
 * shared by fork, so the parent can tell a stuck loop from a quiet one. */
#ifndef KTLSTUN_HEARTBEAT_H
#define KTLSTUN_HEARTBEAT_H

#include <stdint.h>

#include "worker/conn_limit.h"

struct heartbeat;

/* Maps the shared stamps (parent, before forking). NULL after logging. */
struct heartbeat *heartbeat_create(void);

/* Unmaps HB (NULL is fine). */
void heartbeat_free(struct heartbeat *hb);

/* Worker: records NOW_MS (CLOCK_MONOTONIC) for WORKER_SLOT. */
void heartbeat_beat(struct heartbeat *hb, int worker_slot, uint64_t now_ms);

/* Parent: milliseconds since WORKER_SLOT last beat, measured at NOW_MS; 0 if it never
 * did (a worker still starting is not stuck). */
uint64_t heartbeat_age_ms(const struct heartbeat *hb, int worker_slot, uint64_t now_ms);

/* Parent: forgets WORKER_SLOT's stamp (a new worker takes the slot). */
void heartbeat_reset(struct heartbeat *hb, int worker_slot);

#endif
