#include "supervisor/tun_service.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "addrplan/address_plan.h"
#include "core/fd_passing.h"
#include "core/log.h"
#include "netdev/hub_device.h"
#include "netdev/netdev.h"
#include "proto/tun_request.h"
#include "supervisor/client_device.h"
#include "supervisor/fleet_leases.h"

#define MAX_CLIENT_NETWORKS 256    /* routed to one client: far above a sane plan */
#define STICKY_LEASES 256          /* released pool leases kept for their client */
#define END_REASON "a newer connection of the same client identity took its addresses"
#define FLEET_ATTEMPTS 4           /* TAKEs for one client: each may find one address more
                                      that this hub's plan keeps from the pool */

/* One worker's link. */
struct link {
    struct link *next;
    pid_t pid;
    int fd;
    const struct config *config;
    unsigned generation;
};

/* A hub tunnel's address plan in one generation. */
struct plan {
    struct plan *next;
    unsigned generation;
    char *tunnel;
    struct address_lease *al;
};

/* One hub device a worker holds, and what it was given. */
struct lease {
    struct lease *next;
    pid_t pid;                     /* its worker */
    uint32_t id;                   /* the worker's request */
    struct plan *plan;
    char identity[TUN_REQUEST_IDENTITY_MAX + 1];
    char device[TUN_REQUEST_DEVICE_MAX + 1];
    int routes_gone;               /* a newer device of its identity has them */
    int fleet;                     /* its pool addresses are the shared state store's */
    size_t route_count;            /* its addresses, then its networks */
    struct ip_prefix routes[];
};

struct tun_service {
    struct netdev *nd;             /* opened the first time a network tunnel is configured */
    struct link *links;
    struct plan *plans;
    struct lease *leases;
    struct client_device **clients;
    size_t client_count;
    unsigned counter;              /* the hub devices' names */
    struct fleet_leases *fleet;    /* pool addresses from the shared state store */
    int owner_known;               /* owner was worked out (it may have failed) */
    char owner[NETDEV_OWNER_MAX + 1]; /* the alias of our devices; empty: none fits */
};

int tun_service_needed(const struct config *config)
{
    for (size_t i = 0; i < config->tunnel_count; i++)
        if (config->tunnels[i].type == TUNNEL_TYPE_NETWORK)
            return 1;
    return 0;
}

struct tun_service *tun_service_new(void)
{
    struct tun_service *ts = calloc(1, sizeof(*ts));
    if (ts == NULL)
        log_error("out of memory");
    return ts;
}

static const struct tunnel_config *find_tunnel(const struct config *config, const char *name,
                                               enum tunnel_mode mode)
{
    for (size_t i = 0; i < config->tunnel_count; i++) {
        const struct tunnel_config *t = &config->tunnels[i];
        if (t->type == TUNNEL_TYPE_NETWORK && t->mode == mode && strcmp(t->name, name) == 0)
            return t;
    }
    return NULL;
}

static struct client_device *find_client(const struct tun_service *ts, const char *tunnel)
{
    for (size_t i = 0; i < ts->client_count; i++)
        if (strcmp(client_device_tunnel(ts->clients[i]), tunnel) == 0)
            return ts->clients[i];
    return NULL;
}

static int open_netdev(struct tun_service *ts)
{
    char err[512];
    unsigned removed = 0;
    if (ts->nd != NULL)
        return 0;
    if (ts->owner[0] == '\0') {
        log_error("network tunnels: runtime_dir is too long to mark devices with "
                  "(at most %zu bytes)", (size_t)NETDEV_OWNER_MAX - strlen(NETDEV_OWNER_PREFIX));
        return -1;
    }
    if ((ts->nd = netdev_open(err, sizeof(err))) == NULL) {
        log_error("network tunnels: %s", err);
        return -1;
    }
    /* Before any device of ours exists: every device with our mark is a crashed
     * run's. Other daemons in this namespace mark theirs with their runtime_dir. */
    if (netdev_remove_leftovers(ts->nd, NETDEV_NAME_PREFIX, ts->owner, &removed, err,
                                sizeof(err)) != 0)
        log_error("network tunnels: removing devices a previous run left: %s", err);
    if (removed > 0)
        log_notice("removed %u network devices a previous run left", removed);
    return 0;
}

