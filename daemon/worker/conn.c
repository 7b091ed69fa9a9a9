#include "worker/conn.h"

#include <errno.h>
#include <malloc.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <openssl/err.h>

#include "core/address.h"
#include "ktls/ktls_offload.h"
#include "core/log.h"
#include "relay/relay.h"
#include "relay/relay_splice.h"
#include "auth/second_factor.h"
#include "worker/admission.h"
#include "worker/conn_audit.h"
#include "worker/conn_report.h"
#include "worker/conn_state.h"
#include "worker/conn_end.h"
#include "worker/conn_login.h"
#include "worker/conn_network.h"
#include "worker/conn_preamble.h"
#include "worker/refusal_log.h"
#include "worker/refusal_notice.h"
#include "worker/stats.h"
#include "tls/tls_context.h"

#define conn_of(source, member) \
    ((struct conn *)((char *)(source) - offsetof(struct conn, member)))

static void conn_step(struct conn *c);

static void on_tls_event(struct event_source *source, uint32_t events)
{
    struct conn *c = conn_of(source, tls_events);
    if (c->state == CONN_RELAYING && !c->offloaded)
        relay_note_events(&c->relay, 1, events);
    conn_network_note_tls(c);
    conn_step(c);
}

static void on_plain_event(struct event_source *source, uint32_t events)
{
    struct conn *c = conn_of(source, plain_events);
    if (c->state == CONN_RELAYING && !c->offloaded)
        relay_note_events(&c->relay, 0, events);
    conn_step(c);
}

/* Edge-triggered epoll will not wake a relay that stopped before EAGAIN: it waits
 * here for its next turn instead. */
static void queue_pending(struct conn *c)
{
    if (c->queued)
        return;
    c->queued = 1;
    c->next_pending = c->host->pending;
    c->host->pending = c;
}

static void unqueue_pending(struct conn *c)
{
    if (!c->queued)
        return;
    for (struct conn **link = &c->host->pending; *link != NULL; link = &(*link)->next_pending) {
        if (*link == c) {
            *link = c->next_pending;
            break;
        }
    }
    c->queued = 0;
}

/* Ends C: audit line for a tunnel that got past its handshake, refusal line for one
 * that did not; RESULT is what the metrics count. C is freed after the current event
 * batch. */
static void conn_close(struct conn *c, enum stats_result result, const char *reason)
{
    if (c->state == CONN_CLOSED)
        return;
    unqueue_pending(c);
    struct stats *stats = c->host->stats;
    int slot = c->tunnel->limit_slot;
    reason = refusal_notice_conn_end(stats, c->tunnel, c->ssl, &c->peer,
                                     !c->handshake_done && result == STATS_RESULT_REFUSED,
                                     c->offloaded ? c->splice.from_tls.bytes : c->relay.from_tls.bytes, reason);
    if (c->handshake_done) {
        if (result == STATS_RESULT_TARGET_UNREACHABLE)
            conn_end_target_unreachable(c->tunnel, c->peer_address, reason);
        conn_report_audit(c, reason, result);
    } else {
        if (c->timed_out)
            refusal_log_write(REFUSAL_TIMEOUT, c->tunnel, c->peer_address, c->peer.identity, reason);
        else
            conn_audit_refusal(c->tunnel->config->name, c->peer_address, c->peer.identity, reason);
        if (result == STATS_RESULT_REFUSED)
            stats_count_refusal(stats, slot, reason);
    }
    stats_count_result(stats, slot, result);
    if (c->state == CONN_RELAYING)
        conn_report_bytes(c);
    conn_network_end(c);
    if (c->offloaded && c->splice.decrypt_errors > 0)
        stats_count_decrypt_error(stats, slot);
    /* A network tunnel's session is its packet relay's to end. */
    int network_ended = conn_network_finish_tls(c, result, c->abort_alert);
    const struct conn_end_sockets sockets = {
        network_ended ? NULL : c->ssl, &c->splice, c->tls_fd, c->plain_fd, c->handshake_done,
        c->offloaded && c->net == NULL, c->relay.to_tls.shut || network_ended, c->abort_alert,
        c->state == CONN_RELAYING && c->offloaded && c->net == NULL &&
            c->splice.end.abort == RELAY_ABORT_NONE,
    };
    conn_end_close(&sockets, result);
    c->tls_fd = c->plain_fd = -1;
    c->state = CONN_CLOSED;

    struct conn_host *host = c->host;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        host->live = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    host->live_count--;
    admission_release(host, c->tunnel, &c->admission);
    c->prev = NULL;
    c->next = host->closed;
    host->closed = c;
}

