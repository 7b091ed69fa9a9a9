#include "ktls/post_handshake.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

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

/* Handles the message at DATA (LEN bytes, whole or not). Returns the bytes a whole
 * message took, 0 when it is unfinished (*NEED: the bytes it takes, header included;
 * POST_HANDSHAKE_HEADER_LEN while even that is cut short), or -1 after HANDLER stopped.
 * UNEXPECTED and MALFORMED go to HANDLER like the others: it decides. */
static long take_message(const unsigned char *data, size_t len, post_handshake_handler handler,
                         void *ctx, size_t *need, int *key_change)
{
    struct post_handshake_message msg;
    if (post_handshake_parse(data, len, &msg) == POST_HANDSHAKE_INCOMPLETE) {
        *need = msg.length;
        return 0;
    }
    if (handler(ctx, data, &msg) != 0)
        return -1;
    *key_change = msg.kind == POST_HANDSHAKE_KEY_UPDATE;
    return (long)msg.length;
}

/* Copies into BUFFER what its open message still lacks from DATA. Returns the bytes
 * taken. */
static size_t top_up(struct post_handshake_buffer *buffer, const unsigned char *data, size_t len,
                     size_t need)
{
    size_t take = need > buffer->len ? need - buffer->len : 0;
    if (take > len)
        take = len;
    memcpy(buffer->bytes + buffer->len, data, take);
    buffer->len += take;
    return take;
}

enum post_handshake_feed_result post_handshake_feed(struct post_handshake_buffer *buffer,
                                                    const unsigned char *data, size_t len,
                                                    post_handshake_handler handler, void *ctx)
{
    size_t pos = 0;
    size_t need = POST_HANDSHAKE_HEADER_LEN;
    int key_change = 0;
    /* Finish the message an earlier record began: its header first, then its body. */
    while (buffer->len > 0 && pos < len) {
        pos += top_up(buffer, data + pos, len - pos, need);
        long taken = take_message(buffer->bytes, buffer->len, handler, ctx, &need, &key_change);
        if (taken < 0)
            return POST_HANDSHAKE_STOPPED;
        if (taken > 0) {
            OPENSSL_cleanse(buffer->bytes, buffer->len);
            buffer->len = 0;
            break;
        }
        if (need > POST_HANDSHAKE_MAX_MESSAGE)
            return POST_HANDSHAKE_OVERSIZE;
    }
    while (pos < len) {
        if (key_change)
            return POST_HANDSHAKE_UNALIGNED;
        long taken = take_message(data + pos, len - pos, handler, ctx, &need, &key_change);
        if (taken < 0)
            return POST_HANDSHAKE_STOPPED;
        if (taken > 0) {
            pos += (size_t)taken;
            continue;
        }
        if (need > POST_HANDSHAKE_MAX_MESSAGE)
            return POST_HANDSHAKE_OVERSIZE;
        if (buffer->bytes == NULL) {
            buffer->bytes = malloc(POST_HANDSHAKE_MAX_MESSAGE);
            if (buffer->bytes == NULL)
                return POST_HANDSHAKE_NO_MEMORY;
        }
        memcpy(buffer->bytes, data + pos, len - pos);
        buffer->len = len - pos;
        pos = len;
    }
    if (buffer->len == 0)
        post_handshake_buffer_free(buffer);
    return POST_HANDSHAKE_FED;
}

int post_handshake_buffer_pending(const struct post_handshake_buffer *buffer)
{
    return buffer->len > 0;
}

void post_handshake_buffer_free(struct post_handshake_buffer *buffer)
{
    if (buffer->bytes != NULL)
        OPENSSL_clear_free(buffer->bytes, POST_HANDSHAKE_MAX_MESSAGE);
    buffer->bytes = NULL;
    buffer->len = 0;
}
