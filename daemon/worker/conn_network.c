#include "worker/conn_network.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <openssl/err.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "iprelay/packet_relay.h"
#include "ktls/ktls_records.h"
#include "ktls/tls_record.h"
#include "worker/conn_end.h"
#include "proto/auth_protocol.h"
#include "proto/status_record.h"
#include "worker/tun_link.h"

#define MISSED_KEEPALIVES 3
/* How long a connection's session keeps OpenSSL's buffers after its last packet. */
#define IDLE_TRIM_MS 1000
/* While reading the TUN right after writing to it finds nothing, it is tried only
 * once in this many writes. */
#define ANSWER_PROBE 16

struct conn_network {
    int hub;
    struct tun_link *link;
    uint32_t request;                /* hub: the device's request id; 0 once answered badly */
    int waiting;                     /* an answer from the supervisor is due ... */
    uint32_t pending;                /* ... to this request */
    int tun_fd;                      /* hub: owned; client: the dialer's */
    int tun_watched;
    /* Which side has something: each read costs a syscall per packet, so a step reads
     * the side whose event woke it (the TUN is level-triggered and reports again what
     * is left; the session is read until it would block). */
    int tun_ready, tls_ready;
    unsigned answer_misses;          /* writes to the TUN since a read after one found something */
    int want_write;                  /* a batch waits for the socket */
    int reply_due;                   /* a keepalive reply could not go yet */
    uint64_t reply_value;
    int configured;                  /* client: the hub's CONFIG is on the device */
    struct packet_relay *relay;
    struct tunnel_frame_config config;     /* hub: what was sent; client: what was received */
    struct tunnel_frame_config asked;      /* client: what is being configured */
    char device[16];
    unsigned keepalive_s;
    uint64_t next_keepalive_ms, last_heard_ms, keepalive_seq;
    uint64_t seen_frames;            /* frames counted at the last look */
    int moved;
    struct stats_network_peer view;  /* what was last published */
    int ended;
    enum stats_result end_result;
    char end_reason[400];
    void (*wake)(void *arg);
    void *wake_arg;
    conn_network_ended dial_ended;
    void *dial_arg;
    struct event_source tun_events;
    struct conn *conn;
    int peer_row;                    /* in the shared network peer table, or -1 */
};

