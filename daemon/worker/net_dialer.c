#include "worker/net_dialer.h"

#include <errno.h>
#include <linux/if_tun.h>
#include <net/if.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "core/log.h"
#include "worker/tun_link.h"

#define FIRST_WAIT_S 1
#define STEADY_MS 30000   /* a connection that lasted this long resets the wait */

struct dial {
    struct net_dialer *dialer;
    const struct tunnel *tunnel;
    int tun_fd;
    uint32_t attach;            /* the attach request waiting for its answer, or 0 */
    int connected;              /* a connection is live */
    uint64_t wait_s;
    uint64_t next_try_ms;
    uint64_t started_ms;
};

struct net_dialer {
    struct conn_host *host;
    int stopped;
    size_t count;
    struct dial dials[];
};

static void schedule(struct dial *d, uint64_t now)
{
    d->next_try_ms = now + d->wait_s * 1000u;
    uint64_t most = d->tunnel->config->network.reconnect_max;
    /* reconnect_max is at least 1 s (the configuration refuses less). */
    d->wait_s = d->wait_s * 2 > most ? most : d->wait_s * 2;
}

static void on_attached(void *arg, const struct tun_link_answer *answer)
{
    struct dial *d = arg;
    d->attach = 0;
    if (answer->refused) {
        log_error("tunnel=%s: no network device: %s", d->tunnel->config->name, answer->reason);
        schedule(d, event_loop_now_ms());
        return;
    }
    d->tun_fd = answer->fd;
    d->next_try_ms = 0;
}

/* Whether FD's device is gone: one deleted under us (ip link delete) leaves the
 * descriptor detached, and every later connection would fail on it. */
static int device_gone(int fd)
{
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    return ioctl(fd, TUNGETIFF, &ifr) < 0 && errno == EBADFD;
}

static void on_ended(void *arg, int configured)
{
    struct dial *d = arg;
    uint64_t now = event_loop_now_ms();
    d->connected = 0;
    if (d->tun_fd >= 0 && device_gone(d->tun_fd)) {
        log_notice("tunnel=%s: its network device was deleted; it is made again",
                   d->tunnel->config->name);
        close(d->tun_fd);
        d->tun_fd = -1;
    }
    if (configured && now - d->started_ms >= STEADY_MS)
        d->wait_s = FIRST_WAIT_S;
    schedule(d, now);
}

struct net_dialer *net_dialer_start(struct conn_host *host, const struct generation *gen)
{
    size_t count = 0;
    for (size_t i = 0; i < gen->tunnel_count; i++)
        if (gen->tunnels[i].config->type == TUNNEL_TYPE_NETWORK &&
            gen->tunnels[i].config->mode == TUNNEL_MODE_CLIENT)
            count++;
    struct net_dialer *nd = calloc(1, sizeof(*nd) + count * sizeof(nd->dials[0]));
    if (nd == NULL) {
        log_error("worker: out of memory");
        return NULL;
    }
    nd->host = host;
    for (size_t i = 0; i < gen->tunnel_count; i++) {
        const struct tunnel *t = &gen->tunnels[i];
        if (t->config->type != TUNNEL_TYPE_NETWORK || t->config->mode != TUNNEL_MODE_CLIENT)
            continue;
        nd->dials[nd->count++] = (struct dial){ .dialer = nd, .tunnel = t, .tun_fd = -1,
                                                .wait_s = FIRST_WAIT_S };
    }
    net_dialer_tick(nd, event_loop_now_ms());
    return nd;
}

void net_dialer_tick(struct net_dialer *nd, uint64_t now)
{
    if (nd == NULL || nd->stopped)
        return;
    for (size_t i = 0; i < nd->count; i++) {
        struct dial *d = &nd->dials[i];
        if (d->connected || d->attach != 0 || now < d->next_try_ms)
            continue;
        if (d->tun_fd < 0) {
            if (nd->host->tun_link != NULL)
                d->attach = tun_link_request_attach(nd->host->tun_link, d->tunnel->config->name,
                                                    on_attached, d);
            if (d->attach == 0)
                schedule(d, now);
            continue;
        }
        d->started_ms = now;
        d->connected = 1;
        if (conn_dial(nd->host, d->tunnel, d->tun_fd, on_ended, d) < 0) {
            d->connected = 0;
            schedule(d, now);
        }
    }
}

void net_dialer_stop(struct net_dialer *nd)
{
    if (nd != NULL)
        nd->stopped = 1;
}

void net_dialer_free(struct net_dialer *nd)
{
    if (nd == NULL)
        return;
    for (size_t i = 0; i < nd->count; i++) {
        if (nd->dials[i].attach != 0 && nd->host->tun_link != NULL)
            tun_link_cancel(nd->host->tun_link, nd->dials[i].attach);
        if (nd->dials[i].tun_fd >= 0)
            close(nd->dials[i].tun_fd);
    }
    free(nd);
}
