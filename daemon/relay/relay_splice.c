#include "relay/relay_splice.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "ktls/ktls_records.h"
#include "ktls/ktls_rekey.h"
#include "ktls/post_handshake.h"
#include "ktls/tls_record.h"

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
    ktls_records_init(&r->records, tls_fd, offload, secrets, &r->to_tls.shut);
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

static int send_close_notify(struct splice_relay *r)
{
    return ktls_records_close_notify(r->tls_fd);
}

/* What ktls_records noted as the end, in the relay's words. */
static void note_records_end(struct splice_relay *r)
{
    const struct ktls_records_end *e = &r->records.end;
    const char *detail = e->detail[0] != '\0' ? e->detail : NULL;
    if (e->what == NULL)
        return;
    if (e->clean)
        note_clean_close(r, e->what, detail);
    else
        note_reason(r, e->what, detail);
}

/* A record that fails to decrypt ends the connection with the fatal alert TLS asks
 * for (RFC 8446 6.2); nothing may follow it. */
static void fail_decrypt(struct splice_relay *r)
{
    r->decrypt_errors++;
    ktls_records_fail_decrypt(&r->records);
}

static int handle_handshake_record(struct splice_relay *r, const unsigned char *data, size_t len)
{
    if (ktls_records_handshake(&r->records, data, len) == 0)
        return 0;
    note_records_end(r);
    return -1;
}

/* splice refused the next record: it is not application data. Returns 1 (handled,
 * keep going), -1 (close). */
static int read_control_record(struct splice_relay *r)
{
    unsigned char record[TLS_RECORD_MAX_PLAINTEXT + 256];
    unsigned char type;
    ssize_t n = ktls_records_recv(r->tls_fd, record, sizeof(record), &type);
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

/* Before more data goes out: our KeyUpdate when the peer asked for one or our key is
 * used up. Returns 1 when data may go, 0 when it must wait, -1 (close). */
static int rekey_before_data(struct splice_relay *r)
{
    int go = ktls_records_before_data(&r->records);
    if (go < 0)
        note_records_end(r);
    return go;
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
    if (drained > 0)
        ktls_records_sent(&r->records, (size_t)drained);
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
    if (r->to_tls.shut || tls_fd < 0)
        return;
    /* Best effort: a peer whose socket buffer is full misses the alert, not the end. */
    ktls_records_send_alert(tls_fd, description);
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
