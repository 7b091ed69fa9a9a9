#include "relay/relay_splice.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <linux/tls.h>
#include <openssl/ssl.h>

#include "core/event_loop.h"
#include "core/log.h"
#include "ktls/ktls_rekey.h"
#include "ktls/post_handshake.h"
#include "ktls/tls_record.h"
#include "ktls_uapi.h"

static void note_reason(struct splice_relay *r, const char *what, const char *detail)
{
    relay_note_reason(r->close_reason, sizeof(r->close_reason), what, detail);
}

static void note_abort(struct splice_relay *r, enum relay_abort abort, const char *what)
{
    relay_note_abort(r->close_reason, sizeof(r->close_reason), &r->end, abort, 0, what, NULL);
}

/* We end the connection ourselves, cleanly: the peer reconnects, nothing was cut. */
static void note_clean_close(struct splice_relay *r, const char *what, const char *detail)
{
    relay_note_abort(r->close_reason, sizeof(r->close_reason), &r->end, RELAY_ABORT_NONE, 0, what,
                     detail);
}

/* A read or write on side TLS failed with ERROR: a reset by that side's peer, or
 * FAILED with the error's text. */
static void note_failure(struct splice_relay *r, int tls, int error, const char *failed)
{
    if (relay_is_reset(error))
        note_abort(r, tls ? RELAY_ABORT_TLS_RESET : RELAY_ABORT_PLAIN_RESET,
                   tls ? "TLS peer reset the connection" : "plain side reset the connection");
    else
        note_reason(r, failed, strerror(error));
}

int relay_splice_init(struct splice_relay *r, int tls_fd, int plain_fd,
                      struct ktls_offload_state *offload, struct ktls_secrets *secrets,
                      char *reason, size_t len)
{
    memset(r, 0, sizeof(*r));
    r->tls_fd = tls_fd;
    r->plain_fd = plain_fd;
    r->offload = offload;
    r->secrets = secrets;
    r->tx_record_limit = relay_splice_record_limit(offload->suite.cipher);
    offload->tx_usage.since_ms = event_loop_now_ms();
    r->from_tls.pipe_read = r->from_tls.pipe_write = -1;
    r->to_tls.pipe_read = r->to_tls.pipe_write = -1;
    int from[2], to[2];
    if (pipe2(from, O_NONBLOCK | O_CLOEXEC) < 0) {
        snprintf(reason, len, "pipe: %s", strerror(errno));
        return -1;
    }
    if (pipe2(to, O_NONBLOCK | O_CLOEXEC) < 0) {
        snprintf(reason, len, "pipe: %s", strerror(errno));
        close(from[0]);
        close(from[1]);
        return -1;
    }
    r->from_tls.pipe_read = from[0];
    r->from_tls.pipe_write = from[1];
    r->to_tls.pipe_read = to[0];
    r->to_tls.pipe_write = to[1];
    r->from_tls.capacity = splice_pipe_capacity(from[1]);
    r->to_tls.capacity = splice_pipe_capacity(to[1]);
    return 0;
}

uint64_t relay_splice_record_limit(enum ktls_cipher cipher)
{
    return ktls_rekey_record_limit(cipher);
}

/* Sends one record of TYPE with PAYLOAD through the kernel. Returns 0, 1 if it
 * would block, -1 on error. */
static int send_record(int fd, unsigned char type, const void *payload, size_t len)
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

static int send_close_notify(struct splice_relay *r)
{
    static const unsigned char close_notify[2] = { 1, TLS_ALERT_CLOSE_NOTIFY };
    return send_record(r->tls_fd, TLS_RECORD_ALERT, close_notify, sizeof(close_notify));
}

/* A record that fails to decrypt ends the connection with the fatal alert TLS asks
 * for (RFC 8446 6.2); nothing may follow it. */
