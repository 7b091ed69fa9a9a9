#include "iprelay/packet_relay.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/event_loop.h"
#include "ktls/tls_record.h"
#include "packet/ip_packet.h"
#include "packet/mss_clamp.h"

struct packet_relay {
    int tun_fd;
    SSL *ssl;                   /* the userspace transport, or NULL */
    int sock_fd;                /* the kTLS transport (SSL NULL): the offloaded socket */
    struct ktls_records records;
    int tx_shut;                /* kTLS: our direction ended (fatal alert sent) */
    int drained;                /* userspace: the socket's last read() came back short */
    int buffers_released;       /* userspace: OpenSSL frees its buffers after each record */
    int lone;                   /* the last read of the TUN found one packet alone */
    uint64_t lone_ms;           /* when a call last ended after a lone packet */
    size_t sent;                /* kTLS: bytes of the waiting batch the kernel took */
    int hub;
    int mss_clamp;
    unsigned mtu;
    struct ip_prefix allowed[PACKET_RELAY_MAX_ALLOWED];
    size_t allowed_count;
    void (*on_control)(void *arg, const struct tunnel_frame *frame);
    void *arg;
    struct packet_relay_counters counters;
    /* The batch being filled; once handed to SSL_write and refused for now (pending),
     * OpenSSL needs the same bytes again, so nothing is added until it went. */
    struct tunnel_frame_writer writer;
    int pending;
    unsigned char batch[TUNNEL_BATCH_MAX];
    /* A packet read from the TUN that did not fit the batch: it goes into the next
     * one, once the full one went. */
    size_t held;
    unsigned char out[TUNNEL_MTU_MAX];
    struct tunnel_frame_reader reader;
    /* SSL_read and a kTLS recvmsg give at most one record's plaintext a call. */
    unsigned char in[TLS_RECORD_MAX_PLAINTEXT];
    unsigned char packet[TUNNEL_MTU_MAX];
    char error[320];
};

static struct packet_relay *make(int tun_fd, const struct packet_relay_config *config)
{
    if (config->mtu < TUNNEL_MTU_MIN || config->mtu > TUNNEL_MTU_MAX ||
        config->allowed_count > PACKET_RELAY_MAX_ALLOWED ||
        (config->allowed_count > 0 && config->allowed == NULL))
        return NULL;
    struct packet_relay *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->tun_fd = tun_fd;
    r->sock_fd = -1;
    r->hub = config->hub;
    r->mss_clamp = config->mss_clamp;
    r->mtu = config->mtu;
    if (config->allowed_count > 0)
        memcpy(r->allowed, config->allowed, config->allowed_count * sizeof(r->allowed[0]));
    r->allowed_count = config->allowed_count;
    r->on_control = config->on_control;
    r->arg = config->arg;
    tunnel_frame_writer_init(&r->writer, r->batch, sizeof(r->batch));
    tunnel_frame_reader_init(&r->reader, config->hub ? TUNNEL_FROM_CLIENT : TUNNEL_FROM_SERVER,
                             config->mtu);
    return r;
}

/* Notes whether a read of the session's socket came back short (or empty): the
 * socket had nothing more then, and what arrives later raises a new edge, so the
 * session need not be read again until it would block. */
static long note_read(BIO *bio, int oper, const char *argp, size_t len, int argi, long argl,
                      int ret, size_t *processed)
{
    (void)argp;
    (void)argi;
    (void)argl;
    if (oper == (BIO_CB_READ | BIO_CB_RETURN)) {
        struct packet_relay *r = (struct packet_relay *)BIO_get_callback_arg(bio);
        r->drained = ret <= 0 || processed == NULL || *processed < len;
        return ret;
    }
    return oper & BIO_CB_RETURN ? ret : 1;
}

/* OpenSSL's buffers stay between records while packets flow: freed and allocated
 * again for every record (SSL_MODE_RELEASE_BUFFERS) they cost each small round trip
 * a malloc and a free per direction. packet_relay_trim gives them back when idle. */
static void keep_buffers(struct packet_relay *r)
{
    if (r->ssl == NULL || !r->buffers_released)
        return;
    SSL_clear_mode(r->ssl, SSL_MODE_RELEASE_BUFFERS);
    r->buffers_released = 0;
}