static void conn_free(struct conn *c)
{
    relay_release(&c->relay);
    relay_splice_release(&c->splice);
    conn_login_free(c);
    conn_network_free(c);
    conn_preamble_free(c);
    ktls_keys_wipe(&c->secrets);
    SSL_free(c->ssl);
    tls_context_forget_peer(&c->peer);
    free(c);
}

static int target_fd(const struct conn *c)
{
    return c->tunnel->config->mode == TUNNEL_MODE_SERVER ? c->plain_fd : c->tls_fd;
}

static void tune_socket(int fd)
{
    int one = 1;
    /* Not for unix sockets; failures there are expected and harmless. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
}

static void start_relay(struct conn *c)
{
    if (c->offloaded) {
        char reason[200];
        if (relay_splice_init(&c->splice, c->tls_fd, c->plain_fd, &c->offload, &c->secrets,
                              reason, sizeof(reason)) < 0) {
            conn_close(c, STATS_RESULT_ERROR, reason);
            return;
        }
    } else {
        relay_init(&c->relay, c->ssl, c->tls_fd, c->plain_fd);
    }
    c->state = CONN_RELAYING;
    conn_end_arm(c->tls_fd, c->plain_fd);
    stats_count_relay_path(c->host->stats, c->tunnel->limit_slot, c->offloaded);
    c->last_activity_ms = event_loop_now_ms();
    log_debug("tunnel=%s peer=%s relaying", c->tunnel->config->name, c->peer_address);
}

/* Returns 1 once per worker when the kernel offers kTLS; the answer is kept, as the
 * tls module cannot appear without the parent loading it at start. */
static int kernel_offers_ktls(char *reason, size_t len)
{
    static int known = 0, ready = 0;
    static char why[200];
    if (!known) {
        ready = ktls_offload_kernel_ready(why, sizeof(why));
        known = 1;
    }
    if (!ready)
        snprintf(reason, len, "%s", why);
    return ready;
}

/* Hands the session to the kernel as the tunnel's ktls policy says. Returns 0 to go
 * on relaying (offloaded or in userspace), 1 after closing C. */
static int offload_to_kernel(struct conn *c)
{
    enum ktls_policy policy = c->tunnel->config->ktls;
    if (policy == KTLS_POLICY_OFF)
        return 0;
    char reason[300];
    int installed = -1;
    if (!kernel_offers_ktls(reason, sizeof(reason)))
        ;
    else if (!c->ulp_attached)
        snprintf(reason, sizeof(reason), "setsockopt(TCP_ULP, tls): %s", strerror(c->ulp_error));
    else
        installed = ktls_offload_install(c->ssl, c->tls_fd, &c->secrets, &c->offload, reason,
                                         sizeof(reason));
    if (installed == 0) {
        c->offload.policy.interval_ms = c->tunnel->config->rekey_interval * 1000;
        c->offload.policy.bytes = c->tunnel->config->rekey_bytes;
        /* The kernel owns the session now: no OpenSSL state stays behind. */
        SSL_free(c->ssl);
        c->ssl = NULL;
        c->offloaded = 1;
        return 0;
    }
    if (installed == -2) {
        conn_close(c, STATS_RESULT_ERROR, reason);
        return 1;
    }
    if (policy == KTLS_POLICY_REQUIRE) {
        char refusal[400];
        snprintf(refusal, sizeof(refusal), "ktls = require but kernel TLS offload is not available: %s",
                 reason);
        c->handshake_done = 0;
        conn_close(c, STATS_RESULT_REFUSED, refusal);
        return 1;
    }
    log_info("tunnel=%s peer=%s kTLS not used, relaying in userspace: %s", c->tunnel->config->name,
             c->peer_address, reason);
    return 0;
}

/* Closes C: what it dials (the target, or the client tunnel's proxy) gave ERROR.
 * Returns -1. */
static int unreachable(struct conn *c, int error)
{
    const struct sockaddr_storage *to;
    socklen_t to_len;
    const char *what;
    const struct address *named = conn_preamble_dial(c->tunnel->config, &to, &to_len, &what);
    char where[300], reason[400];
    snprintf(reason, sizeof(reason), "%s %s unreachable: %s", what,
             address_format(named, where, sizeof(where)), strerror(error));
    conn_close(c, STATS_RESULT_TARGET_UNREACHABLE, reason);
    return -1;
}

static int start_target_connect(struct conn *c)
{
    const struct tunnel_config *t = c->tunnel->config;
    const struct sockaddr_storage *to;
    socklen_t to_len;
    const char *what;
    conn_preamble_dial(t, &to, &to_len, &what);
    int fd = socket(to->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        char reason[160];
        snprintf(reason, sizeof(reason), "cannot open a socket to the target: %s", strerror(errno));
        conn_close(c, STATS_RESULT_ERROR, reason);
        return -1;
    }
    if (t->mode == TUNNEL_MODE_SERVER)
        c->plain_fd = fd;
    else
        c->tls_fd = fd;
    tune_socket(fd);
    struct event_source *events = t->mode == TUNNEL_MODE_SERVER ? &c->plain_events : &c->tls_events;
    if (event_loop_watch(c->host->loop, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, 0, events) < 0) {
        conn_close(c, STATS_RESULT_ERROR, "cannot watch the target socket");
        return -1;
    }
    c->state = CONN_CONNECTING;
    if (connect(fd, (const struct sockaddr *)to, to_len) < 0 && errno != EINPROGRESS)
        return unreachable(c, errno);
    return 0;
}

/* Returns 1 once connected, 0 while in progress, -1 after closing C. */
static int check_target_connected(struct conn *c)
{
    int fd = target_fd(c);
    int error = 0;
    socklen_t len = sizeof(error);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
        error = errno;
    if (error == 0) {
        struct sockaddr_storage ss;
        socklen_t sslen = sizeof(ss);
        if (getpeername(fd, (struct sockaddr *)&ss, &sslen) == 0)
            return 1;
        if (errno == ENOTCONN)
            return 0;
        error = errno;
    }
    return unreachable(c, error);
}

/* Sends the PROXY header or runs the CONNECT. Returns 1 once done, 0 while it waits,
 * -1 after closing C. */
static int run_preamble(struct conn *c)
{
    enum stats_result result;
    char reason[600];
    int done = conn_preamble_step(c, &result, reason, sizeof(reason));
    if (done < 0)
        conn_close(c, result, reason);
    return done;
}

/* The ULP goes on while the socket is surely ESTABLISHED (see ktls_offload_attach);
 * the keys follow after the handshake and the access checks. */
static void attach_ulp(struct conn *c)
{
    char reason[200];
    if (c->tunnel->config->ktls == KTLS_POLICY_OFF || !kernel_offers_ktls(reason, sizeof(reason)))
        return;
    if (ktls_offload_attach(c->tls_fd, reason, sizeof(reason)) == 0)
        c->ulp_attached = 1;
    else
        c->ulp_error = errno;
}

static int start_handshake(struct conn *c)
{
    attach_ulp(c);
    c->ssl = tls_context_new_ssl(c->tunnel->ssl_ctx, c->tunnel->config, c->tls_fd, &c->peer);
    if (c->ssl == NULL) {
        conn_close(c, STATS_RESULT_ERROR, "cannot start the TLS session");
        return -1;
    }
    if (c->tunnel->config->ktls != KTLS_POLICY_OFF)
        ktls_offload_collect_secrets(c->ssl, &c->secrets);
    c->state = CONN_HANDSHAKING;
    return 0;
}

static void wake_login(void *arg)
{
    conn_step(arg);
}

/* The login channel keeps its SSL (no kTLS, no target): it only carries frames, or
 * the login page's HTTP. */
static void start_login(struct conn *c)
{
    if (conn_login_start(c, wake_login) < 0) {
        conn_close(c, STATS_RESULT_ERROR, "login: out of memory");
        return;
    }
    c->state = CONN_LOGIN;
}

static void wake_network(void *arg)
{
    conn_step(arg);
}

/* A network tunnel relays packets between its TUN device and the session, in the
 * kernel's TLS as the tunnel's ktls policy says. */
static void start_network(struct conn *c)
{
    enum stats_result result;
    const char *reason;
    if (offload_to_kernel(c))
        return;
    c->state = CONN_RELAYING;
    conn_end_arm(c->tls_fd, -1);
    stats_count_relay_path(c->host->stats, c->tunnel->limit_slot, c->offloaded);
    c->last_activity_ms = event_loop_now_ms();
    if (conn_network_start(c, wake_network, c, &result, &reason) < 0)
        conn_close(c, result, reason);
}

static void handshake_finished(struct conn *c)
{
    c->handshake_done = 1;
    snprintf(c->tls_version, sizeof(c->tls_version), "%s", SSL_get_version(c->ssl));
    snprintf(c->cipher, sizeof(c->cipher), "%s", SSL_get_cipher_name(c->ssl));
    if (c->tunnel->config->mode == TUNNEL_MODE_SERVER && second_factor_is_login(c->ssl)) {
        start_login(c);
        return;
    }
    if (c->tunnel->config->type == TUNNEL_TYPE_NETWORK) {
        start_network(c);
        return;
    }
    if (offload_to_kernel(c))
        return;
    if (c->tunnel->config->mode == TUNNEL_MODE_SERVER) {
        if (start_target_connect(c) < 0)
            return;
        if (check_target_connected(c) == 1 && run_preamble(c) == 1)
            start_relay(c);
    } else {
        start_relay(c);
    }
}

/* Returns 1 when the handshake is complete, 0 while it needs I/O, -1 after closing C. */
static int continue_handshake(struct conn *c)
{
    ERR_clear_error();
    errno = 0;
    int done = SSL_do_handshake(c->ssl);
    if (done == 1)
        return 1;
    int error = SSL_get_error(c->ssl, done);
    if (error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE)
        return 0;
    char reason[600];
    tls_context_handshake_failure(c->ssl, &c->peer, error, reason, sizeof(reason));
    second_factor_handshake_failed(c->host->pam_link, c->tunnel->config, c->ssl, error, reason);
    /* A failed handshake is a refusal, even though OpenSSL may think it got far. */
    c->handshake_done = 0;
    conn_close(c, STATS_RESULT_REFUSED, reason);
    return -1;
}

static void conn_step(struct conn *c)
{
    switch (c->state) {
    case CONN_CONNECTING: {
        int connected = conn_preamble_started(c) ? 1 : check_target_connected(c);
        if (connected != 1 || run_preamble(c) != 1)
            return;
        if (c->tunnel->config->mode == TUNNEL_MODE_SERVER) {
            start_relay(c);
            break;
        }
        if (start_handshake(c) < 0)
            return;
        /* The client hello goes out at once. */
        __attribute__((fallthrough));
    }
    case CONN_HANDSHAKING:
        if (continue_handshake(c) != 1)
            return;
        handshake_finished(c);
        if (c->state == CONN_LOGIN)
            goto login;
        if (c->state != CONN_RELAYING)
            return;
        break;
    case CONN_RELAYING:
        break;
    case CONN_LOGIN:
    login: {
        const char *ended = conn_login_step(c);
        if (ended != NULL)
            conn_close(c, STATS_RESULT_COMPLETED, ended);
        return;
    }
    case CONN_CLOSED:
        return;
    }
    if (c->net != NULL) {
        enum stats_result result;
        const char *reason;
        if (conn_network_step(c, &result, &reason) < 0)
            conn_close(c, result, reason);
        else if (conn_network_moved(c))
            c->last_activity_ms = event_loop_now_ms();
        return;
    }
    enum relay_status status;
    int moved;
    const char *close_reason;
    const struct relay_end *end = c->offloaded ? &c->splice.end : &c->relay.end;
    char words[400];
    if (c->offloaded) {
        status = relay_splice_pump(&c->splice);
        moved = c->splice.moved;
        close_reason = c->splice.close_reason;
    } else {
        status = relay_pump(&c->relay);
        moved = c->relay.moved;
        close_reason = c->relay.close_reason;
    }
    if (moved) {
        c->last_activity_ms = event_loop_now_ms();
        conn_report_bytes(c);
    }
    if (status == RELAY_YIELDED)
        queue_pending(c);
    else if (status == RELAY_FINISHED)
        conn_close(c, STATS_RESULT_COMPLETED, close_reason);
    else if (status == RELAY_FAILED)
        conn_close(c, STATS_RESULT_ERROR, conn_end_relay_failed(c->tunnel, c->peer_address, end,
                                                               close_reason, words, sizeof(words)));
}

/* Makes a connection of TUNNEL with PEER_ADDRESS, admitted with TICKET, and links it
 * into HOST. Returns it, or NULL (logged) with the ticket given back. */
static struct conn *conn_new(struct conn_host *host, const struct tunnel *tunnel,
                             const struct admission_ticket *ticket, const char *peer_address)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        log_error("tunnel=%s peer=%s: out of memory", tunnel->config->name, peer_address);
        admission_release(host, tunnel, ticket);
        return NULL;
    }
    c->host = host;
    c->admission = *ticket;
    c->tunnel = tunnel;
    c->tls_events.handle = on_tls_event;
    c->plain_events.handle = on_plain_event;
    c->tls_fd = c->plain_fd = -1;
    c->splice.from_tls.pipe_read = c->splice.from_tls.pipe_write = -1;
    c->splice.to_tls.pipe_read = c->splice.to_tls.pipe_write = -1;
    snprintf(c->tls_version, sizeof(c->tls_version), "-");
    snprintf(c->cipher, sizeof(c->cipher), "-");
    snprintf(c->peer_address, sizeof(c->peer_address), "%s", peer_address);
    c->started_ms = event_loop_now_ms();
    c->deadline_ms = c->started_ms + tunnel->config->handshake_timeout * 1000u;
    c->next = host->live;
    if (host->live != NULL)
        host->live->prev = c;
    host->live = c;
    host->live_count++;
    return c;
}

