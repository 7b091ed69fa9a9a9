/* metrics — Prometheus text exposition over plain HTTP on metrics_listen, served by
 * the parent from the shared counters. */
#ifndef KTLSTUN_METRICS_H
#define KTLSTUN_METRICS_H

#include <stddef.h>

#include "worker/conn_limit.h"
#include "supervisor/generation.h"
#include "worker/stats.h"

/* Renders every metric for GEN (its tunnels), with WORKERS live workers, into a new
 * string the caller frees; NULL when out of memory. */
char *metrics_render(const struct generation *gen, const struct stats *stats,
                     const struct conn_limit *limits, unsigned workers);

/* Answers one HTTP client on CLIENT_FD (accepted, blocking) with BODY for GET
 * /metrics (or /), 404 otherwise; closes CLIENT_FD. Waits at most a second for the
 * request, so a silent client cannot stall the parent. */
void metrics_answer(int client_fd, const char *body);

#endif
