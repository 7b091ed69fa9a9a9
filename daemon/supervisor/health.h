/* health — the answers of /healthz (is the daemon serving at all) and /readyz (may a
 * load balancer send it connections), which supervisor/metrics_server.c serves next
 * to /metrics. Each answer is plain text: "ok" or one reason per line. */
#ifndef KTLSTUN_HEALTH_H
#define KTLSTUN_HEALTH_H

#include <stdint.h>

#include "supervisor/generation.h"

/* What the supervisor knows of itself when a probe comes in. */
struct health_state {
    const struct generation *gen;   /* the configuration being served */
    int stopping;                   /* a stop signal came */
    unsigned live_workers;          /* ready workers of GEN whose loop turned recently */
    int helper_running;             /* the PAM helper process runs */
    int store_state;                /* enum grants_store_state */
    char store_text[256];           /* where it is, or why it cannot be reached */
};

/* Renders /healthz for STATE into a new string the caller frees ("ok\n", or one line
 * saying why not), setting *HEALTHY to 1 or 0. Returns NULL when out of memory. */
char *health_render_live(const struct health_state *state, int *healthy);

/* Renders /readyz for STATE at wall-clock NOW (seconds since the epoch) into a new
 * string the caller frees: "ok\n", or one line per reason a tunnel cannot serve
 * (not listening, certificate outside its validity, login service down), setting
 * *READY to 1 or 0. With a shared state store, one more line says where it is or that
 * it cannot be reached; an unreachable store keeps the gateway ready (granted data
 * connections still pass; every gateway of the store shares the fault), but it says
 * that new logins are refused. Returns NULL when out of memory. */
char *health_render_ready(const struct health_state *state, int64_t now, int *ready);

#endif
