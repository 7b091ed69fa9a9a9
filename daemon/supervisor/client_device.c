#include "supervisor/client_device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/log.h"
#include "core/text.h"
#include "netdev/netdev.h"
#include "netdev/tun_device.h"
#include "proto/tunnel_frame.h"

#define DEVICE_FLAGS (TUN_DEVICE_PERSIST | TUN_DEVICE_MULTI_QUEUE)

struct client_device {
    char *tunnel;
    char name[16];
    struct tunnel_frame_config applied;    /* what the device has of the last CONFIG */
};

/* Whether device NAME may be ours: 1 when there is none, 2 when it is OWNER's (a
 * leftover of ours, taken over), 0 with ERR when it is another's, -1 with ERR when
 * that cannot be read. */
static int check_owner(struct netdev *nd, const char *owner, const char *name, char *err,
                       size_t errlen)
{
    char alias[NETDEV_OWNER_MAX + 1], quoted[NETDEV_OWNER_MAX + 1];
    size_t prefix_len = strlen(NETDEV_OWNER_PREFIX);
    int found = netdev_owner(nd, name, alias, sizeof(alias), err, errlen);
    if (found <= 0)
        return found < 0 ? -1 : 1;
    if (strcmp(alias, owner) == 0)
        return 2;
    /* Attaching would share one device between two daemons, or take the operator's. */
    if (strncmp(alias, NETDEV_OWNER_PREFIX, prefix_len) == 0 && alias[prefix_len] != '\0')
        snprintf(err, errlen, "tun device %s: in use by another ktlstund (runtime_dir %s)",
                 name, text_log_quote(alias + prefix_len, quoted, sizeof(quoted)));
    else
        snprintf(err, errlen, "tun device %s: a device of that name exists and is not "
                 "ktlstund's", name);
    return 0;
}

struct client_device *client_device_create(struct netdev *nd, const char *owner,
                                           const char *tunnel, const char *name, char *err,
                                           size_t errlen)
{
    struct client_device *cd = calloc(1, sizeof(*cd));
    char why[512];
    int fd = -1, state;
    if (cd == NULL || (cd->tunnel = strdup(tunnel)) == NULL) {
        snprintf(err, errlen, "tun device %s: out of memory", name);
        goto fail;
    }
    snprintf(cd->name, sizeof(cd->name), "%s", name);
    if ((state = check_owner(nd, owner, cd->name, err, errlen)) <= 0)
        goto fail;
    if ((fd = tun_device_open(cd->name, DEVICE_FLAGS, err, errlen)) < 0)
        goto fail;
    if (state == 1 && netdev_set_owner(nd, cd->name, owner, err, errlen) != 0) {
        /* Persistent and unmarked, it would outlive us as nobody's: it goes now. */
        if (netdev_delete(nd, cd->name, why, sizeof(why)) != 0)
            log_warning("%s", why);
        goto fail;
    }
    /* Persistent: it stays without a descriptor until the dialer attaches. */
    close(fd);
    return cd;
fail:
    if (fd >= 0)
        close(fd);
    if (cd != NULL)
        free(cd->tunnel);
    free(cd);
    return NULL;
}

const char *client_device_tunnel(const struct client_device *cd)
{
    return cd->tunnel;
}

const char *client_device_name(const struct client_device *cd)
{
    return cd->name;
}

int client_device_attach(struct client_device *cd, struct netdev *nd, const char *owner,
                         char *err, size_t errlen)
{
    /* The device may have been deleted, or replaced by another's, since we made it:
     * opening it would make an unmarked one, or join the other's. */
    int state = check_owner(nd, owner, cd->name, err, errlen);
    if (state <= 0)
        return -1;
    int fd = tun_device_open(cd->name, DEVICE_FLAGS, err, errlen);
    if (fd >= 0 && state == 1 && netdev_set_owner(nd, cd->name, owner, err, errlen) != 0) {
        close(fd);
        fd = -1;
    }
    /* A device made anew has none of the addresses and routes the last CONFIG gave. */
    if (fd >= 0 && state == 1)
        memset(&cd->applied, 0, sizeof(cd->applied));
    return fd;
}

static int same(const struct ip_prefix *a, const struct ip_prefix *b)
{
    return a->family == b->family && a->len == b->len &&
           memcmp(a->addr, b->addr, ip_prefix_addr_len(a->family)) == 0;
}

static int has(const struct ip_prefix *list, size_t count, const struct ip_prefix *p)
{
    for (size_t i = 0; i < count; i++)
        if (same(&list[i], p))
            return 1;
    return 0;
}