void tun_service_sync(struct tun_service *ts, const struct config *config)
{
    char err[512], name[16];
    size_t kept = 0;
    /* The runtime_dir of the start, whose lock this daemon holds: no other running
     * daemon has it. A reload may name another, but the lock stays where it was. */
    if (!ts->owner_known) {
        ts->owner_known = 1;
        if (config->global.runtime_dir == NULL ||
            netdev_owner_for(config->global.runtime_dir, ts->owner, sizeof(ts->owner)) != 0)
            ts->owner[0] = '\0';
    }
    if (!tun_service_needed(config) && ts->client_count == 0)
        return;
    if (open_netdev(ts) != 0)
        return;
    for (size_t i = 0; i < ts->client_count; i++) {
        struct client_device *cd = ts->clients[i];
        const struct tunnel_config *t =
            find_tunnel(config, client_device_tunnel(cd), TUNNEL_MODE_CLIENT);
        if (t != NULL)
            client_device_name_for(t, name, sizeof(name));
        if (t != NULL && strcmp(name, client_device_name(cd)) == 0) {
            ts->clients[kept++] = cd;
            continue;
        }
        log_info("network tunnel %s: deleting its device %s", client_device_tunnel(cd),
                 client_device_name(cd));
        client_device_delete(cd, ts->nd);
    }
    ts->client_count = kept;
    for (size_t i = 0; i < config->tunnel_count; i++) {
        const struct tunnel_config *t = &config->tunnels[i];
        if (t->type != TUNNEL_TYPE_NETWORK || t->mode != TUNNEL_MODE_CLIENT ||
            find_client(ts, t->name) != NULL)
            continue;
        struct client_device **grown =
            reallocarray(ts->clients, ts->client_count + 1, sizeof(struct client_device *));
        if (grown == NULL) {
            log_error("network tunnel %s: out of memory", t->name);
            continue;
        }
        ts->clients = grown;
        client_device_name_for(t, name, sizeof(name));
        struct client_device *cd =
            client_device_create(ts->nd, ts->owner, t->name, name, err, sizeof(err));
        if (cd == NULL) {
            log_error("network tunnel %s: %s", t->name, err);
            continue;
        }
        ts->clients[ts->client_count++] = cd;
    }
}

int tun_service_add_worker(struct tun_service *ts, pid_t pid, int fd,
                           const struct config *config, unsigned generation)
{
    struct link *l = calloc(1, sizeof(*l));
    int flags = fcntl(fd, F_GETFL);
    if (l == NULL || flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
        log_error("worker %d: its network device link: %s", (int)pid,
                  l == NULL ? "out of memory" : strerror(errno));
        free(l);
        close(fd);
        return -1;
    }
    *l = (struct link){ .next = ts->links, .pid = pid, .fd = fd, .config = config,
                        .generation = generation };
    ts->links = l;
    return 0;
}

static struct link *find_link(const struct tun_service *ts, pid_t pid)
{
    for (struct link *l = ts->links; l != NULL; l = l->next)
        if (l->pid == pid)
            return l;
    return NULL;
}

/* Sends MSG to L's worker with FD (-1: none). A worker that does not read is not
 * waited for. Returns 0, or -1 (logged). */
static int send_to(struct link *l, const struct tun_message *msg, int fd)
{
    unsigned char buf[TUN_REQUEST_MAX_LEN];
    size_t len = tun_request_encode(msg, buf, sizeof(buf));
    if (l->fd < 0 || len == 0)
        return -1;
    if (fd_passing_send(l->fd, buf, len, fd, MSG_DONTWAIT) != 0) {
        /* EPIPE: it has just exited, and is not reaped yet. */
        if (errno != EPIPE && errno != ECONNRESET)
            log_error("worker %d: its network device link: %s", (int)l->pid, strerror(errno));
        return -1;
    }
    return 0;
}

static void reply_refused(struct link *l, uint32_t id, const char *reason)
{
    struct tun_message msg;
    tun_request_reply(&msg, id, NULL, 0, NULL, reason);
    (void)send_to(l, &msg, -1);
}

