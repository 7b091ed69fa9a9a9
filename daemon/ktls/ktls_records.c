#include "ktls/ktls_records.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <linux/tls.h>
#include <openssl/ssl.h>

#include "core/event_loop.h"
#include "core/log.h"
#include "ktls/ktls_rekey.h"
#include "ktls/post_handshake.h"
#include "ktls/tls_record.h"
#include "ktls_uapi.h"

static void set_end(struct ktls_records *k, int clean, const char *what, const char *detail)
{
    k->end.what = what;
    k->end.clean = clean;
    snprintf(k->end.detail, sizeof(k->end.detail), "%s", detail != NULL ? detail : "");
}

void ktls_records_init(struct ktls_records *k, int fd, struct ktls_offload_state *offload,
                       struct ktls_secrets *secrets, int *tx_shut)
{
    memset(k, 0, sizeof(*k));
    k->fd = fd;
    k->offload = offload;
    k->secrets = secrets;
    k->tx_shut = tx_shut;
    k->tx_record_limit = ktls_rekey_record_limit(offload->suite.cipher);
    offload->tx_usage.since_ms = event_loop_now_ms();
}

int ktls_records_send(int fd, unsigned char type, const void *payload, size_t len)
{
    char control[CMSG_SPACE(sizeof(unsigned char))];
    struct iovec iov = { .iov_base = (void *)payload, .iov_len = len };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                          .msg_controllen = sizeof(control) };
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_TLS;
    cmsg->cmsg_type = TLS_SET_RECORD_TYPE;
    cmsg->cmsg_len = CMSG_LEN(sizeof(unsigned char));
    *CMSG_DATA(cmsg) = type;
    if (sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)len)
        return 0;
    return errno == EAGAIN ? 1 : -1;
}

ssize_t ktls_records_recv(int fd, void *buf, size_t cap, unsigned char *type)
{
    char control[CMSG_SPACE(sizeof(unsigned char))];
    struct iovec iov = { .iov_base = buf, .iov_len = cap };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                          .msg_controllen = sizeof(control) };
    ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT);
    *type = TLS_RECORD_APPLICATION_DATA;
    if (n <= 0)
        return n;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    if (cmsg != NULL && cmsg->cmsg_level == SOL_TLS && cmsg->cmsg_type == TLS_GET_RECORD_TYPE)
        *type = *CMSG_DATA(cmsg);
    return n;
}

void ktls_records_fail_decrypt(struct ktls_records *k)
{
    static const unsigned char bad_record_mac[2] = { TLS_ALERT_FATAL, TLS_ALERT_BAD_RECORD_MAC };
    if (!*k->tx_shut) {
        /* The kernel leaves EBADMSG pending on the socket (sk_err) and its TLS
         * sendmsg refuses while it is; reading SO_ERROR clears it. TX is intact. */
        int pending = 0;
        socklen_t len = sizeof(pending);
        getsockopt(k->fd, SOL_SOCKET, SO_ERROR, &pending, &len);
        ktls_records_send(k->fd, TLS_RECORD_ALERT, bad_record_mac, sizeof(bad_record_mac));
    }
    *k->tx_shut = 1;
}

void ktls_records_alert(struct ktls_records *k, unsigned char description)
{
    if (*k->tx_shut)
        return;
    ktls_records_send_alert(k->fd, description);
    *k->tx_shut = 1;
}

int ktls_records_send_alert(int fd, unsigned char description)
{
    const unsigned char alert[2] = { TLS_ALERT_FATAL, description };
    return ktls_records_send(fd, TLS_RECORD_ALERT, alert, sizeof(alert));
}

int ktls_records_close_notify(int fd)
{
    static const unsigned char close_notify[2] = { TLS_ALERT_WARNING, TLS_ALERT_CLOSE_NOTIFY };
    return ktls_records_send(fd, TLS_RECORD_ALERT, close_notify, sizeof(close_notify));
}

/* A KeyUpdate from the peer (MSG is KEY_UPDATE or MALFORMED): installs its next key
 * for RX, and when it asks, makes ours due. Returns 0, or -1 (close). */
static int take_key_update(struct ktls_records *k, const struct post_handshake_message *msg)
{
    char why[160];
    if (msg->kind == POST_HANDSHAKE_MALFORMED) {
        snprintf(why, sizeof(why), "malformed KeyUpdate");
    } else if (k->offload->suite.tls_version != TLS1_3_VERSION) {
        snprintf(why, sizeof(why), "the session is not TLS 1.3");
    } else if (ktls_offload_rekey_rx(k->fd, k->secrets, k->offload, why, sizeof(why)) == 0) {
        /* RFC 8446 4.6.3: our own KeyUpdate goes before our next data record; once
         * our direction has ended nothing more is sent, so there is none to protect. */
        if (msg->update_requested && !*k->tx_shut)
            k->offload->tx_update_requested = 1;
        return 0;
    }
    set_end(k, 1, "peer sent a TLS 1.3 KeyUpdate; closing cleanly", why);
    return -1;
}

