#include "worker/worker.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "worker/access_recheck.h"
#include "worker/conn.h"
#include "worker/conn_end.h"
#include "worker/control_socket.h"
#include "worker/net_dialer.h"
#include "worker/tun_link.h"
#include "core/event_loop.h"
#include "core/log.h"
#include "auth/pam_link.h"
#include "tls/tls_context.h"
#include "worker/refusal_log.h"
#include "worker/refusal_notice.h"
#include "worker/status_server.h"

#define ACCEPT_BATCH 64
#define TRIM_MIN_PEAK 64   /* below this many connections the heap stays small anyway */

struct listener_watch {
    struct event_source events;
    struct worker *worker;
    struct tunnel *tunnel;
};

struct worker {
    struct generation *gen;
    struct conn_host host;
    struct event_source signal_events;
    int signal_fd;
    struct status_server *status;
    struct listener_watch *listeners;
    struct access_recheck *access;
    struct control_socket *control;   /* `ktlstun disconnect`; NULL when it could not open */
    struct net_dialer *dialer;        /* network client tunnels; NULL unless this worker dials */
    int accepting;
    int stopping;               /* SIGTERM seen */
    uint64_t stop_deadline_ms;
};

static void on_listener_event(struct event_source *source, uint32_t events)
{
    struct listener_watch *watch = (struct listener_watch *)source;
    struct worker *w = watch->worker;
    (void)events;
    for (int i = 0; i < ACCEPT_BATCH && w->accepting; i++) {
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof(peer);
        int fd = accept4(watch->tunnel->listen_fd, (struct sockaddr *)&peer, &peer_len,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
                log_warning("[%s] accept: %s", watch->tunnel->config->name, strerror(errno));
            return;
        }
        conn_accept(&w->host, watch->tunnel, fd, (struct sockaddr *)&peer, peer_len);
    }
}

static void stop_accepting(struct worker *w)
{
    if (!w->accepting)
        return;
    w->accepting = 0;
    /* close() alone would not do: epoll forgets an fd only when every descriptor of
     * that socket is closed, and the parent and the new workers still hold it, so
     * this draining worker would keep taking (EPOLLEXCLUSIVE) wakeups it never
     * accepts. */
    for (size_t i = 0; i < w->gen->tunnel_count; i++)
        if (w->gen->tunnels[i].listen_fd >= 0)
            event_loop_unwatch(w->host.loop, w->gen->tunnels[i].listen_fd);
    generation_close_listener_copies(w->gen);
}

struct network_ending {
    int clients_only;
    const char *reason;
};

/* Network connections have no end of their own to wait for: a stop ends them at once
 * (cleanly, close_notify), and a drained worker's clients give way to the new dialer. */
static int is_network(void *arg, const struct conn_view *view, struct conn_ending *ending)
{
    const struct network_ending *which = arg;
    const struct tunnel_config *t = view->tunnel->config;
    if (t->type != TUNNEL_TYPE_NETWORK || (which->clients_only && t->mode != TUNNEL_MODE_CLIENT))
        return 0;
    ending->result = STATS_RESULT_SHUTDOWN;
    snprintf(ending->reason, sizeof(ending->reason), "%s", which->reason);
    return 1;
}

struct end_order {
    uint32_t id;
    const char *reason;
};

static int is_ordered_end(void *arg, const struct conn_view *view, struct conn_ending *ending)
{
    const struct end_order *order = arg;
    if (view->network_request == 0 || view->network_request != order->id)
        return 0;
    snprintf(ending->reason, sizeof(ending->reason), "%s", order->reason);
    return 1;
}

/* The supervisor ends a hub connection whose client connected again (its routes went
 * to the new one). */
static void on_end_order(void *arg, uint32_t id, const char *reason)
{
    struct worker *w = arg;
    struct end_order order = { id, reason };
    conn_withdraw(&w->host, is_ordered_end, &order);
}