void conn_accept(struct conn_host *host, const struct tunnel *tunnel, int fd,
                 const struct sockaddr *peer, socklen_t peer_len)
{
    char peer_address[80];
    address_format_sockaddr(peer, peer_len, peer_address, sizeof(peer_address));
    struct admission_ticket ticket;
    if (!admission_admit(host, tunnel, peer, peer_len, peer_address, &ticket)) {
        close(fd);
        return;
    }
    struct conn *c = conn_new(host, tunnel, &ticket, peer_address);
    if (c == NULL) {
        close(fd);
        return;
    }
    tune_socket(fd);

    int server = tunnel->config->mode == TUNNEL_MODE_SERVER;
    if (server)
        c->tls_fd = fd;
    else
        c->plain_fd = fd;
    if (event_loop_watch(host->loop, fd, EPOLLIN | EPOLLOUT | EPOLLRDHUP, 0,
                         server ? &c->tls_events : &c->plain_events) < 0) {
        conn_close(c, STATS_RESULT_ERROR, "cannot watch the accepted socket");
        return;
    }
    if (server) {
        if (start_handshake(c) == 0)
            conn_step(c);
    } else if (start_target_connect(c) == 0) {
        conn_step(c);
    }
}

int conn_dial(struct conn_host *host, const struct tunnel *tunnel, int tun_fd,
              void (*ended)(void *arg, int configured), void *arg)
{
    const struct tunnel_config *t = tunnel->config;
    char peer_address[80];
    address_format_sockaddr((const struct sockaddr *)&t->target_addr, t->target_addr_len,
                            peer_address, sizeof(peer_address));
    struct admission_ticket ticket;
    if (!admission_admit(host, tunnel, (const struct sockaddr *)&t->target_addr,
                         t->target_addr_len, peer_address, &ticket))
        return -1;
    struct conn *c = conn_new(host, tunnel, &ticket, peer_address);
    if (c == NULL)
        return -1;
    if (conn_network_prepare_client(c, tun_fd, ended, arg) < 0) {
        conn_close(c, STATS_RESULT_ERROR, "out of memory");
        return -1;
    }
    if (start_target_connect(c) == 0)
        conn_step(c);
    return 0;
}

