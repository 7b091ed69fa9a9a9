#include "relay/relay.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <openssl/err.h>

void relay_init(struct relay *r, SSL *ssl, int tls_fd, int plain_fd)
{
    memset(r, 0, sizeof(*r));
    r->ssl = ssl;
    /* Only now, once the session stays in userspace: read-ahead pulls what is there
     * per recv, which the kTLS handoff could not have taken over. */
    SSL_set_read_ahead(ssl, 1);
    r->tls_fd = tls_fd;
    r->plain_fd = plain_fd;
    /* Events that came before the relay started were not noted: data and a FIN may
     * wait on either side already, so both are read until found empty. */
    r->tls_readable = r->plain_readable = 1;
    r->tls_hangup = r->plain_hangup = 1;
}

void relay_note_events(struct relay *r, int tls_side, uint32_t events)
{
    int readable = (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
    /* epoll reports the socket's state when it is read, so the latest event is
     * right about a pending hang-up; one that comes later brings its own event. */
    int hangup = (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) != 0;
    if (tls_side) {
        r->tls_readable |= readable;
        r->tls_hangup = hangup;
    } else {
        r->plain_readable |= readable;
        r->plain_hangup = hangup;
    }
}

/* Keeps the first notable event: "WHAT" or "WHAT: DETAIL". */
void relay_note_reason(char *reason, size_t len, const char *what, const char *detail)
{
    if (reason[0] != '\0')
        return;
    if (detail != NULL)
        snprintf(reason, len, "%s: %s", what, detail);
    else
        snprintf(reason, len, "%s", what);
}

void relay_note_abort(char *reason, size_t len, struct relay_end *end, enum relay_abort abort,
                      unsigned char alert, const char *what, const char *detail)
{
    if (reason[0] != '\0')
        return;
    end->abort = abort;
    end->peer_alert = alert;
    relay_note_reason(reason, len, what, detail);
}

int relay_is_reset(int error)
{
    /* EPIPE: a write after the peer's reset had already closed the socket. */
    return error == ECONNRESET || error == EPIPE;
}

static void note_reason(struct relay *r, const char *what, const char *detail)
{
    relay_note_reason(r->close_reason, sizeof(r->close_reason), what, detail);
}

static void note_abort(struct relay *r, enum relay_abort abort, const char *what)
{
    relay_note_abort(r->close_reason, sizeof(r->close_reason), &r->end, abort, 0, what, NULL);
}

/* A write or read on side TLS failed with ERROR: a reset by that side's peer, or
 * FAILED with the error's text. */
static void note_failure(struct relay *r, int tls, int error, const char *failed)
{
    if (relay_is_reset(error))
        note_abort(r, tls ? RELAY_ABORT_TLS_RESET : RELAY_ABORT_PLAIN_RESET,
                   tls ? "TLS peer reset the connection" : "plain side reset the connection");
    else
        note_reason(r, failed, error ? strerror(error) : "connection closed");
}

static int take_buffer(struct relay_direction *d)
{
    if (d->buffer == NULL)
        d->buffer = malloc(RELAY_BUFFER_SIZE);
    return d->buffer != NULL ? 0 : -1;
}

/* A drained buffer stays for the next read: a busy tunnel would otherwise malloc and
 * free 64 KiB per turn. relay_trim gives it back once the tunnel idles. */
static void consumed(struct relay_direction *d, size_t n)
{
    d->start += n;
    d->bytes += n;
    if (d->start == d->end)
        d->start = d->end = 0;
}

static int trim_direction(struct relay_direction *d)
{
    if (d->buffer == NULL || d->end > d->start)
        return 0;
    free(d->buffer);
    d->buffer = NULL;
    return 1;
}

/* Puts a buffering BIO in front of the TLS socket. Returns 0, or -1 when out of memory
 * (writes then go straight to the socket, record by record). */
static int take_write_buffer(struct relay *r)
{
    if (r->write_buffer != NULL)
        return 0;
    BIO *buffer = BIO_new(BIO_f_buffer());
    if (buffer == NULL || BIO_set_write_buffer_size(buffer, RELAY_WRITE_BUFFER_SIZE) <= 0) {
        BIO_free(buffer);
        return -1;
    }
    BIO *socket = SSL_get_wbio(r->ssl);
    BIO_up_ref(socket);
    SSL_set0_wbio(r->ssl, BIO_push(buffer, socket));
    r->write_buffer = buffer;
    return 0;
}

/* Sends what the write buffer holds. Returns 1 when it is empty, 0 when the socket
 * would block first, -1 on failure (reason noted). */
static int flush_writes(struct relay *r)
{
    if (r->write_buffer == NULL || BIO_wpending(r->write_buffer) == 0)
        return 1;
    errno = 0;
    if (BIO_flush(r->write_buffer) > 0)
        return 1;
    if (BIO_should_retry(r->write_buffer))
        return 0;
    note_failure(r, 1, errno, "TLS write failed");
    return -1;
}

static int trim_write_buffer(struct relay *r)
{
    if (r->write_buffer == NULL || BIO_wpending(r->write_buffer) > 0)
        return 0;
    BIO *socket = BIO_next(r->write_buffer);
    BIO_up_ref(socket);
    SSL_set0_wbio(r->ssl, socket);   /* frees the buffering BIO */
    r->write_buffer = NULL;
    return 1;
}

/* A bulk transfer: a 68 KiB read buffer takes four records per read() where the
 * default takes one. Allocated and freed per record (SSL_MODE_RELEASE_BUFFERS) it
 * added 25 us to every small round trip (measured), so OpenSSL's buffers stay until
 * relay_trim. Tunnels that only ever carry small messages never get here: when
 * every tunnel took them and the write buffer, 1000 idle tunnels kept 11 MB more
 * (PSS, both ends; freed, but the heap stays fragmented). */
static void start_bulk(struct relay *r)
{
    if (r->bulk)
        return;
    r->bulk = 1;
    r->read_ahead_grown = 0;
    SSL_clear_mode(r->ssl, SSL_MODE_RELEASE_BUFFERS);
    SSL_set_default_read_buffer_len(r->ssl, RELAY_READ_AHEAD_SIZE);
}

/* The new read buffer length applies once OpenSSL allocates its buffer again, which
 * it can only do while the buffer is empty. Since OpenSSL 3.0.14, SSL_free_buffers
 * refuses while a record is half read (CVE-2024-4741). */
static void grow_read_ahead(struct relay *r)
{
    if (r->bulk && !r->read_ahead_grown && !SSL_has_pending(r->ssl) && SSL_free_buffers(r->ssl))
        r->read_ahead_grown = 1;
}

/* Ends bulk mode: frees OpenSSL's buffers unless they hold something, and lets it
 * free them per record again. */
static int trim_ssl_buffers(struct relay *r)
{
    if (!r->bulk || SSL_has_pending(r->ssl) || !SSL_free_buffers(r->ssl))
        return 0;
    SSL_set_mode(r->ssl, SSL_MODE_RELEASE_BUFFERS);
    SSL_set_default_read_buffer_len(r->ssl, 0);
    r->bulk = 0;
    return 1;
}

int relay_trim(struct relay *r)
{
    return trim_direction(&r->from_tls) + trim_direction(&r->to_tls) + trim_write_buffer(r) +
           trim_ssl_buffers(r);
}

size_t relay_buffer_bytes(const struct relay *r)
{
    return (r->from_tls.buffer != NULL ? RELAY_BUFFER_SIZE : 0) +
           (r->to_tls.buffer != NULL ? RELAY_BUFFER_SIZE : 0) +
           (r->write_buffer != NULL ? RELAY_WRITE_BUFFER_SIZE : 0) +
           (r->bulk ? RELAY_READ_AHEAD_SIZE : 0);
}

static const char *ssl_reason(void)
{
    const char *text = ERR_reason_error_string(ERR_peek_error());
    return text != NULL ? text : "unknown TLS error";
}

/* SSL_read returned nothing: says why. Returns 0 when it would block, 1 when the
 * peer ended its direction (D->eof set), -1 on failure (reason noted). */
static int read_ended(struct relay *r, struct relay_direction *d)
{
    switch (SSL_get_error(r->ssl, 0)) {
    case SSL_ERROR_WANT_READ:
        /* The socket BIO saw EAGAIN: the next edge says when to try again. */
        r->tls_readable = 0;
        grow_read_ahead(r);
        return 0;
    case SSL_ERROR_WANT_WRITE:
        return 0;
    case SSL_ERROR_ZERO_RETURN:
        d->eof = 1;
        return 1;
    case SSL_ERROR_SYSCALL:
        /* A FIN without close_notify may cut the stream anywhere: an abort. */
        if (errno == 0)
            note_abort(r, RELAY_ABORT_TLS_TRUNCATED, "TLS peer ended without close_notify");
        else
            note_failure(r, 1, errno, "TLS read failed");
        return -1;
    default: {
        int reason = ERR_GET_REASON(ERR_peek_error());
        if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING)
            note_abort(r, RELAY_ABORT_TLS_TRUNCATED, "TLS peer ended without close_notify");
        else if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256)
            relay_note_abort(r->close_reason, sizeof(r->close_reason), &r->end,
                             RELAY_ABORT_TLS_ALERT, (unsigned char)(reason - SSL_AD_REASON_OFFSET),
                             "peer sent alert", SSL_alert_desc_string_long(reason - SSL_AD_REASON_OFFSET));
        else
            note_reason(r, "TLS read failed", ssl_reason());
        ERR_clear_error();
        return -1;
    }
    }
}

