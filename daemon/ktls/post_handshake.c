#include "ktls/post_handshake.h"

#include <string.h>

#include "ktls/tls_record.h"

/* KeyUpdateRequest (RFC 8446 section 4.6.3) */
#define KEY_UPDATE_REQUESTED 1

enum post_handshake_kind post_handshake_parse(const unsigned char *data, size_t len,
                                              struct post_handshake_message *msg)
{
    memset(msg, 0, sizeof(*msg));
    msg->kind = POST_HANDSHAKE_INCOMPLETE;
    msg->length = POST_HANDSHAKE_HEADER_LEN;
    if (len < POST_HANDSHAKE_HEADER_LEN)
        return msg->kind;
    size_t body = ((size_t)data[1] << 16) | ((size_t)data[2] << 8) | data[3];
    msg->type = data[0];
    msg->length = POST_HANDSHAKE_HEADER_LEN + body;
    if (msg->length > len)
        return msg->kind;
    if (msg->type == TLS_HANDSHAKE_NEW_SESSION_TICKET) {
        msg->kind = POST_HANDSHAKE_TICKET;
    } else if (msg->type == TLS_HANDSHAKE_KEY_UPDATE) {
        msg->kind = body == 1 ? POST_HANDSHAKE_KEY_UPDATE : POST_HANDSHAKE_MALFORMED;
        msg->update_requested = body == 1 && data[POST_HANDSHAKE_HEADER_LEN] == KEY_UPDATE_REQUESTED;
    } else {
        msg->kind = POST_HANDSHAKE_UNEXPECTED;
    }
    return msg->kind;
}