/* post_handshake_handler: one whole message after the handshake. */
static int take_handshake_message(void *ctx, const unsigned char *data,
                                  const struct post_handshake_message *msg)
{
    struct ktls_records *k = ctx;
    (void)data;
    switch (msg->kind) {
    case POST_HANDSHAKE_TICKET:
        /* Tickets are useless to us (no resumption) and dropped. */
        return 0;
    case POST_HANDSHAKE_KEY_UPDATE:
    case POST_HANDSHAKE_MALFORMED:
        return take_key_update(k, msg);
    case POST_HANDSHAKE_INCOMPLETE:
    case POST_HANDSHAKE_UNEXPECTED:
        break;
    }
    /* Nothing but tickets and KeyUpdate may follow the handshake. */
    char detail[32];
    snprintf(detail, sizeof(detail), "type %u", msg->type);
    set_end(k, 0, "unexpected TLS handshake message after the handshake", detail);
    return -1;
}

int ktls_records_handshake(struct ktls_records *k, const unsigned char *data, size_t len)
{
    switch (post_handshake_feed(&k->offload->handshake, data, len, take_handshake_message, k)) {
    case POST_HANDSHAKE_FED:
        return 0;
    case POST_HANDSHAKE_STOPPED:
        break;
    case POST_HANDSHAKE_OVERSIZE:
        set_end(k, 0, "oversized TLS handshake message after the handshake", NULL);
        ktls_records_alert(k, TLS_ALERT_DECODE_ERROR);
        break;
    case POST_HANDSHAKE_NO_MEMORY:
        set_end(k, 0, "no memory for a TLS handshake message split across records", NULL);
        break;
    case POST_HANDSHAKE_UNALIGNED:
        set_end(k, 0, "TLS record goes on after a KeyUpdate", NULL);
        ktls_records_alert(k, TLS_ALERT_UNEXPECTED_MESSAGE);
        break;
    }
    return -1;
}

/* Sends our KeyUpdate under the current key, then moves TX to the next key. Returns
 * 1 when done, 0 when the socket would block (nothing sent), -1 (close: after a
 * KeyUpdate went out, with no further record, since the peer expects the new key). */
static int send_key_update(struct ktls_records *k, enum ktls_rekey_reason due)
{
    unsigned char message[KTLS_REKEY_MESSAGE_LEN];
    char why[160];
    size_t len = ktls_rekey_message(message, 0);
    int sent = ktls_records_send(k->fd, TLS_RECORD_HANDSHAKE, message, len);
    if (sent == 1)
        return 0;
    if (sent < 0) {
        set_end(k, 0, "TLS write of our KeyUpdate failed", strerror(errno));
        return -1;
    }
    if (ktls_offload_rekey_tx(k->fd, k->secrets, k->offload, why, sizeof(why)) < 0) {
        *k->tx_shut = 1;
        set_end(k, 0, "sent a TLS 1.3 KeyUpdate but could not install our next key", why);
        return -1;
    }
    log_debug("kTLS: new sending key (%s)", k->offload->tx_update_requested
                  ? "the peer asked for it" : ktls_rekey_reason_name(due));
    k->offload->tx_update_requested = 0;
    k->tx_records = 0;
    k->offload->tx_usage.records = 0;
    k->offload->tx_usage.bytes = 0;
    k->offload->tx_usage.since_ms = event_loop_now_ms();
    return 1;
}

int ktls_records_before_data(struct ktls_records *k)
{
    struct ktls_offload_state *state = k->offload;
    state->tx_usage.records = k->tx_records;
    enum ktls_rekey_reason due = ktls_rekey_due(k->tx_record_limit, &state->policy,
                                                &state->tx_usage, event_loop_now_ms());
    if (!state->tx_update_requested && due == KTLS_REKEY_NOT_DUE)
        return 1;
    if (state->suite.tls_version == TLS1_3_VERSION
        && (state->rekey_supported || ktls_rekey_kernel_ready()))
        return send_key_update(k, due);
    if (due != KTLS_REKEY_RECORD_LIMIT)
        return 1;
    set_end(k, 1, "AES record limit for one key reached (RFC 8446 5.5); closing so "
                  "the peer reconnects with fresh keys", NULL);
    return -1;
}

void ktls_records_sent(struct ktls_records *k, size_t bytes)
{
    /* Each send ends a record; full records in between: an upper bound. */
    k->tx_records += (uint64_t)bytes / TLS_RECORD_MAX_PLAINTEXT + 1;
    k->offload->tx_usage.bytes += (uint64_t)bytes;
}