static void end_with(struct conn_network *n, enum stats_result result, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void end_with(struct conn_network *n, enum stats_result result, const char *fmt, ...)
{
    if (n->ended)
        return;
    n->ended = 1;
    n->end_result = result;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(n->end_reason, sizeof(n->end_reason), fmt, ap);
    va_end(ap);
}

/* N's relay's counters; zero while it has no relay yet. */
static const struct packet_relay_counters *counters_of(const struct conn_network *n)
{
    static const struct packet_relay_counters none;
    return n->relay != NULL ? packet_relay_counters(n->relay) : &none;
}

/* The counters of what the metrics show of C's peer. */
static void peer_counters(const struct conn_network *n, struct stats_network_peer *out)
{
    const struct packet_relay_counters *k = counters_of(n);
    out->packets_in = k->received_packets;
    out->packets_out = k->sent_packets;
    out->bytes_in = k->received_bytes;
    out->bytes_out = k->sent_bytes;
    out->dropped_source = k->dropped_source;
    out->dropped_invalid = k->dropped_invalid;
    out->dropped_device = k->dropped_tun;
}

/* What the metrics show of C's peer (its row in the shared table). */
static void peer_view(const struct conn_network *n, struct stats_network_peer *out)
{
    const struct conn *c = n->conn;
    memset(out, 0, sizeof(*out));
    out->slot = c->tunnel->limit_slot;
    out->ktls = c->offloaded;
    const struct identity *id = c->peer.identity;
    snprintf(out->identity, sizeof(out->identity), "%s", id != NULL && id->cn != NULL ? id->cn : "");
    if (n->config.address_count > 0)
        ip_prefix_format(&n->config.addresses[0], out->address, sizeof(out->address));
    snprintf(out->device, sizeof(out->device), "%s", n->device);
    peer_counters(n, out);
}

/* OPEN: the device or its address may have changed, the view is made again; else
 * only the counters moved (a step of the relay: no formatting on that path). */
static void publish(struct conn_network *n, int open)
{
    if (open)
        peer_view(n, &n->view);
    else
        peer_counters(n, &n->view);
    if (open && n->peer_row < 0)
        n->peer_row = stats_network_peer_open(n->conn->host->stats, &n->view);
    else
        stats_network_peer_update(n->conn->host->stats, n->peer_row, &n->view);
}

/* Hub: tells the client why it is refused (a REFUSED frame, its last), best effort,
 * before the session closes: the client's log then says why it has no tunnel. */
static void send_refusal(struct conn_network *n, const char *reason)
{
    struct conn *c = n->conn;
    unsigned char buf[TUNNEL_FRAME_HEADER_LEN + TUNNEL_REFUSED_MAX];
    struct tunnel_frame_writer w;
    if (!n->hub || !c->handshake_done)
        return;
    tunnel_frame_writer_init(&w, buf, sizeof(buf));
    if (tunnel_frame_put_refused(&w, reason) != 1)
        return;
    if (c->offloaded) {
        /* The kernel seals it as one data record; what it cannot take now is lost. */
        ssize_t sent = send(c->tls_fd, buf, w.len, MSG_DONTWAIT | MSG_NOSIGNAL);
        (void)sent;
    } else if (c->ssl != NULL) {
        SSL_write(c->ssl, buf, (int)w.len);
        ERR_clear_error();
    }
}

/* Client: the hub's REFUSED frame ends the connection as a refusal, in its words
 * (what a peer sent: control bytes and broken UTF-8 are replaced; the log lines that
 * carry the reason quote it). */
static void take_refusal(struct conn_network *n, const struct tunnel_frame *frame)
{
    char text[TUNNEL_REFUSED_MAX + 1];
    auth_protocol_printable(frame->payload, frame->len, 1, text, sizeof(text));
    end_with(n, STATS_RESULT_REFUSED, "the hub refused this client: %s", text);
}

static void on_tun_event(struct event_source *source, uint32_t events)
{
    struct conn_network *n =
        (struct conn_network *)((char *)source - offsetof(struct conn_network, tun_events));
    (void)events;
    n->tun_ready = 1;
    if (n->wake != NULL)
        n->wake(n->wake_arg);
}

/* The TUN is read only while the socket can take what it gives (its queue is the
 * buffer otherwise) and, on a client, once the device has the hub's addresses. */
static void watch_tun(struct conn_network *n, int on)
{
    struct conn *c = n->conn;
    if (on == n->tun_watched || n->tun_fd < 0)
        return;
    if (on) {
        if (event_loop_watch(c->host->loop, n->tun_fd, EPOLLIN, 1, &n->tun_events) < 0) {
            end_with(n, STATS_RESULT_ERROR, "cannot watch the network device %s", n->device);
            return;
        }
    } else {
        event_loop_unwatch(c->host->loop, n->tun_fd);
    }
    n->tun_watched = on;
}

static struct conn_network *network_new(struct conn *c, int hub)
{
    struct conn_network *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return NULL;
    n->hub = hub;
    n->conn = c;
    n->tun_fd = -1;
    n->link = c->host->tun_link;
    n->tun_events.handle = on_tun_event;
    n->peer_row = -1;
    n->tls_ready = 1;
    snprintf(n->device, sizeof(n->device), "-");
    c->net = n;
    return n;
}

int conn_network_prepare_client(struct conn *c, int tun_fd, conn_network_ended ended, void *arg)
{
    struct conn_network *n = network_new(c, 0);
    if (n == NULL)
        return -1;
    n->tun_fd = tun_fd;
    n->dial_ended = ended;
    n->dial_arg = arg;
    snprintf(n->device, sizeof(n->device), "%s", c->tunnel->config->network.device);
    return 0;
}

static void on_configured(void *arg, const struct tun_link_answer *answer)
{
    struct conn_network *n = arg;
    n->waiting = 0;
    if (answer->refused) {
        end_with(n, STATS_RESULT_ERROR, "the network device could not take the hub's "
                 "configuration: %s", answer->reason);
    } else {
        n->config = n->asked;
        if (!n->configured)
            log_info("tunnel=%s peer=%s network device %s is up", n->conn->tunnel->config->name,
                     n->conn->peer_address, n->device);
        n->configured = 1;
        publish(n, 1);
        /* SYNs from this side are clamped to the tunnel's MTU too. */
        packet_relay_set_mtu(n->relay, n->config.mtu);
        n->keepalive_s = n->config.keepalive_s;
        n->next_keepalive_ms = event_loop_now_ms() + (uint64_t)n->keepalive_s * 1000u;
        watch_tun(n, !n->want_write);
    }
    n->tls_ready = 1;
    if (n->wake != NULL)
        n->wake(n->wake_arg);
}

static int same_config(const struct tunnel_frame_config *a, const struct tunnel_frame_config *b)
{
    return a->mtu == b->mtu && a->keepalive_s == b->keepalive_s &&
           a->address_count == b->address_count && a->route_count == b->route_count &&
           memcmp(a->addresses, b->addresses, a->address_count * sizeof(a->addresses[0])) == 0 &&
           memcmp(a->routes, b->routes, a->route_count * sizeof(a->routes[0])) == 0;
}

static void on_control(void *arg, const struct tunnel_frame *frame)
{
    struct conn_network *n = arg;
    n->last_heard_ms = event_loop_now_ms();
    switch (frame->type) {
    case TUNNEL_FRAME_KEEPALIVE:
        n->reply_due = 1;
        n->reply_value = frame->keepalive;
        break;
    case TUNNEL_FRAME_REFUSED:
        if (!n->hub)
            take_refusal(n, frame);
        break;
    case TUNNEL_FRAME_CONFIG: {
        struct tunnel_frame_config config;
        const char *why = NULL;
        if (n->hub || tunnel_frame_config_decode(frame->payload, frame->len, &config, &why) !=
                          TUNNEL_FRAME_OK) {
            end_with(n, STATS_RESULT_ERROR, "the hub's configuration is invalid: %s",
                     why != NULL ? why : "sent by a client");
            return;
        }
        if (n->waiting || (n->configured && same_config(&config, &n->config)))
            return;
        n->asked = config;
        uint32_t id = tun_link_request_configure(n->link, n->conn->tunnel->config->name, &config,
                                                 on_configured, n);
        if (id == 0)
            end_with(n, STATS_RESULT_ERROR, "%s", "the daemon cannot configure the network "
                                                  "device now");
        n->waiting = id != 0;
        n->pending = id;
        break;
    }
    default:
        break;
    }
}

/* The hub's CONFIG for the client: its addresses, with the pool's length when the
 * address is in the hub's pool (the client then reaches the hub and the other
 * clients on-link), the MTU, the keepalive and the networks behind the hub. */
static void build_client_config(const struct network_config *net, const struct ip_prefix *leased,
                                size_t count, struct tunnel_frame_config *out)
{
    memset(out, 0, sizeof(*out));
    out->mtu = net->mtu;
    out->keepalive_s = net->keepalive;
    for (size_t i = 0; i < count && out->address_count < TUNNEL_CONFIG_MAX_ADDRESSES; i++) {
        struct ip_prefix a = leased[i];
        for (size_t h = 0; h < net->hub_address_count; h++) {
            const struct ip_prefix *hub = &net->hub_addresses[h];
            if (hub->family == a.family && ip_prefix_contains(hub, a.family, a.addr))
                a.len = hub->len;
        }
        if (a.len == ip_prefix_max_len(a.family)) {
            /* Outside the pool: the hub's own address is routed through the tunnel. */
            for (size_t h = 0; h < net->hub_address_count; h++) {
                if (net->hub_addresses[h].family != a.family ||
                    out->route_count >= TUNNEL_CONFIG_MAX_ROUTES)
                    continue;
                struct ip_prefix hub = net->hub_addresses[h];
                hub.len = ip_prefix_max_len(hub.family);
                out->routes[out->route_count++] = hub;
            }
        }
        out->addresses[out->address_count++] = a;
    }
    for (size_t i = 0; i < net->push_route_count && out->route_count < TUNNEL_CONFIG_MAX_ROUTES; i++)
        out->routes[out->route_count++] = net->push_routes[i];
}

static int make_relay(struct conn_network *n, const struct ip_prefix *allowed, size_t allowed_count)
{
    struct conn *c = n->conn;
    const struct network_config *net = &c->tunnel->config->network;
    struct packet_relay_config config = {
        .hub = n->hub,
        .mtu = n->hub ? net->mtu : TUNNEL_MTU_MAX,
        .mss_clamp = n->hub ? net->mss_clamp : 1,
        .allowed = allowed,
        .allowed_count = allowed_count,
        .on_control = on_control,
        .arg = n,
    };
    n->relay = c->offloaded ? packet_relay_new_ktls(n->tun_fd, c->tls_fd, &c->offload, &c->secrets,
                                                    &config)
                            : packet_relay_new(n->tun_fd, c->ssl, &config);
    if (n->relay == NULL) {
        end_with(n, STATS_RESULT_ERROR, "%s", "cannot start the packet relay");
        return -1;
    }
    n->last_heard_ms = event_loop_now_ms();
    return 0;
}

static void on_hub_device(void *arg, const struct tun_link_answer *answer)
{
    struct conn_network *n = arg;
    struct conn *c = n->conn;
    n->waiting = 0;
    if (answer->refused) {
        n->request = 0;
        end_with(n, STATS_RESULT_REFUSED, "no network device for this client: %s", answer->reason);
        send_refusal(n, n->end_reason);
        goto out;
    }
    n->tun_fd = answer->fd;
    snprintf(n->device, sizeof(n->device), "%s", answer->device);
    const struct network_config *net = &c->tunnel->config->network;
    struct ip_prefix allowed[PACKET_RELAY_MAX_ALLOWED];
    size_t count = 0;
    for (size_t i = 0; i < answer->address_count && count < PACKET_RELAY_MAX_ALLOWED; i++)
        allowed[count++] = answer->addresses[i];
    const char *cn = c->peer.identity->cn;
    for (size_t i = 0; i < net->client_network_count && count < PACKET_RELAY_MAX_ALLOWED; i++)
        if (strcmp(net->client_networks[i].identity, cn) == 0)
            allowed[count++] = net->client_networks[i].prefix;
    build_client_config(net, answer->addresses, answer->address_count, &n->config);
    if (make_relay(n, allowed, count) < 0)
        goto out;
    enum packet_relay_status status = packet_relay_send_config(n->relay, &n->config);
    if (status == PACKET_RELAY_ERROR) {
        end_with(n, STATS_RESULT_ERROR, "cannot send the configuration: %s",
                 packet_relay_error(n->relay));
        goto out;
    }
    n->want_write = status == PACKET_RELAY_WANT_WRITE;
    n->configured = 1;
    publish(n, 1);
    n->keepalive_s = net->keepalive;
    n->next_keepalive_ms = event_loop_now_ms() + (uint64_t)n->keepalive_s * 1000u;
    watch_tun(n, !n->want_write);
out:
    /* What the client sent while the device was being made waits in the socket. */
    n->tls_ready = 1;
    if (n->wake != NULL)
        n->wake(n->wake_arg);
}

int conn_network_start(struct conn *c, void (*wake)(void *arg), void *arg,
                       enum stats_result *result, const char **reason)
{
    struct conn_network *n = c->net;
    if (n == NULL && (n = network_new(c, 1)) == NULL) {
        *result = STATS_RESULT_ERROR;
        *reason = "out of memory";
        return -1;
    }
    n->wake = wake;
    n->wake_arg = arg;
    if (!n->hub) {
        make_relay(n, NULL, 0);
    } else if (c->peer.identity == NULL || c->peer.identity->cn == NULL) {
        end_with(n, STATS_RESULT_REFUSED, "%s", "the client certificate has no CN, which a "
                                                "network tunnel gives its address by");
        send_refusal(n, n->end_reason);
    } else if (n->link == NULL) {
        end_with(n, STATS_RESULT_ERROR, "%s", "the daemon cannot make network devices now");
    } else {
        n->request = tun_link_request_hub(n->link, c->tunnel->config->name, c->peer.identity->cn,
                                          on_hub_device, n);
        if (n->request == 0)
            end_with(n, STATS_RESULT_ERROR, "%s", "the daemon cannot make network devices now");
        n->waiting = n->request != 0;
        n->pending = n->request;
    }
    if (n->ended) {
        *result = n->end_result;
        *reason = n->end_reason;
        return -1;
    }
    return 0;
}

static uint64_t frames_seen(const struct packet_relay_counters *k)
{
    /* Optional frames this end skips are whole frames too: their sender is alive. */
    return k->received_packets + k->dropped_invalid + k->dropped_source + k->dropped_tun +
           k->skipped_optional;
}

static int ended(struct conn_network *n, enum stats_result *result, const char **reason)
{
    if (!n->ended)
        return 0;
    *result = n->end_result;
    *reason = n->end_reason;
    return -1;
}

static void note_status(struct conn_network *n, enum packet_relay_status status)
{
    if (status == PACKET_RELAY_ERROR)
        end_with(n, STATS_RESULT_ERROR, "%s", packet_relay_error(n->relay));
    else if (status == PACKET_RELAY_CLOSED)
        end_with(n, packet_relay_error(n->relay)[0] ? STATS_RESULT_ERROR : STATS_RESULT_COMPLETED,
                 "%s", packet_relay_error(n->relay)[0] ? packet_relay_error(n->relay)
                                                        : "closed by the peer");
    else if (status == PACKET_RELAY_WANT_WRITE && !n->want_write) {
        n->want_write = 1;
        watch_tun(n, 0);
    }
}

/* What the kernel answers at once to the packets just written to the TUN (a reply
 * from this host, a TCP ACK) is in the TUN already: it goes now rather than after
 * another turn of the loop. Packets that went on to other hosts leave nothing there,
 * so after a read that found nothing only every ANSWER_PROBE-th write is followed by
 * one. */
static void read_answers(struct conn_network *n)
{
    if (n->want_write || !n->tun_watched)
        return;
    if (n->answer_misses % ANSWER_PROBE != 0) {
        n->answer_misses++;
        return;
    }
    uint64_t sent = packet_relay_counters(n->relay)->sent_packets;
    note_status(n, packet_relay_from_tun(n->relay));
    n->answer_misses = packet_relay_counters(n->relay)->sent_packets != sent ? 0 : n->answer_misses + 1;
}

int conn_network_step(struct conn *c, enum stats_result *result, const char **reason)
{
    struct conn_network *n = c->net;
    if (n->relay == NULL || n->ended)
        return ended(n, result, reason);
    uint64_t before = packet_relay_counters(n->relay)->sent_packets;
    if (n->want_write || (n->tun_watched && n->tun_ready)) {
        n->tun_ready = 0;
        enum packet_relay_status status = packet_relay_from_tun(n->relay);
        if (status == PACKET_RELAY_OK && n->want_write) {
            n->want_write = 0;
            watch_tun(n, n->configured);
        }
        note_status(n, status);
    }
    if (!n->ended && n->tls_ready) {
        uint64_t delivered = packet_relay_counters(n->relay)->received_packets;
        enum packet_relay_status status = packet_relay_from_tls(n->relay);
        /* WANT_WRITE: the session must write first; it is read again after that. */
        n->tls_ready = status == PACKET_RELAY_WANT_WRITE;
        note_status(n, status);
        if (!n->ended && packet_relay_counters(n->relay)->received_packets != delivered)
            read_answers(n);
    }
    if (!n->ended && n->reply_due) {
        enum packet_relay_status status = packet_relay_send_keepalive(n->relay, 1, n->reply_value);
        if (status == PACKET_RELAY_OK)
            n->reply_due = 0;
        note_status(n, status);
    }
    const struct packet_relay_counters *k = packet_relay_counters(n->relay);
    uint64_t seen = frames_seen(k);
    if (seen != n->seen_frames) {
        n->seen_frames = seen;
        n->last_heard_ms = event_loop_now_ms();
        n->moved = 1;
    }
    if (k->sent_packets != before)
        n->moved = 1;
    if (n->moved)
        publish(n, 0);
    return ended(n, result, reason);
}

int conn_network_tick(struct conn *c, uint64_t now_ms, enum stats_result *result,
                      const char **reason)
{
    struct conn_network *n = c->net;
    uint64_t setup_ms = c->tunnel->config->handshake_timeout * 1000u;
    if (!n->configured && !n->ended && now_ms - c->started_ms >= 2 * setup_ms) {
        /* A hub that never sends its CONFIG, or a device that never comes, must not
         * hold the tunnel down for good: the client reconnects. */
        char limit[32];
        snprintf(limit, sizeof(limit), "%llu", (unsigned long long)(2 * setup_ms / 1000));
        end_with(n, STATS_RESULT_ERROR, n->hub ? "no network device within %ss"
                                               : "no configuration from the hub within %ss", limit);
    }
    if (n->relay != NULL && !n->ended && now_ms - c->last_activity_ms >= IDLE_TRIM_MS)
        packet_relay_trim(n->relay);
    if (n->relay == NULL || !n->configured || n->keepalive_s == 0 || n->ended)
        return ended(n, result, reason);
    uint64_t interval = (uint64_t)n->keepalive_s * 1000u;
    if (now_ms - n->last_heard_ms >= MISSED_KEEPALIVES * interval) {
        char silent[32];
        snprintf(silent, sizeof(silent), "%llu", (unsigned long long)(MISSED_KEEPALIVES * n->keepalive_s));
        end_with(n, STATS_RESULT_ERROR, "the peer was silent for %ss (keepalives unanswered)", silent);
    } else if (now_ms >= n->next_keepalive_ms && !n->want_write) {
        note_status(n, packet_relay_send_keepalive(n->relay, 0, ++n->keepalive_seq));
        n->next_keepalive_ms = now_ms + interval;
    }
    return ended(n, result, reason);
}

void conn_network_note_tls(struct conn *c)
{
    if (c->net != NULL)
        c->net->tls_ready = 1;
}

int conn_network_moved(struct conn *c)
{
    struct conn_network *n = c->net;
    int moved = n != NULL && n->moved;
    if (n != NULL)
        n->moved = 0;
    return moved;
}

uint32_t conn_network_request(const struct conn *c)
{
    return c->net != NULL && c->net->hub ? c->net->request : 0;
}

void conn_network_end(struct conn *c)
{
    struct conn_network *n = c->net;
    if (n == NULL)
        return;
    watch_tun(n, 0);
    publish(n, 0);
    stats_network_peer_close(c->host->stats, n->peer_row);
    n->peer_row = -1;
    /* A cancelled hub request's late device is closed and its lease released there. */
    if (n->waiting && n->link != NULL)
        tun_link_cancel(n->link, n->pending);
    else if (n->hub && n->request != 0 && n->link != NULL)
        tun_link_release(n->link, n->request);
    if (n->hub) {
        if (n->tun_fd >= 0)
            close(n->tun_fd);
        n->request = 0;
    } else {
        if (n->dial_ended != NULL)
            n->dial_ended(n->dial_arg, n->configured);
        n->dial_ended = NULL;
    }
    n->tun_fd = -1;
    n->waiting = 0;
}

int conn_network_finish_tls(struct conn *c, enum stats_result result, unsigned char alert)
{
    struct conn_network *n = c->net;
    int abort = conn_end_is_abort(result) || alert != 0;
    if (n == NULL || !c->handshake_done)
        return 0;
    if (n->relay != NULL) {
        if (abort)
            packet_relay_abort(n->relay, alert);
        else
            packet_relay_close_notify(n->relay);
        return 1;
    }
    if (!c->offloaded)
        return 0;
    if (abort)
        ktls_records_send_alert(c->tls_fd, alert != 0 ? alert : TLS_ALERT_INTERNAL_ERROR);
    else
        ktls_records_close_notify(c->tls_fd);
    return 1;
}

int conn_network_bytes(const struct conn *c, uint64_t *from_tls, uint64_t *to_tls)
{
    if (c->net == NULL)
        return 0;
    const struct packet_relay_counters *k = counters_of(c->net);
    *from_tls = k->received_bytes;
    *to_tls = k->sent_bytes;
    return 1;
}

void conn_network_free(struct conn *c)
{
    if (c->net == NULL)
        return;
    packet_relay_free(c->net->relay);
    free(c->net);
    c->net = NULL;
}

void conn_network_describe(const struct conn *c, FILE *out)
{
    const struct conn_network *n = c->net;
    if (n == NULL)
        return;
    char text[64];
    status_record_text(out, "device", n->device);
    for (size_t i = 0; i < n->config.address_count; i++)
        status_record_text(out, i == 0 ? "address" : "address6",
                           ip_prefix_format(&n->config.addresses[i], text, sizeof(text)));
    const struct packet_relay_counters *k = counters_of(n);
    status_record_number(out, "packets_out", k->sent_packets);
    status_record_number(out, "packets_in", k->received_packets);
    status_record_number(out, "dropped_invalid", k->dropped_invalid);
    status_record_number(out, "dropped_source", k->dropped_source);
    status_record_number(out, "dropped_device", k->dropped_tun);
    status_record_number(out, "skipped_frames", k->skipped_optional);
}

const char *conn_network_audit(const struct conn *c, char *buf, size_t len)
{
    const struct conn_network *n = c->net;
    buf[0] = '\0';
    if (n == NULL || len == 0)
        return buf;
    const struct packet_relay_counters *k = counters_of(n);
    char address[64] = "-";
    if (n->config.address_count > 0)
        ip_prefix_format(&n->config.addresses[0], address, sizeof(address));
    snprintf(buf, len, " device=%s address=%s packets_in=%llu packets_out=%llu "
                       "dropped_source=%llu dropped_invalid=%llu dropped_device=%llu",
             n->device, address, (unsigned long long)k->received_packets,
             (unsigned long long)k->sent_packets, (unsigned long long)k->dropped_source,
             (unsigned long long)k->dropped_invalid, (unsigned long long)k->dropped_tun);
    return buf;
}
