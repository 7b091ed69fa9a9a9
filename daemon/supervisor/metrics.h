/* metrics — the Prometheus text exposition of the shared counters, which
 * supervisor/metrics_server.c serves over plain HTTP on metrics_listen. */
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

#endif