static void fail_decrypt(struct splice_relay *r)
{
    static const unsigned char bad_record_mac[2] = { 2, TLS_ALERT_BAD_RECORD_MAC };
    r->decrypt_errors++;
    if (!r->to_tls.shut) {
        /* The kernel leaves EBADMSG pending on the socket (sk_err) and its TLS
         * sendmsg refuses while it is; reading SO_ERROR clears it. TX is intact. */
        int pending = 0;
        socklen_t len = sizeof(pending);
        getsockopt(r->tls_fd, SOL_SOCKET, SO_ERROR, &pending, &len);
        send_record(r->tls_fd, TLS_RECORD_ALERT, bad_record_mac, sizeof(bad_record_mac));
    }
    r->to_tls.shut = 1;
}

/* A KeyUpdate from the peer (MSG is KEY_UPDATE or MALFORMED): installs its next key
 * for RX, and when it asks, makes ours due. Returns 0, or -1 (close). */
static int take_key_update(struct splice_relay *r, const struct post_handshake_message *msg)
{
    char why[160];
    if (msg->kind == POST_HANDSHAKE_MALFORMED) {
        snprintf(why, sizeof(why), "malformed KeyUpdate");
    } else if (r->offload->suite.tls_version != TLS1_3_VERSION) {
        snprintf(why, sizeof(why), "the session is not TLS 1.3");
    } else if (ktls_offload_rekey_rx(r->tls_fd, r->secrets, r->offload, why, sizeof(why)) == 0) {
        /* RFC 8446 4.6.3: our own KeyUpdate goes before our next data record; once
         * our direction has ended nothing more is sent, so there is none to protect. */
        if (msg->update_requested && !r->to_tls.shut)
            r->offload->tx_update_requested = 1;
        return 0;
    }
    note_clean_close(r, "peer sent a TLS 1.3 KeyUpdate; closing cleanly", why);
    return -1;
}

/* post_handshake_handler: one whole message after the handshake. */
static int take_handshake_message(void *ctx, const unsigned char *data,
                                  const struct post_handshake_message *msg)
{
    struct splice_relay *r = ctx;
    (void)data;
    switch (msg->kind) {
    case POST_HANDSHAKE_TICKET:
        /* Tickets are useless to us (no resumption) and dropped. */
        return 0;
    case POST_HANDSHAKE_KEY_UPDATE:
    case POST_HANDSHAKE_MALFORMED:
        return take_key_update(r, msg);
    case POST_HANDSHAKE_INCOMPLETE:
    case POST_HANDSHAKE_UNEXPECTED:
        break;
    }
    /* Nothing but tickets and KeyUpdate may follow the handshake. */
    char detail[32];
    snprintf(detail, sizeof(detail), "type %u", msg->type);
    note_reason(r, "unexpected TLS handshake message after the handshake", detail);
    return -1;
}

static int handle_handshake_record(struct splice_relay *r, const unsigned char *data, size_t len)
{
    switch (post_handshake_feed(&r->offload->handshake, data, len, take_handshake_message, r)) {
    case POST_HANDSHAKE_FED:
        return 0;
    case POST_HANDSHAKE_STOPPED:
        break;
    case POST_HANDSHAKE_OVERSIZE:
        note_reason(r, "oversized TLS handshake message after the handshake", NULL);
        relay_splice_abort(r, r->tls_fd, TLS_ALERT_DECODE_ERROR);
        break;
    case POST_HANDSHAKE_NO_MEMORY:
        note_reason(r, "no memory for a TLS handshake message split across records", NULL);
        break;
    case POST_HANDSHAKE_UNALIGNED:
        note_reason(r, "TLS record goes on after a KeyUpdate", NULL);
        relay_splice_abort(r, r->tls_fd, TLS_ALERT_UNEXPECTED_MESSAGE);
        break;
    }
    return -1;
}

/* splice refused the next record: it is not application data. Returns 1 (handled,
 * keep going), -1 (close). */