/* How long a userspace relay keeps its buffers after its last byte moved. */
#define RELAY_IDLE_TRIM_MS 1000

void conn_sweep_timeouts(struct conn_host *host, uint64_t now_ms)
{
    int trimmed = 0;
    struct conn *next;
    for (struct conn *c = host->live; c != NULL; c = next) {
        next = c->next;
        const struct tunnel_config *t = c->tunnel->config;
        char reason[120];
        enum stats_result network_result;
        const char *network_reason;
        if (c->state == CONN_LOGIN) {
            if (conn_login_expire(c, now_ms))
                conn_step(c);
        } else if (c->state != CONN_RELAYING && now_ms >= c->deadline_ms) {
            snprintf(reason, sizeof(reason), "%s timed out after %llus",
                     c->state == CONN_CONNECTING ? conn_preamble_stage(c) : "handshake",
                     (unsigned long long)t->handshake_timeout);
            c->handshake_done = c->handshake_done && c->state != CONN_HANDSHAKING;
            c->timed_out = 1;
            conn_close(c, c->state == CONN_HANDSHAKING ? STATS_RESULT_REFUSED
                                                       : STATS_RESULT_TARGET_UNREACHABLE,
                       reason);
        } else if (c->state == CONN_RELAYING && c->net != NULL &&
                   conn_network_tick(c, now_ms, &network_result, &network_reason) < 0) {
            conn_close(c, network_result, network_reason);
        } else if (c->state == CONN_RELAYING && t->idle_timeout > 0 &&
                   now_ms - c->last_activity_ms >= t->idle_timeout * 1000u) {
            conn_close(c, STATS_RESULT_IDLE_TIMEOUT, "idle timeout");
        } else if (c->state == CONN_RELAYING && !c->offloaded && c->net == NULL &&
                   now_ms - c->last_activity_ms >= RELAY_IDLE_TRIM_MS) {
            trimmed += relay_trim(&c->relay);
        }
    }
    /* free() keeps pages that sit below the top of the heap; the buffers of idle
     * tunnels are scattered through it, so their pages go back only this way. */
    if (trimmed > 0)
        malloc_trim(0);
}

