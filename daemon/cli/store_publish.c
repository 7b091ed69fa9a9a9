#include "cli/store_publish.h"

#include <stdio.h>

#include <libpq-fe.h>

#include "store/store_connect.h"

enum store_publish_result store_publish_event(const struct config *config,
                                              const char *application, struct store_event *event,
                                              char *where, size_t wherelen, char *err,
                                              size_t errlen)
{
    snprintf(where, wherelen, "%s", "");
    snprintf(event->gateway, sizeof(event->gateway), "%s", config->global.gateway_name);
    PGconn *conn = store_connect_open(config->global.state_store, application, err, errlen);
    if (conn == NULL)
        return STORE_PUBLISH_UNREACHABLE;
    store_connect_describe(conn, where, wherelen);
    enum store_publish_result result = STORE_PUBLISH_OK;
    if (store_events_publish(conn, event, err, errlen) < 0)
        result = STORE_PUBLISH_REFUSED;
    PQfinish(conn);
    return result;
}