static void on_signal_event(struct event_source *source, uint32_t events)
{
    struct worker *w = (struct worker *)((char *)source - offsetof(struct worker, signal_events));
    (void)events;
    struct signalfd_siginfo info;
    while (read(w->signal_fd, &info, sizeof(info)) == sizeof(info)) {
        if (info.ssi_signo == SIGTERM && !w->stopping) {
            w->stopping = 1;
            w->stop_deadline_ms = event_loop_now_ms() + w->gen->config->global.shutdown_timeout * 1000u;
        }
        stop_accepting(w);
        net_dialer_stop(w->dialer);
        struct network_ending which = { info.ssi_signo == SIGQUIT,
                                        info.ssi_signo == SIGQUIT ? "the configuration was reloaded"
                                                                  : "daemon shutting down" };
        conn_withdraw(&w->host, is_network, &which);
    }
}

static int watch_signals(struct worker *w)
{
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGQUIT);
    w->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    if (w->signal_fd < 0) {
        log_error("worker: signalfd: %s", strerror(errno));
        return -1;
    }
    w->signal_events.handle = on_signal_event;
    return event_loop_watch(w->host.loop, w->signal_fd, EPOLLIN, 0, &w->signal_events);
}

static int watch_listeners(struct worker *w)
{
    w->listeners = calloc(w->gen->tunnel_count, sizeof(*w->listeners));
    if (w->listeners == NULL) {
        log_error("worker: out of memory");
        return -1;
    }
    for (size_t i = 0; i < w->gen->tunnel_count; i++) {
        struct listener_watch *watch = &w->listeners[i];
        if (w->gen->tunnels[i].listen_fd < 0)
            continue;   /* a network client tunnel dials out */
        watch->events.handle = on_listener_event;
        watch->worker = w;
        watch->tunnel = &w->gen->tunnels[i];
        if (watch->tunnel->listen_fd < 0)
            continue;   /* a network client tunnel listens nowhere */
        /* Level-triggered and exclusive: one worker wakes per new connection, and a
         * backlog left after an accept batch wakes us again. */
        if (event_loop_watch(w->host.loop, watch->tunnel->listen_fd, EPOLLIN | EPOLLEXCLUSIVE, 1,
                             &watch->events) < 0)
            return -1;
    }
    w->accepting = 1;
    return 0;
}

/* free() keeps the pages of a heap whose top is still in use, so the handshake state
 * of a flood (tens of kB per connection) would stay with the worker for good: once
 * the connections fell to half their peak, the free pages go back to the kernel. */
static void trim_after_peak(size_t *peak, size_t live)
{
    if (*peak >= TRIM_MIN_PEAK && live <= *peak / 2) {
        malloc_trim(0);
        *peak = live;
    }
}

static unsigned disconnect(void *arg, const char *key)
{
    return access_recheck_disconnect(arg, key);
}

/* Another gateway's `ktlstun disconnect`, passed on by the PAM helper. */
static void fleet_disconnect(void *arg, const char *key)
{
    access_recheck_disconnect(arg, key);
}

/* `ktlstun revoke`, here or on another gateway: end what the grants no longer admit
 * now rather than at the next sweep. */
static void grants_revoked(void *arg)
{
    access_recheck_sweep(arg, event_loop_now_ms());
}

/* Tells the parent this worker serves: privileges dropped, listeners watched. */
static void report_ready(const struct worker_shared *shared, int worker_slot)
{
    int32_t slot = worker_slot;
    if (write(shared->ready_fd, &slot, sizeof(slot)) != sizeof(slot))
        log_warning("worker: cannot report readiness: %s", strerror(errno));
    close(shared->ready_fd);
}