struct packet_relay *packet_relay_new(int tun_fd, SSL *ssl,
                                      const struct packet_relay_config *config)
{
    struct packet_relay *r = make(tun_fd, config);
    if (r == NULL)
        return NULL;
    r->ssl = ssl;
    r->buffers_released = 1;
    keep_buffers(r);
    BIO *bio = SSL_get_rbio(ssl);
    if (bio != NULL) {
        BIO_set_callback_arg(bio, (char *)r);
        BIO_set_callback_ex(bio, note_read);
    }
    return r;
}

struct packet_relay *packet_relay_new_ktls(int tun_fd, int sock_fd,
                                           struct ktls_offload_state *offload,
                                           struct ktls_secrets *secrets,
                                           const struct packet_relay_config *config)
{
    struct packet_relay *r = make(tun_fd, config);
    if (r == NULL)
        return NULL;
    r->sock_fd = sock_fd;
    ktls_records_init(&r->records, sock_fd, offload, secrets, &r->tx_shut);
    return r;
}

void packet_relay_free(struct packet_relay *r)
{
    if (r == NULL)
        return;
    if (r->records.offload != NULL)
        post_handshake_buffer_free(&r->records.offload->handshake);
    BIO *bio = r->ssl != NULL ? SSL_get_rbio(r->ssl) : NULL;
    if (bio != NULL && BIO_get_callback_arg(bio) == (char *)r) {
        BIO_set_callback_ex(bio, NULL);
        BIO_set_callback_arg(bio, NULL);
    }
    free(r);
}

int packet_relay_trim(struct packet_relay *r)
{
    if (r->ssl == NULL || r->buffers_released || SSL_has_pending(r->ssl) ||
        !SSL_free_buffers(r->ssl))
        return 0;
    SSL_set_mode(r->ssl, SSL_MODE_RELEASE_BUFFERS);
    r->buffers_released = 1;
    return 1;
}

static enum packet_relay_status fail(struct packet_relay *r, const char *doing, int ssl_error)
{
    unsigned long e = ERR_peek_last_error();
    if (ssl_error == SSL_ERROR_SYSCALL && errno != 0)
        snprintf(r->error, sizeof(r->error), "%s: %s", doing, strerror(errno));
    else if (e != 0)
        snprintf(r->error, sizeof(r->error), "%s: %s", doing, ERR_reason_error_string(e));
    else
        snprintf(r->error, sizeof(r->error), "%s: TLS error %d", doing, ssl_error);
    ERR_clear_error();
    return PACKET_RELAY_ERROR;
}

/* The peer ended the session, with close_notify (NOTIFY) or without. Either way it
 * is CLOSED; a frame left half read makes it a truncation, not a clean end, and the
 * error says so (as it does for an end without close_notify). */
static enum packet_relay_status peer_closed(struct packet_relay *r, int notify)
{
    if (r->reader.fill > 0)
        snprintf(r->error, sizeof(r->error), "the peer closed %s in the middle of a frame "
                 "(truncated)", notify ? "with close_notify" : "without close_notify");
    else if (!notify)
        snprintf(r->error, sizeof(r->error), "the peer closed without close_notify");
    return PACKET_RELAY_CLOSED;
}

/* What ktls_records noted as the end: CLOSED when we close cleanly ourselves (our
 * key is used up and this kernel takes no new one), else ERROR. */
static enum packet_relay_status records_end(struct packet_relay *r)
{
    const struct ktls_records_end *e = &r->records.end;
    if (e->detail[0] != '\0')
        snprintf(r->error, sizeof(r->error), "%s: %s", e->what, e->detail);
    else
        snprintf(r->error, sizeof(r->error), "%s", e->what != NULL ? e->what : "kTLS failed");
    return e->clean ? PACKET_RELAY_CLOSED : PACKET_RELAY_ERROR;
}

static enum packet_relay_status fail_errno(struct packet_relay *r, const char *doing, int error)
{
    if (error == ECONNRESET || error == EPIPE)
        snprintf(r->error, sizeof(r->error), "the peer reset the connection");
    else
        snprintf(r->error, sizeof(r->error), "%s: %s", doing, strerror(error));
    return PACKET_RELAY_ERROR;
}

/* kTLS: one send() of what is left of the batch, one record; MORE while another batch
 * follows in this call. Our KeyUpdate goes first when it is due. */
