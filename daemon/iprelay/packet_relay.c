#include "iprelay/packet_relay.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "packet/ip_packet.h"
#include "packet/mss_clamp.h"

/* SSL_read gives at most one record's plaintext a call. */
#define RECORD_PLAINTEXT_MAX 16384

struct packet_relay {
    int tun_fd;
    SSL *ssl;
    int hub;
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
    struct tunnel_frame_reader reader;
    unsigned char in[RECORD_PLAINTEXT_MAX];
    unsigned char packet[TUNNEL_MTU_MAX];
    char error[256];
};

struct packet_relay *packet_relay_new(int tun_fd, SSL *ssl,
                                      const struct packet_relay_config *config)
{
    if (config->mtu < TUNNEL_MTU_MIN || config->mtu > TUNNEL_MTU_MAX ||
        config->allowed_count > PACKET_RELAY_MAX_ALLOWED ||
        (config->allowed_count > 0 && config->allowed == NULL))
        return NULL;
    struct packet_relay *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->tun_fd = tun_fd;
    r->ssl = ssl;
    r->hub = config->hub;
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

void packet_relay_free(struct packet_relay *r)
{
    free(r);
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

/* Writes the batch out. OK when it went (or there was none), WANT_WRITE when it waits. */
static enum packet_relay_status flush(struct packet_relay *r)
{
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

/* Room for one more packet of the MTU, writing the batch out first when needed. */
static enum packet_relay_status make_room(struct packet_relay *r, size_t need)
{
    if (r->pending)
        return flush(r);
    if (r->writer.cap - r->writer.len >= need)
        return PACKET_RELAY_OK;
    return flush(r);
}

enum packet_relay_status packet_relay_from_tun(struct packet_relay *r)
{
    enum packet_relay_status st;

    for (int n = 0; n < PACKET_RELAY_READS_PER_CALL; n++) {
        if ((st = make_room(r, TUNNEL_FRAME_HEADER_LEN + r->mtu)) != PACKET_RELAY_OK)
            return st;
        ssize_t len = read(r->tun_fd, r->packet, sizeof(r->packet));
        if (len < 0 && errno == EINTR)
            continue;
        if (len < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (len < 0) {
            snprintf(r->error, sizeof(r->error), "reading the TUN device: %s", strerror(errno));
            return PACKET_RELAY_ERROR;
        }
        struct ip_packet p;
        if ((size_t)len > r->mtu || ip_packet_parse(r->packet, (size_t)len, &p) != IP_PACKET_OK) {
            r->counters.dropped_invalid++;
            continue;
        }
        /* SYNs leave through some TUN whichever way they go: clamping here covers both. */
        r->counters.clamped += (uint64_t)mss_clamp(r->packet, &p, r->mtu);
        tunnel_frame_put_packet(&r->writer, r->packet, (size_t)len);
        r->counters.sent_packets++;
    }
    return flush(r);
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
        r->counters.dropped_source++;
        return;
    }
    if (write(r->tun_fd, r->packet, f->len) < 0) {
        r->counters.dropped_tun++;
        return;
    }
    r->counters.received_packets++;
}

enum packet_relay_status packet_relay_from_tls(struct packet_relay *r)
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
                return PACKET_RELAY_CLOSED;
            /* A peer that went away without close_notify (a crash, a cut cable) ends
             * the tunnel as a close does; the reason stays for the log. */
            if ((e == SSL_ERROR_SYSCALL && errno == 0) ||
                (e == SSL_ERROR_SSL &&
                 ERR_GET_REASON(ERR_peek_error()) == SSL_R_UNEXPECTED_EOF_WHILE_READING)) {
                snprintf(r->error, sizeof(r->error), "the peer closed without close_notify");
                ERR_clear_error();
                return PACKET_RELAY_CLOSED;
            }
            return fail(r, "receiving from the peer", e);
        }
        for (size_t at = 0; at < (size_t)n;) {
            struct tunnel_frame f;
            size_t used = 0;
            enum tunnel_frame_status st =
                tunnel_frame_read(&r->reader, r->in + at, (size_t)n - at, &used, &f);
            at += used;
            if (st == TUNNEL_FRAME_NEED_MORE)
                break;
            if (st != TUNNEL_FRAME_OK) {
                snprintf(r->error, sizeof(r->error), "the peer broke the framing: %s",
                         tunnel_frame_status_text(st));
                return PACKET_RELAY_ERROR;
            }
            if (f.type == TUNNEL_FRAME_PACKET)
                deliver(r, &f);
            else if (r->on_control != NULL)
                r->on_control(r->arg, &f);
        }
    }
}

enum packet_relay_status packet_relay_send_keepalive(struct packet_relay *r, int reply,
                                                     uint64_t value)
{
    enum packet_relay_status st = make_room(r, TUNNEL_FRAME_HEADER_LEN + TUNNEL_KEEPALIVE_LEN);
    if (st != PACKET_RELAY_OK)
        return st;
    tunnel_frame_put_keepalive(&r->writer, reply, value);
    return flush(r);
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
    return flush(r);
}

const struct packet_relay_counters *packet_relay_counters(const struct packet_relay *r)
{
    return &r->counters;
}

const char *packet_relay_error(const struct packet_relay *r)
{
    return r->error;
}