int worker_run(struct generation *gen, const struct worker_shared *shared, int worker_slot)
{
    int status = EXIT_FAILURE;
    struct worker w = { .gen = gen, .signal_fd = -1 };
    w.host.limits = shared->limits;
    w.host.stats = shared->stats;
    w.host.worker_slot = worker_slot;

    if (privdrop_apply(&gen->run_as) < 0)
        goto out;
    /* As the worker's user, which the TPM's device must let in. */
    for (size_t i = 0; i < gen->tunnel_count; i++)
        if (tls_context_attach_tpm_key(gen->tunnels[i].ssl_ctx, gen->tunnels[i].config) < 0)
            goto out;
    /* After the drop, which clears it: a parent that dies takes its workers along
     * gracefully instead of leaving them holding the listening sockets. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    w.host.loop = event_loop_create();
    if (w.host.loop == NULL || watch_signals(&w) < 0 || watch_listeners(&w) < 0)
        goto out_loop;
    w.host.pam_link = pam_link_open(w.host.loop, shared->helper_link);
    w.access = access_recheck_create(&w.host, shared->rules_link);
    if (w.access == NULL)
        goto out_loop;
    if (shared->tun_link >= 0)
        w.host.tun_link = tun_link_new(w.host.loop, shared->tun_link, on_end_order, &w);
    if (shared->dialer && getppid() != 1 && (w.dialer = net_dialer_start(&w.host, gen)) == NULL)
        goto out_loop;
    if (getppid() == 1)
        stop_accepting(&w);
    w.status = status_server_open(w.host.loop, gen->config->global.runtime_dir, gen, &w.host,
                                  &w.accepting);
    w.control = control_socket_open(w.host.loop, gen->config->global.runtime_dir, disconnect, w.access);
    pam_link_on_disconnect(w.host.pam_link, fleet_disconnect, w.access);
    pam_link_on_recheck(w.host.pam_link, grants_revoked, w.access);
    report_ready(shared, worker_slot);

    uint64_t next_sweep_ms = event_loop_now_ms() + 1000;
    size_t peak_connections = 0;
    while (w.accepting || w.host.live_count > 0) {
        /* Timeouts have one-second resolution: a sweep of every connection once a
         * second costs microseconds even at the connection limit. */
        /* Relays that yielded their turn run again at once, after what epoll has. */
        int status_wait = status_server_sweep(w.status, event_loop_now_ms());
        int wait = w.host.pending != NULL ? 0 : status_wait >= 0 && status_wait < 1000 ? status_wait : 1000;
        if (event_loop_run_once(w.host.loop, wait) < 0)
            goto out_conns;
        conn_run_pending(&w.host);
        conn_free_closed(&w.host);
        if (w.host.live_count > peak_connections)
            peak_connections = w.host.live_count;
        uint64_t now = event_loop_now_ms();
        heartbeat_beat(shared->heartbeat, worker_slot, now);
        if (now >= next_sweep_ms) {
            conn_sweep_timeouts(&w.host, now);
            conn_free_closed(&w.host);
            refusal_log_flush(now);
            refusal_notice_flush(now);
            conn_end_flush(now);
            if (w.host.pending == NULL)
                trim_after_peak(&peak_connections, w.host.live_count);
            access_recheck_sweep(w.access, now);
            control_socket_expire(w.control, now);
            net_dialer_tick(w.dialer, now);
            next_sweep_ms = now + 1000;
        }
        if (w.stopping && now >= w.stop_deadline_ms)
            conn_close_all(&w.host, "daemon shutting down");
        conn_free_closed(&w.host);
    }
    status = EXIT_SUCCESS;
out_conns:
    net_dialer_stop(w.dialer);
    conn_close_all(&w.host, "worker stopping");
    conn_free_closed(&w.host);
out_loop:
    net_dialer_free(w.dialer);
    tun_link_free(w.host.tun_link);
    status_server_close(w.status);
    control_socket_free(w.control);
    access_recheck_free(w.access);
    free(w.listeners);
    if (w.signal_fd >= 0)
        close(w.signal_fd);
    pam_link_close(w.host.pam_link);
    event_loop_free(w.host.loop);
out:
    return status;
}