static enum packet_relay_status flush_ktls(struct packet_relay *r, int more)
{
    if (r->writer.len == 0 && !r->records.offload->tx_update_requested)
        return PACKET_RELAY_OK;
    if (r->tx_shut) {
        snprintf(r->error, sizeof(r->error), "the session has ended");
        return PACKET_RELAY_ERROR;
    }
    if (r->sent == 0) {
        int go = ktls_records_before_data(&r->records);
        if (go < 0)
            return records_end(r);
        if (go == 0) {
            r->pending = r->writer.len > 0;
            return PACKET_RELAY_WANT_WRITE;
        }
    }
    while (r->sent < r->writer.len) {
        ssize_t n = send(r->sock_fd, r->batch + r->sent, r->writer.len - r->sent,
                         MSG_DONTWAIT | MSG_NOSIGNAL | (more ? MSG_MORE : 0));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            r->pending = 1;
            return PACKET_RELAY_WANT_WRITE;
        }
        if (n < 0)
            return fail_errno(r, "sending to the peer", errno);
        ktls_records_sent(&r->records, (size_t)n);
        r->sent += (size_t)n;
    }
    if (r->writer.len > 0)
        r->counters.sent_batches++;
    r->sent = 0;
    r->pending = 0;
    tunnel_frame_writer_init(&r->writer, r->batch, sizeof(r->batch));
    return PACKET_RELAY_OK;
}

/* Writes the batch out (MORE: another follows at once). OK when it went (or there was
 * none), WANT_WRITE when it waits. */
static enum packet_relay_status flush(struct packet_relay *r, int more)
{
    if (r->ssl == NULL)
        return flush_ktls(r, more);
    if (r->writer.len == 0)
        return PACKET_RELAY_OK;
    ERR_clear_error();
    errno = 0;
    int n = SSL_write(r->ssl, r->batch, (int)r->writer.len);
    if (n > 0) {
        r->counters.sent_batches++;
        r->pending = 0;
        tunnel_frame_writer_init(&r->writer, r->batch, sizeof(r->batch));
        return PACKET_RELAY_OK;
    }
    int e = SSL_get_error(r->ssl, n);
    if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        r->pending = 1;
        return PACKET_RELAY_WANT_WRITE;
    }
    return fail(r, "sending to the peer", e);
}

/* Room for NEED more bytes, writing the waiting batch out first when needed (and
 * then the packet held back for the next batch goes in). */
static enum packet_relay_status make_room(struct packet_relay *r, size_t need)
{
    if (r->pending) {
        enum packet_relay_status st = flush(r, r->held > 0);
        if (st != PACKET_RELAY_OK || r->held == 0)
            return st;
        tunnel_frame_put_packet(&r->writer, r->out, r->held);
        r->held = 0;
    }
    if (r->writer.cap - r->writer.len >= need)
        return PACKET_RELAY_OK;
    return flush(r, 0);
}

/* Reads one packet from the TUN into r->out. Returns its length, 0 when the TUN is
 * empty, -1 on error. */
static ssize_t read_tun(struct packet_relay *r)
{
    for (;;) {
        ssize_t len = read(r->tun_fd, r->out, sizeof(r->out));
        if (len >= 0)
            return len;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        snprintf(r->error, sizeof(r->error), "reading the TUN device: %s", strerror(errno));
        return -1;
    }
}

enum packet_relay_status packet_relay_from_tun(struct packet_relay *r)
{
    enum packet_relay_status st;
    int n;

    keep_buffers(r);
    /* After a lone packet (a ping, a request), the next one most likely comes alone
     * too: it goes at once, and the call ends without the read that would find the
     * TUN empty (level-triggered, the TUN reports what is left). Lone packets coming
     * faster than one a millisecond are a stream: their calls read on and batch. */
    uint64_t now_ms = r->lone ? event_loop_now_ms() : 0;
    int alone = r->lone && now_ms != r->lone_ms;
    for (n = 0; n < PACKET_RELAY_READS_PER_CALL; n++) {
        if ((st = make_room(r, 0)) != PACKET_RELAY_OK)
            return st;
        if (n == 1 && r->lone) {
            if ((st = flush(r, 0)) != PACKET_RELAY_OK)
                return st;
            if (alone) {
                r->lone_ms = now_ms;
                return PACKET_RELAY_OK;
            }
        }
        ssize_t len = read_tun(r);
        if (len < 0)
            return PACKET_RELAY_ERROR;
        if (len == 0)
            break;
        struct ip_packet p;
        if ((size_t)len > r->mtu || ip_packet_parse(r->out, (size_t)len, &p) != IP_PACKET_OK) {
            r->counters.dropped_invalid++;
            continue;
        }
        /* SYNs leave through some TUN whichever way they go: clamping here covers both. */
        if (r->mss_clamp)
            r->counters.clamped += (uint64_t)mss_clamp(r->out, &p, r->mtu);
        r->counters.sent_packets++;
        r->counters.sent_bytes += (uint64_t)len;
        if (r->writer.cap - r->writer.len < TUNNEL_FRAME_HEADER_LEN + (size_t)len) {
            /* The batch is full and this packet follows it: the batch goes now. */
            r->held = (size_t)len;
            if ((st = flush(r, 1)) != PACKET_RELAY_OK)
                return st;
            tunnel_frame_put_packet(&r->writer, r->out, r->held);
            r->held = 0;
            continue;
        }
        tunnel_frame_put_packet(&r->writer, r->out, (size_t)len);
    }
    if (n > 0)
        r->lone = n == 1;
    return flush(r, 0);
}

