/* generation — one loaded configuration made live: per tunnel its TLS context, its
 * listening socket and its connection-limit slot, plus whom workers run as.
 *
 * The parent builds a generation at start and at each reload; workers forked for it
 * keep it (their copy) until their last connection ends, so old connections keep the
 * configuration they started with. */
#ifndef KTLSTUN_GENERATION_H
#define KTLSTUN_GENERATION_H

#include <openssl/ssl.h>

#include "config/config.h"
#include "worker/conn_limit.h"
#include "core/privdrop.h"
#include "worker/stats.h"

struct tunnel {
    const struct tunnel_config *config;
    SSL_CTX *ssl_ctx;
    int listen_fd;
    int limit_slot;
};

struct generation {
    unsigned number;                 /* 1 at start, +1 per reload */
    struct config *config;           /* owned */
    size_t tunnel_count;
    struct tunnel *tunnels;
    struct privdrop_target run_as;
};

/* Makes CONFIG live: TLS contexts, listeners (taken over from PREVIOUS where the
 * address is unchanged, so a reload never closes a listening socket), limit slots.
 * Takes ownership of CONFIG in every case. Returns NULL after logging every problem. */
struct generation *generation_create(struct config *config, struct generation *previous,
                                     struct conn_limit *limits, struct stats *stats);

/* Writes GEN's access rules (tls/access_rules) into a new sealed memfd, for the
 * workers of older generations. Returns the fd (the caller closes it), or -1 after
 * logging. */
int generation_share_access_rules(const struct generation *gen);

/* Runs the checks of `ktlstund -t` (check/config_check) over CONFIG, a reload's
 * candidate, logging every problem; CURRENT's listeners, which the reload would keep,
 * are not bound again. Returns 0 when CONFIG may replace CURRENT, -1 when it has an
 * error. CONFIG stays the caller's. */
int generation_check(const struct generation *current, const struct config *config);

/* Frees GEN: its TLS contexts, its config, and the listeners it still owns. */
void generation_free(struct generation *gen);

/* Closes GEN's listening sockets without removing unix socket files (a worker giving up
 * its copies while the parent keeps serving them). */
void generation_close_listener_copies(struct generation *gen);

#endif