unsigned conn_withdraw(struct conn_host *host, conn_verdict verdict, void *arg)
{
    unsigned ended = 0;
    struct conn *next;
    for (struct conn *c = host->live; c != NULL; c = next) {
        next = c->next;
        if (!c->handshake_done || c->peer.identity == NULL)
            continue;
        const struct conn_view view = {
            .tunnel = c->tunnel, .peer = &c->peer, .peer_address = c->peer_address,
            .tls_fd = c->tls_fd, .login = c->state == CONN_LOGIN, .started_ms = c->started_ms,
            .network_request = conn_network_request(c),
            .access = &c->access,
        };
        struct conn_ending ending = { .result = STATS_RESULT_WITHDRAWN };
        if (!verdict(arg, &view, &ending))
            continue;
        c->abort_alert = ending.alert;
        conn_close(c, ending.result, ending.reason);
        ended++;
    }
    return ended;
}

void conn_close_all(struct conn_host *host, const char *reason)
{
    while (host->live != NULL)
        conn_close(host->live, STATS_RESULT_SHUTDOWN, reason);
}

void conn_describe_all(const struct conn_host *host, FILE *out)
{
    uint64_t now = event_loop_now_ms();
    for (const struct conn *c = host->live; c != NULL; c = c->next)
        conn_report_status(c, now, out);
}

int conn_run_pending(struct conn_host *host)
{
    struct conn *turn = host->pending;
    host->pending = NULL;
    while (turn != NULL) {
        struct conn *c = turn;
        turn = c->next_pending;
        c->queued = 0;
        conn_step(c);
    }
    return host->pending != NULL;
}

void conn_free_closed(struct conn_host *host)
{
    while (host->closed != NULL) {
        struct conn *c = host->closed;
        host->closed = c->next;
        conn_free(c);
    }
}