/* An IPv6 link-local source (fe80::/10): what a client's kernel sends on its own
 * (router solicitations, multicast listener reports) and no one else may use. */
static int link_local_source(const struct ip_packet *p)
{
    return p->family == AF_INET6 && p->src[0] == 0xfe && (p->src[1] & 0xc0) == 0x80;
}

static void deliver(struct packet_relay *r, const struct tunnel_frame *f)
{
    struct ip_packet p;
    /* A copy: the frame's bytes are read-only, and clamping writes. */
    memcpy(r->packet, f->payload, f->len);
    if (ip_packet_parse(r->packet, f->len, &p) != IP_PACKET_OK) {
        r->counters.dropped_invalid++;
        return;
    }
    if (r->hub && !ip_packet_source_allowed(&p, r->allowed, r->allowed_count)) {
        if (link_local_source(&p))
            r->counters.dropped_link_local++;
        else
            r->counters.dropped_source++;
        return;
    }
    if (write(r->tun_fd, r->packet, f->len) < 0) {
        r->counters.dropped_tun++;
        return;
    }
    r->counters.received_packets++;
    r->counters.received_bytes += f->len;
}

/* Reads the frames in the N bytes of r->in. Returns OK or ERROR (broken framing). */
static enum packet_relay_status take_frames(struct packet_relay *r, size_t n)
{
    for (size_t at = 0; at < n;) {
        struct tunnel_frame f;
        size_t used = 0;
        enum tunnel_frame_status st = tunnel_frame_read(&r->reader, r->in + at, n - at, &used, &f);
        at += used;
        if (st == TUNNEL_FRAME_NEED_MORE)
            break;
        if (st != TUNNEL_FRAME_OK) {
            r->counters.skipped_optional = r->reader.skipped;
            snprintf(r->error, sizeof(r->error), "the peer broke the framing: %s",
                     tunnel_frame_status_text(st));
            return PACKET_RELAY_ERROR;
        }
        if (f.type == TUNNEL_FRAME_PACKET)
            deliver(r, &f);
        else if (r->on_control != NULL)
            r->on_control(r->arg, &f);
    }
    r->counters.skipped_optional = r->reader.skipped;
    return PACKET_RELAY_OK;
}