/* Returns 1 when something moved, 0 when blocked, -1 on failure. */
static int pump_from_tls(void *relay)
{
    struct relay *r = relay;
    struct relay_direction *d = &r->from_tls;
    if (d->end > d->start) {
        ssize_t n = send(r->plain_fd, d->buffer + d->start, d->end - d->start, MSG_NOSIGNAL);
        if (n > 0) {
            consumed(d, (size_t)n);
            r->moved = 1;
            return 1;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return 0;
        note_failure(r, 0, errno, "plain side write failed");
        return -1;
    }
    if (d->eof) {
        if (!d->shut) {
            shutdown(r->plain_fd, SHUT_WR);
            d->shut = 1;
            return 1;
        }
        return 0;
    }
    if (!r->tls_readable && !SSL_has_pending(r->ssl))
        return 0;
    if (take_buffer(d) < 0) {
        note_reason(r, "out of memory", NULL);
        return -1;
    }
    /* Gather several records (read-ahead hands them over without more syscalls)
     * before one send on the plain side. */
    int progress = 0;
    d->start = d->end = 0;
    while (d->end < RELAY_BUFFER_SIZE) {
        size_t got = 0;
        ERR_clear_error();
        if (SSL_read_ex(r->ssl, d->buffer + d->end, RELAY_BUFFER_SIZE - d->end, &got)) {
            d->end += got;
            r->moved = 1;
            progress = 1;
            continue;
        }
        int ended = read_ended(r, d);
        if (ended < 0)
            return -1;
        progress |= ended;
        break;
    }
    if (d->end == RELAY_BUFFER_SIZE)
        start_bulk(r);
    if (d->end == 0)
        consumed(d, 0);
    return progress;
}

static int pump_to_tls(void *relay)
{
    struct relay *r = relay;
    struct relay_direction *d = &r->to_tls;
    /* Records still waiting in the write buffer go first: it is bounded, and SSL_read
     * may have put a record of its own there (a KeyUpdate answer). */
    if (r->write_buffer != NULL && BIO_wpending(r->write_buffer) > 0) {
        int flushed = flush_writes(r);
        if (flushed <= 0)
            return flushed;
        r->moved = 1;
        return 1;
    }
    if (d->end > d->start) {
        /* With partial writes on (the SSL_CTX's mode), each SSL_write makes one record:
         * all of them go into the write buffer, then out in one send. A single record
         * gains nothing from it, so small-message tunnels never take it. */
        if (d->end - d->start > SSL3_RT_MAX_PLAIN_LENGTH)
            take_write_buffer(r);
        int progress = 0;
        while (d->end > d->start) {
            size_t written = 0;
            ERR_clear_error();
            if (SSL_write_ex(r->ssl, d->buffer + d->start, d->end - d->start, &written)) {
                consumed(d, written);
                r->moved = 1;
                progress = 1;
                continue;
            }
            int error = SSL_get_error(r->ssl, 0);
            if (error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ)
                break;
            if (error == SSL_ERROR_SYSCALL)
                note_failure(r, 1, errno, "TLS write failed");
            else
                note_reason(r, "TLS write failed", ssl_reason());
            ERR_clear_error();
            return -1;
        }
        if (flush_writes(r) < 0)
            return -1;
        return progress;
    }
    if (d->eof) {
        if (d->shut)
            return 0;
        if (!r->close_notify_sent) {
            ERR_clear_error();
            int done = SSL_shutdown(r->ssl);
            if (done < 0) {
                int error = SSL_get_error(r->ssl, done);
                if (error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ)
                    return 0;
                ERR_clear_error();
            }
            r->close_notify_sent = 1;
        }
        /* SSL_shutdown counts close_notify as sent once it is in the write buffer. */
        int flushed = flush_writes(r);
        if (flushed <= 0)
            return flushed;
        /* FIN after close_notify, so peers that wait for TCP EOF see the end too. */
        shutdown(r->tls_fd, SHUT_WR);
        d->shut = 1;
        return 1;
    }
    if (!r->plain_readable)
        return 0;
    if (take_buffer(d) < 0) {
        note_reason(r, "out of memory", NULL);
        return -1;
    }
    ssize_t n = recv(r->plain_fd, d->buffer, RELAY_BUFFER_SIZE, 0);
    if (n > 0) {
        /* A short read emptied the socket, unless a FIN waits behind the data. */
        if ((size_t)n < RELAY_BUFFER_SIZE && !r->plain_hangup)
            r->plain_readable = 0;
        d->start = 0;
        d->end = (size_t)n;
        r->moved = 1;
        return 1;
    }
    consumed(d, 0);
    if (n == 0) {
        d->eof = 1;
        return 1;
    }
    if (errno == EAGAIN) {
        r->plain_readable = 0;
        return 0;
    }
    if (errno == EINTR)
        return 0;
    note_failure(r, 0, errno, "plain side read failed");
    return -1;
}

enum relay_status relay_take_turn(const struct relay_turn *turn)
{
    uint64_t turn_start = *turn->from_tls_bytes + *turn->to_tls_bytes;
    for (;;) {
        int from = turn->pump_from_tls(turn->relay);
        int to = turn->pump_to_tls(turn->relay);
        if (from < 0 || to < 0)
            return RELAY_FAILED;
        if (from == 0 && to == 0)
            break;
        if (*turn->from_tls_bytes + *turn->to_tls_bytes - turn_start >= RELAY_TURN_BYTES)
            return RELAY_YIELDED;
    }
    if (!*turn->from_tls_shut || !*turn->to_tls_shut)
        return RELAY_RUNNING;
    relay_note_reason(turn->close_reason, turn->close_reason_len, "closed by both sides", NULL);
    return RELAY_FINISHED;
}

enum relay_status relay_pump(struct relay *r)
{
    const struct relay_turn turn = {
        r, pump_from_tls, pump_to_tls, &r->from_tls.bytes, &r->to_tls.bytes,
        &r->from_tls.shut, &r->to_tls.shut, r->close_reason, sizeof(r->close_reason),
    };
    r->moved = 0;
    return relay_take_turn(&turn);
}

void relay_release(struct relay *r)
{
    free(r->from_tls.buffer);
    free(r->to_tls.buffer);
    r->from_tls.buffer = r->to_tls.buffer = NULL;
    r->write_buffer = NULL;   /* SSL_free frees it with the socket BIO */
}