/* Removes from the device what OLD (OLD_COUNT) has and WANT (COUNT) has not: routes
 * when ROUTES, else addresses. One that cannot be removed is logged and forgotten: it
 * is no longer ours to keep. */
static void remove_missing(struct client_device *cd, struct netdev *nd, int routes,
                           const struct ip_prefix *old, size_t old_count,
                           const struct ip_prefix *want, size_t count)
{
    char why[512];
    for (size_t i = 0; i < old_count; i++) {
        if (has(want, count, &old[i]))
            continue;
        if ((routes ? netdev_remove_route(nd, cd->name, &old[i], why, sizeof(why))
                    : netdev_remove_address(nd, cd->name, &old[i], why, sizeof(why))) != 0)
            log_warning("%s", why);
    }
}

/* Adds what WANT (COUNT) has and OLD (OLD_COUNT) has not; what the device holds of
 * WANT afterwards goes to KEPT (*KEPT_COUNT). Returns 0, or -1 with ERR (the first
 * failure; *RC keeps the first). */
static void add_new(struct client_device *cd, struct netdev *nd, int routes,
                    const struct ip_prefix *old, size_t old_count, const struct ip_prefix *want,
                    size_t count, struct ip_prefix *kept, size_t *kept_count, int *rc,
                    char *err, size_t errlen)
{
    char why[512];
    *kept_count = 0;
    for (size_t i = 0; i < count; i++) {
        if (has(old, old_count, &want[i]) ||
            (routes ? netdev_add_route(nd, cd->name, &want[i], why, sizeof(why))
                    : netdev_add_address(nd, cd->name, &want[i], why, sizeof(why))) == 0)
            kept[(*kept_count)++] = want[i];
        else if (*rc == 0) {
            snprintf(err, errlen, "%s", why);
            *rc = -1;
        }
    }
}

int client_device_configure(struct client_device *cd, struct netdev *nd,
                            const unsigned char *payload, size_t len, char *err,
                            size_t errlen)
{
    struct tunnel_frame_config want, now;
    struct tunnel_frame_config *old = &cd->applied;
    const char *reason = NULL;
    int rc = 0;
    if (tunnel_frame_config_decode(payload, len, &want, &reason) != TUNNEL_FRAME_OK) {
        snprintf(err, errlen, "tun device %s: the hub's configuration: %s", cd->name, reason);
        return -1;
    }
    if (netdev_set_mtu_up(nd, cd->name, want.mtu, err, errlen) != 0)
        return -1;
    now = want;
    /* Routes that go, before the addresses they may lean on; new routes after the
     * new addresses. What both CONFIGs have is left alone (no gap in the traffic),
     * except that the kernel flushes a device's IPv4 routes when it loses its last
     * IPv4 address: the old address goes first (a new one in its subnet would go with
     * it as its secondary), and the IPv4 routes are then added again. */
    remove_missing(cd, nd, 1, old->routes, old->route_count, want.routes, want.route_count);
    remove_missing(cd, nd, 0, old->addresses, old->address_count, want.addresses,
                   want.address_count);
    add_new(cd, nd, 0, old->addresses, old->address_count, want.addresses, want.address_count,
            now.addresses, &now.address_count, &rc, err, errlen);
    int v4_flushed = 0;
    for (size_t i = 0; i < old->address_count; i++)
        v4_flushed |= old->addresses[i].family == AF_INET &&
                      !has(want.addresses, want.address_count, &old->addresses[i]);
    size_t left = 0;
    for (size_t i = 0; i < old->route_count; i++)
        if (!v4_flushed || old->routes[i].family != AF_INET)
            old->routes[left++] = old->routes[i];
    old->route_count = left;
    add_new(cd, nd, 1, old->routes, old->route_count, want.routes, want.route_count,
            now.routes, &now.route_count, &rc, err, errlen);
    cd->applied = now;
    return rc;
}

void client_device_delete(struct client_device *cd, struct netdev *nd)
{
    char err[512];
    if (cd == NULL)
        return;
    if (nd != NULL && netdev_delete(nd, cd->name, err, sizeof(err)) != 0)
        log_warning("%s", err);
    free(cd->tunnel);
    free(cd);
}

/* The device a client tunnel keeps: `device`, or "ktl" + its name made fit. */
void client_device_name_for(const struct tunnel_config *t, char *out, size_t len)
{
    if (t->network.device[0] != '\0') {
        snprintf(out, len, "%s", t->network.device);
        return;
    }
    snprintf(out, len, "%s%s", NETDEV_NAME_PREFIX, t->name);
    for (char *c = out; *c != '\0'; c++)
        if (*c <= ' ' || *c >= 0x7f || *c == '/' || *c == ':')
            *c = '_';
}