static struct plan *plan_for(struct tun_service *ts, struct link *l,
                             const struct tunnel_config *t, char *err, size_t errlen)
{
    struct plan *p;
    for (p = ts->plans; p != NULL; p = p->next)
        if (p->generation == l->generation && strcmp(p->tunnel, t->name) == 0)
            return p;
    if ((p = calloc(1, sizeof(*p))) == NULL || (p->tunnel = strdup(t->name)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if ((p->al = address_plan_build(t, err, errlen)) == NULL)
        goto fail;
    p->generation = l->generation;
    p->next = ts->plans;
    ts->plans = p;
    return p;
fail:
    if (p != NULL)
        free(p->tunnel);
    free(p);
    return NULL;
}

/* Takes the routes of every older device of TUNNEL and IDENTITY away and orders its
 * connection ended: the newer one's routes are the same. */
static void end_older(struct tun_service *ts, const char *tunnel, const char *identity)
{
    char err[512];
    for (struct lease *old = ts->leases; old != NULL; old = old->next) {
        if (old->routes_gone || strcmp(old->plan->tunnel, tunnel) != 0 ||
            strcmp(old->identity, identity) != 0)
            continue;
        for (size_t i = 0; i < old->route_count; i++)
            if (netdev_remove_route(ts->nd, old->device, &old->routes[i], err, sizeof(err)) != 0)
                log_info("%s", err);
        old->routes_gone = 1;
        struct link *l = find_link(ts, old->pid);
        struct tun_message end = { .type = TUN_MESSAGE_END, .id = old->id };
        snprintf(end.reason, sizeof(end.reason), "%s", END_REASON);
        if (l != NULL)
            (void)send_to(l, &end, -1);
        log_info("network tunnel %s: client %s connected again; its device %s is ended",
                 tunnel, identity, old->device);
    }
}

/* Tells the store that this hub no longer holds IDENTITY's addresses of TUNNEL, when no
 * device of it is left here. */
static void fleet_release_if_last(struct tun_service *ts, const char *tunnel, const char *identity)
{
    for (const struct lease *lease = ts->leases; lease != NULL; lease = lease->next)
        if (lease->fleet && strcmp(lease->plan->tunnel, tunnel) == 0 &&
            strcmp(lease->identity, identity) == 0)
            return;
    if (ts->fleet != NULL)
        fleet_leases_release(ts->fleet, tunnel, identity);
}

/* Makes the device of worker L's request ID for IDENTITY with the addresses GRANT, which
 * PLAN counts as taken (FLEET: from the shared state store), and hands it over. */
static void give_device(struct tun_service *ts, struct link *l, const struct tunnel_config *t,
                        struct plan *plan, uint32_t id, const char *identity,
                        const struct address_lease_grant *grant, int fleet)
{
    char err[512];
    struct ip_prefix networks[MAX_CLIENT_NETWORKS];
    struct lease *lease = NULL;
    int fd = -1;
    size_t nets = address_lease_networks(plan->al, identity, networks, MAX_CLIENT_NETWORKS);
    if (nets > MAX_CLIENT_NETWORKS) {
        log_warning("network tunnel %s: client %s has more than %d networks; the rest are "
                    "not routed", t->name, identity, MAX_CLIENT_NETWORKS);
        nets = MAX_CLIENT_NETWORKS;
    }
    lease = calloc(1, sizeof(*lease) + (grant->count + nets) * sizeof(struct ip_prefix));
    if (lease == NULL) {
        snprintf(err, sizeof(err), "out of memory");
        goto refuse;
    }
    struct hub_device_spec spec = {
        .tunnel = t->name, .owner = ts->owner, .counter = ++ts->counter, .mtu = t->network.mtu,
        .hub_count = t->network.hub_address_count, .hub_addresses = t->network.hub_addresses,
        .client_count = grant->count, .client_addresses = grant->addresses,
        .network_count = nets, .networks = networks,
    };
    if ((fd = hub_device_create(ts->nd, &spec, lease->device, sizeof(lease->device), err,
                                sizeof(err))) < 0)
        goto refuse;
    struct tun_message reply;
    tun_request_reply(&reply, id, lease->device, grant->count, grant->addresses, NULL);
    if (send_to(l, &reply, fd) != 0) {
        snprintf(err, sizeof(err), "the worker did not take it");
        goto fail;
    }
    /* The worker's copy is the device's last: it goes when the connection does. */
    close(fd);
    lease->pid = l->pid;
    lease->id = id;
    lease->plan = plan;
    lease->fleet = fleet;
    snprintf(lease->identity, sizeof(lease->identity), "%s", identity);
    memcpy(lease->routes, grant->addresses, grant->count * sizeof(grant->addresses[0]));
    memcpy(lease->routes + grant->count, networks, nets * sizeof(networks[0]));
    lease->route_count = grant->count + nets;
    lease->next = ts->leases;
    ts->leases = lease;
    log_info("network tunnel %s: client %s on device %s", t->name, identity, lease->device);
    return;
refuse:
    reply_refused(l, id, err);
fail:
    log_warning("network tunnel %s: no device for client %s: %s", t->name, identity, err);
    if (fd >= 0)
        close(fd);
    address_lease_release(plan->al, identity);
    if (fleet)
        fleet_release_if_last(ts, t->name, identity);
    free(lease);
}

static void refuse_hub(struct link *l, uint32_t id, const char *tunnel, const char *identity,
                       const char *why)
{
    reply_refused(l, id, why);
    log_warning("network tunnel %s: no device for client %s: %s", tunnel, identity, why);
}

static void read_fleet(struct tun_service *ts);

/* Asks the store for REQ's pool addresses. Returns 0, or -1 with the reason in ERR. */
static int ask_fleet(struct tun_service *ts, const struct fleet_request *req,
                     const struct plan *plan, char *err, size_t errlen)
{
    struct ip_prefix pools[ADDRESS_LEASE_FAMILIES];
    size_t count = address_lease_pools_for(plan->al, req->identity, pools);
    if (ts->fleet == NULL) {
        snprintf(err, errlen, "the shared state store cannot be asked for an address (the "
                 "login service is not running)");
        return -1;
    }
    int rc = fleet_leases_take(ts->fleet, req, pools, count, err, errlen);
    /* A link that broke just now: what waited on it is answered. */
    read_fleet(ts);
    return rc;
}

static void handle_hub(struct tun_service *ts, struct link *l, const struct tun_message *req)
{
    char err[512];
    const struct tunnel_config *t = find_tunnel(l->config, req->tunnel, TUNNEL_MODE_SERVER);
    struct address_lease_grant grant;
    struct ip_prefix pools[ADDRESS_LEASE_FAMILIES];
    struct plan *plan = NULL;
    if (t == NULL) {
        snprintf(err, sizeof(err), "no network hub tunnel named %s", req->tunnel);
        goto refuse;
    }
    if (ts->nd == NULL || (plan = plan_for(ts, l, t, err, sizeof(err))) == NULL) {
        if (ts->nd == NULL)
            snprintf(err, sizeof(err), "network devices are not available");
        goto refuse;
    }
    /* With a shared state store, the fleet's hubs lease pool addresses there; a client
     * with fixed addresses only needs no one's agreement. */
    size_t pool_count = address_lease_pools_for(plan->al, req->identity, pools);
    if (l->config->global.state_store != NULL && pool_count > 0) {
        struct fleet_request ask = { .pid = l->pid, .id = req->id, .generation = l->generation };
        snprintf(ask.tunnel, sizeof(ask.tunnel), "%s", req->tunnel);
        snprintf(ask.identity, sizeof(ask.identity), "%s", req->identity);
        /* The hubs' own addresses are the fleet's to keep from every pool. */
        for (size_t i = 0; i < pool_count; i++) {
            ask.reserve[ask.reserve_count] = pools[i];
            ask.reserve[ask.reserve_count++].len = (uint8_t)ip_prefix_max_len(pools[i].family);
        }
        if (ask_fleet(ts, &ask, plan, err, sizeof(err)) < 0)
            goto refuse;
        return;
    }
    end_older(ts, req->tunnel, req->identity);
    if (address_lease_take(plan->al, req->identity, &grant, err, sizeof(err)) != 0)
        goto refuse;
    give_device(ts, l, t, plan, req->id, req->identity, &grant, 0);
    return;
refuse:
    refuse_hub(l, req->id, req->tunnel, req->identity, err);
}

/* The store's answer for REQ: the device is made with its addresses, or refused. */
static void fleet_answered(struct tun_service *ts, struct fleet_request *req,
                           const struct lease_msg *answer)
{
    char err[512], a[IP_PREFIX_TEXT_MAX];
    struct address_lease_grant grant;
    struct link *l = find_link(ts, req->pid);
    const struct tunnel_config *t = l != NULL && l->generation == req->generation
        ? find_tunnel(l->config, req->tunnel, TUNNEL_MODE_SERVER) : NULL;
    struct plan *plan = t != NULL ? plan_for(ts, l, t, err, sizeof(err)) : NULL;
    if (plan == NULL) {
        /* Its worker is gone: what the store gave goes back. */
        if (answer->result == LEASE_RESULT_OK)
            fleet_release_if_last(ts, req->tunnel, req->identity);
        return;
    }
    if (answer->result != LEASE_RESULT_OK) {
        snprintf(err, sizeof(err), "%s%s",
                 answer->result == LEASE_RESULT_UNAVAILABLE ? "the shared state store cannot "
                 "lease an address now: " : "", answer->text);
        refuse_hub(l, req->id, req->tunnel, req->identity, err);
        return;
    }
    for (uint32_t i = 0; i < answer->count; i++) {
        if (address_lease_may_lease(plan->al, req->identity, &answer->addresses[i]))
            continue;
        /* An address this hub's plan keeps (a fixed one, say): the store learns it and
         * gives another. */
        log_info("network tunnel %s: the shared state store offered %s, which this hub keeps "
                 "from its pool; asking again", req->tunnel,
                 ip_prefix_format(&answer->addresses[i], a, sizeof(a)));
        snprintf(err, sizeof(err), "the shared state store keeps offering addresses this "
                 "hub's plan keeps from its pool (the hubs' plans differ?)");
        if (req->attempts < FLEET_ATTEMPTS && req->reserve_count < LEASE_MSG_RESERVE_MAX) {
            req->reserve[req->reserve_count++] = answer->addresses[i];
            if (ask_fleet(ts, req, plan, err, sizeof(err)) == 0)
                return;
        }
        fleet_release_if_last(ts, req->tunnel, req->identity);
        refuse_hub(l, req->id, req->tunnel, req->identity, err);
        return;
    }
    end_older(ts, req->tunnel, req->identity);
    if (address_lease_take_given(plan->al, req->identity, answer->addresses, answer->count, &grant,
                                 err, sizeof(err)) != 0) {
        fleet_release_if_last(ts, req->tunnel, req->identity);
        refuse_hub(l, req->id, req->tunnel, req->identity, err);
        return;
    }
    give_device(ts, l, t, plan, req->id, req->identity, &grant, 1);
}

/* Reads the store's answers (and, when the link broke, refuses what waited). */
static void read_fleet(struct tun_service *ts)
{
    struct fleet_request req;
    struct lease_msg answer;
    while (ts->fleet != NULL && fleet_leases_receive(ts->fleet, &req, &answer) > 0)
        fleet_answered(ts, &req, &answer);
}

static void handle_client(struct tun_service *ts, struct link *l, const struct tun_message *req)
{
    char err[512];
    struct tun_message reply;
    struct client_device *cd = find_tunnel(l->config, req->tunnel, TUNNEL_MODE_CLIENT) != NULL
                                   ? find_client(ts, req->tunnel)
                                   : NULL;
    int fd = -1;
    if (cd == NULL) {
        snprintf(err, sizeof(err), "no device for network client tunnel %s", req->tunnel);
        goto refuse;
    }
    if (req->type == TUN_MESSAGE_ATTACH) {
        if ((fd = client_device_attach(cd, ts->nd, ts->owner, err, sizeof(err))) < 0)
            goto refuse;
    } else if (client_device_configure(cd, ts->nd, req->config, req->config_len, err,
                                       sizeof(err)) != 0) {
        goto refuse;
    }
    tun_request_reply(&reply, req->id, client_device_name(cd), 0, NULL, NULL);
    (void)send_to(l, &reply, fd);
    if (fd >= 0)
        close(fd);
    return;
refuse:
    log_warning("network tunnel %s: %s", req->tunnel, err);
    reply_refused(l, req->id, err);
}

static void drop_lease(struct tun_service *ts, struct lease **pp)
{
    struct lease *lease = *pp;
    *pp = lease->next;
    address_lease_release(lease->plan->al, lease->identity);
    if (lease->fleet)
        fleet_release_if_last(ts, lease->plan->tunnel, lease->identity);
    free(lease);
}

/* Releases the lease of worker PID's request ID, or every one of PID's when ID is 0. */
static void release(struct tun_service *ts, pid_t pid, uint32_t id)
{
    struct lease **pp = &ts->leases;
    while (*pp != NULL) {
        if ((*pp)->pid == pid && (id == 0 || (*pp)->id == id))
            drop_lease(ts, pp);
        else
            pp = &(*pp)->next;
    }
}

/* Frees the plans no link and no lease uses any more. */
static void drop_unused_plans(struct tun_service *ts)
{
    struct plan **pp = &ts->plans;
    while (*pp != NULL) {
        struct plan *p = *pp;
        int used = 0;
        for (struct link *l = ts->links; l != NULL && !used; l = l->next)
            used = l->generation == p->generation;
        for (struct lease *lease = ts->leases; lease != NULL && !used; lease = lease->next)
            used = lease->plan == p;
        if (used) {
            pp = &p->next;
            continue;
        }
        *pp = p->next;
        address_lease_free(p->al);
        free(p->tunnel);
        free(p);
    }
}

static void close_link(struct tun_service *ts, pid_t pid)
{
    for (struct link **pp = &ts->links; *pp != NULL; pp = &(*pp)->next)
        if ((*pp)->pid == pid) {
            struct link *l = *pp;
            *pp = l->next;
            close(l->fd);
            free(l);
            break;
        }
    release(ts, pid, 0);
    drop_unused_plans(ts);
}

/* Reads what L's worker sent. Returns 0, or -1 when the link is gone. */
static int read_link(struct tun_service *ts, struct link *l)
{
    unsigned char buf[TUN_REQUEST_MAX_LEN];
    struct tun_message msg;
    const char *why;
    for (;;) {
        int fd = -1;
        ssize_t n = fd_passing_recv(l->fd, buf, sizeof(buf), &fd, MSG_DONTWAIT);
        if (fd >= 0)
            close(fd);   /* a worker hands the supervisor nothing */
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (n <= 0)
            return -1;
        if (tun_request_decode(buf, (size_t)n, &msg, &why) != 0) {
            log_warning("worker %d: a network device request ignored: %s", (int)l->pid, why);
            continue;
        }
        if (msg.type == TUN_MESSAGE_HUB)
            handle_hub(ts, l, &msg);
        else if (msg.type == TUN_MESSAGE_ATTACH || msg.type == TUN_MESSAGE_CONFIGURE)
            handle_client(ts, l, &msg);
        else if (msg.type == TUN_MESSAGE_RELEASE)
            release(ts, l->pid, msg.id);
        else
            log_warning("worker %d: a network device message of the wrong kind ignored",
                        (int)l->pid);
    }
}

void tun_service_use_helper(struct tun_service *ts, struct helper_process *helper,
                            const struct config *config)
{
    if (ts != NULL && helper != NULL && ts->fleet == NULL)
        ts->fleet = fleet_leases_new(helper);
    if (ts != NULL && ts->fleet != NULL && config->global.state_store != NULL &&
        tun_service_needed(config))
        (void)fleet_leases_open(ts->fleet);
}

size_t tun_service_poll_fds(const struct tun_service *ts, struct pollfd *fds, size_t max)
{
    size_t n = 0;
    if (max > 0 && ts->fleet != NULL)
        n += fleet_leases_poll_fd(ts->fleet, fds);
    for (const struct link *l = ts->links; l != NULL && n < max; l = l->next)
        fds[n++] = (struct pollfd){ .fd = l->fd, .events = POLLIN };
    return n;
}

void tun_service_handle(struct tun_service *ts, const struct pollfd *fds, size_t count)
{
    for (size_t i = 0; i < count; i++) {
        if (fds[i].revents == 0)
            continue;
        struct pollfd own;
        if (fleet_leases_poll_fd(ts->fleet, &own) == 1 && own.fd == fds[i].fd) {
            read_fleet(ts);
            continue;
        }
        struct link *l = ts->links;
        while (l != NULL && l->fd != fds[i].fd)
            l = l->next;
        /* A link that broke: its worker is ending; its leases go now. */
        if (l != NULL && read_link(ts, l) != 0)
            close_link(ts, l->pid);
    }
}

void tun_service_worker_gone(struct tun_service *ts, pid_t pid)
{
    if (ts != NULL)
        close_link(ts, pid);
}

void tun_service_close_in_child(struct tun_service *ts)
{
    for (struct link *l = ts != NULL ? ts->links : NULL; l != NULL; l = l->next)
        close(l->fd);
}

void tun_service_free(struct tun_service *ts)
{
    if (ts == NULL)
        return;
    while (ts->links != NULL)
        close_link(ts, ts->links->pid);
    while (ts->leases != NULL)
        drop_lease(ts, &ts->leases);
    fleet_leases_free(ts->fleet);
    drop_unused_plans(ts);
    for (size_t i = 0; i < ts->client_count; i++)
        client_device_delete(ts->clients[i], ts->nd);
    free(ts->clients);
    netdev_close(ts->nd);
    free(ts);
}