static int read_control_record(struct splice_relay *r)
{
    unsigned char record[TLS_RECORD_MAX_PLAINTEXT + 256];
    char control[CMSG_SPACE(sizeof(unsigned char))];
    struct iovec iov = { .iov_base = record, .iov_len = sizeof(record) };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                          .msg_controllen = sizeof(control) };
    ssize_t n = recvmsg(r->tls_fd, &msg, MSG_DONTWAIT);
    if (n < 0) {
        if (errno == EAGAIN) {
            /* Nothing waits, yet splice said EINVAL/EIO: that was the socket's error
             * (the kernel could not parse a record header, e.g. non-TLS bytes), which
             * splice consumed. The stream is broken for good. */
            fail_decrypt(r);
            note_reason(r, "corrupt TLS record stream (the kernel could not parse a record)", NULL);
            return -1;
        }
        if (errno == EBADMSG) {
            fail_decrypt(r);
            note_reason(r, "TLS record failed to decrypt (EBADMSG)", strerror(errno));
        } else {
            note_failure(r, 1, errno, "TLS read failed");
        }
        return -1;
    }
    if (n == 0) {
        /* A FIN without close_notify may cut the stream anywhere: an abort. */
        note_abort(r, RELAY_ABORT_TLS_TRUNCATED, "TLS peer ended without close_notify");
        return -1;
    }
    unsigned char type = TLS_RECORD_APPLICATION_DATA;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    if (cmsg != NULL && cmsg->cmsg_level == SOL_TLS && cmsg->cmsg_type == TLS_GET_RECORD_TYPE)
        type = *CMSG_DATA(cmsg);
    switch (type) {
    case TLS_RECORD_ALERT:
        if (n >= 2 && record[1] == TLS_ALERT_CLOSE_NOTIFY) {
            r->from_tls.eof = 1;
            return 1;
        }
        relay_note_abort(r->close_reason, sizeof(r->close_reason), &r->end, RELAY_ABORT_TLS_ALERT,
                         n >= 2 ? record[1] : 0, "peer sent alert",
                         n >= 2 ? SSL_alert_desc_string_long(record[1]) : "malformed");
        /* After a fatal alert the session is over: we send nothing more. */
        r->to_tls.shut = 1;
        return -1;
    case TLS_RECORD_HANDSHAKE:
        return handle_handshake_record(r, record, (size_t)n) < 0 ? -1 : 1;
    case TLS_RECORD_APPLICATION_DATA: {
        /* Data read this way went through our memory: count it, pass it on. What the
         * pipe has no room for waits in the spill; nothing more is read from TLS until
         * it is in. */
        ssize_t written = splice_pipe_write(r->from_tls.pipe_write, &r->from_tls.spill,
                                            record, (size_t)n);
        if (written < 0) {
            note_reason(r, "passing on a data record failed", strerror(errno));
            return -1;
        }
        r->from_tls.in_pipe += (size_t)written;
        r->userspace_bytes += (uint64_t)n;
        return 1;
    }
    default: {
        char detail[32];
        snprintf(detail, sizeof(detail), "type %u", type);
        note_reason(r, "unexpected TLS record", detail);
        return -1;
    }
    }
}

/* Moves what D's pipe holds on to FD (the TLS side when TLS). Returns the bytes moved
 * (0 when blocked or empty), or -1 after noting WHAT failed. */