static enum packet_relay_status from_ssl(struct packet_relay *r)
{
    for (;;) {
        ERR_clear_error();
        errno = 0;
        int n = SSL_read(r->ssl, r->in, sizeof(r->in));
        if (n <= 0) {
            int e = SSL_get_error(r->ssl, n);
            if (e == SSL_ERROR_WANT_READ)
                return PACKET_RELAY_OK;
            if (e == SSL_ERROR_WANT_WRITE)
                return PACKET_RELAY_WANT_WRITE;
            if (e == SSL_ERROR_ZERO_RETURN)
                return peer_closed(r, 1);
            /* A peer that went away without close_notify (a crash, a cut cable) ends
             * the tunnel as a close does; the reason stays for the log. */
            if ((e == SSL_ERROR_SYSCALL && errno == 0) ||
                (e == SSL_ERROR_SSL &&
                 ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
                ERR_clear_error();
                return peer_closed(r, 0);
            }
            return fail(r, "receiving from the peer", e);
        }
        if (take_frames(r, (size_t)n) != PACKET_RELAY_OK)
            return PACKET_RELAY_ERROR;
        /* The socket came back short and OpenSSL holds nothing more: a read now would
         * only find it empty. */
        if (r->drained && !SSL_has_pending(r->ssl))
            return PACKET_RELAY_OK;
    }
}

/* A record that is not data. Returns OK (handled), CLOSED or ERROR. */
static enum packet_relay_status take_control_record(struct packet_relay *r, unsigned char type,
                                                    size_t n)
{
    switch (type) {
    case TLS_RECORD_ALERT:
        if (n >= 2 && r->in[1] == TLS_ALERT_CLOSE_NOTIFY)
            return peer_closed(r, 1);
        snprintf(r->error, sizeof(r->error), "peer sent alert: %s",
                 n >= 2 ? SSL_alert_desc_string_long(r->in[1]) : "malformed");
        /* After a fatal alert the session is over: we send nothing more. */
        r->tx_shut = 1;
        return PACKET_RELAY_ERROR;
    case TLS_RECORD_HANDSHAKE:
        if (ktls_records_handshake(&r->records, r->in, n) != 0)
            return records_end(r);
        return PACKET_RELAY_OK;
    default:
        snprintf(r->error, sizeof(r->error), "unexpected TLS record: type %u", type);
        return PACKET_RELAY_ERROR;
    }
}

static enum packet_relay_status from_ktls(struct packet_relay *r)
{
    for (;;) {
        unsigned char type;
        ssize_t n = ktls_records_recv(r->sock_fd, r->in, sizeof(r->in), &type);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0 && errno == EBADMSG) {
            r->counters.decrypt_errors++;
            ktls_records_fail_decrypt(&r->records);
            snprintf(r->error, sizeof(r->error), "TLS record failed to decrypt (EBADMSG)");
            return PACKET_RELAY_ERROR;
        }
        if (n < 0)
            return fail_errno(r, "receiving from the peer", errno);
        if (n == 0)
            return peer_closed(r, 0);
        enum packet_relay_status st = type == TLS_RECORD_APPLICATION_DATA
                                          ? take_frames(r, (size_t)n)
                                          : take_control_record(r, type, (size_t)n);
        if (st != PACKET_RELAY_OK)
            return st;
    }
    /* The peer asked for our KeyUpdate: it goes now, not with the next packet. */
    if (r->records.offload->tx_update_requested && !r->pending)
        return flush(r, 0);
    return PACKET_RELAY_OK;
}

enum packet_relay_status packet_relay_from_tls(struct packet_relay *r)
{
    keep_buffers(r);
    return r->ssl != NULL ? from_ssl(r) : from_ktls(r);
}

enum packet_relay_status packet_relay_send_keepalive(struct packet_relay *r, int reply,
                                                     uint64_t value)
{
    enum packet_relay_status st = make_room(r, TUNNEL_FRAME_HEADER_LEN + TUNNEL_KEEPALIVE_LEN);
    if (st != PACKET_RELAY_OK)
        return st;
    tunnel_frame_put_keepalive(&r->writer, reply, value);
    return flush(r, 0);
}

enum packet_relay_status packet_relay_send_config(struct packet_relay *r,
                                                  const struct tunnel_frame_config *config)
{
    enum packet_relay_status st =
        make_room(r, TUNNEL_FRAME_HEADER_LEN + TUNNEL_CONFIG_MAX_PAYLOAD);
    if (st != PACKET_RELAY_OK)
        return st;
    if (tunnel_frame_put_config(&r->writer, config) != 1) {
        snprintf(r->error, sizeof(r->error), "not a valid tunnel configuration");
        return PACKET_RELAY_ERROR;
    }
    return flush(r, 0);
}

void packet_relay_set_mtu(struct packet_relay *r, unsigned mtu)
{
    if (mtu >= TUNNEL_MTU_MIN && mtu <= TUNNEL_MTU_MAX)
        r->mtu = mtu;
}

const struct packet_relay_counters *packet_relay_counters(const struct packet_relay *r)
{
    return &r->counters;
}

const char *packet_relay_error(const struct packet_relay *r)
{
    return r->error;
}

void packet_relay_close_notify(struct packet_relay *r)
{
    if (r->ssl != NULL) {
        SSL_shutdown(r->ssl);
        ERR_clear_error();
        return;
    }
    if (!r->tx_shut)
        ktls_records_close_notify(r->sock_fd);
    r->tx_shut = 1;
}

void packet_relay_abort(struct packet_relay *r, unsigned char alert)
{
    struct linger reset = { 1, 0 };
    int fd = r->ssl != NULL ? SSL_get_fd(r->ssl) : r->sock_fd;
    /* libssl sends no alert of our choosing after the handshake: userspace aborts
     * with the reset alone. */
    if (r->ssl == NULL)
        ktls_records_alert(&r->records, alert != 0 ? alert : TLS_ALERT_INTERNAL_ERROR);
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
}

const struct ktls_offload_state *packet_relay_offload(const struct packet_relay *r)
{
    return r->ssl == NULL ? r->records.offload : NULL;
}
