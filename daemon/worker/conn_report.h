/* conn_report — what one connection tells others about itself: its audit line when it
 * ends, the bytes it moved to the shared metrics while it lives, and its record in
 * `ktlstun status`. */
#ifndef KTLSTUN_CONN_REPORT_H
#define KTLSTUN_CONN_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "worker/conn_state.h"
#include "worker/stats.h"

/* Logs C's audit line: it ended for CLOSE_REASON with RESULT (the metrics' label). */
void conn_report_audit(const struct conn *c, const char *close_reason, enum stats_result result);

/* Adds what C moved since its last report to the shared counters, so long-lived
 * tunnels show up in the metrics before they end. */
void conn_report_bytes(struct conn *c);

/* Writes C's status record ("conn") to OUT; NOW_MS is event_loop_now_ms(). */
void conn_report_status(const struct conn *c, uint64_t now_ms, FILE *out);

#endif