static ssize_t drain_pipe(struct splice_relay *r, struct splice_direction *d, int fd, int tls,
                          const char *what)
{
    if (d->in_pipe == 0)
        return 0;
    ssize_t n = splice(d->pipe_read, NULL, fd, NULL, d->in_pipe, SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
    if (n > 0) {
        d->in_pipe -= (size_t)n;
        d->bytes += (uint64_t)n;
        r->moved = 1;
        return n;
    }
    if (n < 0 && errno != EAGAIN) {
        note_failure(r, tls, errno, what);
        return -1;
    }
    return 0;
}

/* Pulls from FD into D's pipe, as much as it has room for. Returns what splice
 * returned: bytes, 0 at end of stream, -1 with errno. */
static ssize_t fill_pipe(struct splice_relay *r, struct splice_direction *d, int fd)
{
    /* Never more than the pipe holds: asked for more, a kTLS socket may count a record
     * as spliced whole when only part of it fitted (one-page pipes). */
    ssize_t n = splice(fd, NULL, d->pipe_write, NULL, d->capacity - d->in_pipe,
                       SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
    if (n > 0) {
        d->in_pipe += (size_t)n;
        r->moved = 1;
    }
    return n;
}

/* Returns 1 when something moved, 0 when blocked, -1 on failure. */
static int pump_from_tls(void *relay)
{
    struct splice_relay *r = relay;
    struct splice_direction *d = &r->from_tls;
    ssize_t drained = drain_pipe(r, d, r->plain_fd, 0, "plain side write failed");
    if (drained < 0)
        return -1;
    int progress = drained > 0;
    ssize_t flushed = splice_pipe_flush(d->pipe_write, &d->spill);
    if (flushed < 0) {
        note_reason(r, "passing on a data record failed", strerror(errno));
        return -1;
    }
    d->in_pipe += (size_t)flushed;
    progress = progress || flushed > 0;
    if (d->spill.data != NULL)
        return progress;
    if (d->eof) {
        if (d->in_pipe == 0 && !d->shut) {
            shutdown(r->plain_fd, SHUT_WR);
            d->shut = 1;
            return 1;
        }
        return progress;
    }
    if (d->in_pipe >= d->capacity)
        return progress;
    ssize_t n = fill_pipe(r, d, r->tls_fd);
    if (n > 0)
        return 1;
    if (n == 0) {
        note_abort(r, RELAY_ABORT_TLS_TRUNCATED, "TLS peer ended without close_notify");
        return -1;
    }
    if (errno == EAGAIN)
        return progress;
    if (errno == EINVAL || errno == EIO)
        return read_control_record(r);
    if (errno == EBADMSG)
        fail_decrypt(r);
    if (errno == EBADMSG || errno == EMSGSIZE)
        note_reason(r, errno == EBADMSG ? "TLS record failed to decrypt (EBADMSG)"
                       : "oversized TLS record (EMSGSIZE)", strerror(errno));
    else
        note_failure(r, 1, errno, "TLS read failed");
    return -1;
}

/* Sends our KeyUpdate under the current key, then moves TX to the next key. Returns
 * 1 when done, 0 when the socket would block (nothing sent), -1 (close: after a
 * KeyUpdate went out, with no further record, since the peer expects the new key). */
static int send_key_update(struct splice_relay *r, enum ktls_rekey_reason due)
{
    unsigned char message[KTLS_REKEY_MESSAGE_LEN];
    char why[160];
    size_t len = ktls_rekey_message(message, 0);
    int sent = send_record(r->tls_fd, TLS_RECORD_HANDSHAKE, message, len);
    if (sent == 1)
        return 0;
    if (sent < 0) {
        note_reason(r, "TLS write of our KeyUpdate failed", strerror(errno));
        return -1;
    }
    if (ktls_offload_rekey_tx(r->tls_fd, r->secrets, r->offload, why, sizeof(why)) < 0) {
        r->to_tls.shut = 1;
        note_reason(r, "sent a TLS 1.3 KeyUpdate but could not install our next key", why);
        return -1;
    }
    log_debug("kTLS: new sending key (%s)", r->offload->tx_update_requested
                  ? "the peer asked for it" : ktls_rekey_reason_name(due));
    r->offload->tx_update_requested = 0;
    r->tx_records = 0;
    r->offload->tx_usage.records = 0;
    r->offload->tx_usage.bytes = 0;
    r->offload->tx_usage.since_ms = event_loop_now_ms();
    return 1;
}

/* Before more data goes out: our KeyUpdate when the peer asked for one or our key is
 * used up. Returns 1 when data may go, 0 when it must wait, -1 (close). */
static int rekey_before_data(struct splice_relay *r)
{
    struct ktls_offload_state *state = r->offload;
    state->tx_usage.records = r->tx_records;
    enum ktls_rekey_reason due = ktls_rekey_due(r->tx_record_limit, &state->policy,
                                                &state->tx_usage, event_loop_now_ms());
    if (!state->tx_update_requested && due == KTLS_REKEY_NOT_DUE)
        return 1;
    if (state->suite.tls_version == TLS1_3_VERSION
        && (state->rekey_supported || ktls_rekey_kernel_ready()))
        return send_key_update(r, due);
    if (due != KTLS_REKEY_RECORD_LIMIT)
        return 1;
    note_clean_close(r, "AES record limit for one key reached (RFC 8446 5.5); closing so "
                        "the peer reconnects with fresh keys", NULL);
    return -1;
}

static int pump_to_tls(void *relay)
{
    struct splice_relay *r = relay;
    struct splice_direction *d = &r->to_tls;
    if (!d->shut && (d->in_pipe > 0 || r->offload->tx_update_requested)) {
        int go = rekey_before_data(r);
        if (go <= 0)
            return go;
    }
    ssize_t drained = drain_pipe(r, d, r->tls_fd, 1, "TLS write failed");
    if (drained < 0)
        return -1;
    /* Each splice ends a record; full records in between: an upper bound. */
    if (drained > 0) {
        r->tx_records += (uint64_t)drained / TLS_RECORD_MAX_PLAINTEXT + 1;
        r->offload->tx_usage.bytes += (uint64_t)drained;
    }
    int progress = drained > 0;
    if (d->eof) {
        if (d->in_pipe == 0 && !d->shut) {
            if (send_close_notify(r) == 1)
                return progress;
            shutdown(r->tls_fd, SHUT_WR);
            d->shut = 1;
            return 1;
        }
        return progress;
    }
    if (d->in_pipe >= d->capacity)
        return progress;
    ssize_t n = fill_pipe(r, d, r->plain_fd);
    if (n > 0)
        return 1;
    if (n == 0) {
        d->eof = 1;
        return 1;
    }
    if (errno == EAGAIN)
        return progress;
    note_failure(r, 0, errno, "plain side read failed");
    return -1;
}

enum relay_status relay_splice_pump(struct splice_relay *r)
{
    const struct relay_turn turn = {
        r, pump_from_tls, pump_to_tls, &r->from_tls.bytes, &r->to_tls.bytes,
        &r->from_tls.shut, &r->to_tls.shut, r->close_reason, sizeof(r->close_reason),
    };
    r->moved = 0;
    return relay_take_turn(&turn);
}

void relay_splice_close_notify(struct splice_relay *r)
{
    if (r->to_tls.shut)
        return;
    send_close_notify(r);
    r->to_tls.shut = 1;
}

void relay_splice_abort(struct splice_relay *r, int tls_fd, unsigned char description)
{
    const unsigned char alert[2] = { TLS_ALERT_FATAL, description };
    if (r->to_tls.shut || tls_fd < 0)
        return;
    /* Best effort: a peer whose socket buffer is full misses the alert, not the end. */
    send_record(tls_fd, TLS_RECORD_ALERT, alert, sizeof(alert));
    r->to_tls.shut = 1;
}

void relay_splice_release(struct splice_relay *r)
{
    if (r->offload != NULL)
        post_handshake_buffer_free(&r->offload->handshake);
    splice_pipe_spill_free(&r->from_tls.spill);
    int fds[] = { r->from_tls.pipe_read, r->from_tls.pipe_write, r->to_tls.pipe_read,
                  r->to_tls.pipe_write };
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    r->from_tls.pipe_read = r->from_tls.pipe_write = -1;
    r->to_tls.pipe_read = r->to_tls.pipe_write = -1;
}
