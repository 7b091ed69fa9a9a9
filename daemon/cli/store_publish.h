/* store_publish — one event published to every gateway through the shared state store
 * by `ktlstun` itself, for the subcommands that do so while ktlstund is not running
 * here (unlock, revoke) or to reach the other gateways (disconnect). */
#ifndef KTLSTUN_STORE_PUBLISH_H
#define KTLSTUN_STORE_PUBLISH_H

#include <stddef.h>

#include "config/config.h"
#include "store/store_events.h"

enum store_publish_result {
    STORE_PUBLISH_OK = 0,
    STORE_PUBLISH_UNREACHABLE,   /* no connection: ERR says why */
    STORE_PUBLISH_REFUSED,       /* connected to WHERE, but the event was not written */
};

/* Connects to CONFIG's state_store (which must be set) as APPLICATION (libpq's
 * application_name), publishes EVENT with CONFIG's gateway_name as its gateway (and
 * sets its id), and disconnects. Puts the store's HOST:PORT in WHERE (WHERELEN bytes)
 * once connected, and the reason of a failure in ERR (ERRLEN bytes). Returns what
 * happened. */
enum store_publish_result store_publish_event(const struct config *config,
                                              const char *application, struct store_event *event,
                                              char *where, size_t wherelen, char *err,
                                              size_t errlen);

#endif
