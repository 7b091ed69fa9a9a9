#include "netdev/netdev.h"

#include <linux/if_addr.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/errno.h>
#include <netlink/netlink.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netdev/tun_device.h"

struct netdev {
    struct nl_sock *sock;
};

struct netdev *netdev_open(char *err, size_t errlen)
{
    struct netdev *nd = calloc(1, sizeof(*nd));
    int rc;

    if (nd == NULL) {
        snprintf(err, errlen, "rtnetlink: out of memory");
        goto fail;
    }
    nd->sock = nl_socket_alloc();
    if (nd->sock == NULL) {
        snprintf(err, errlen, "rtnetlink: out of memory");
        goto fail;
    }
    if ((rc = nl_connect(nd->sock, NETLINK_ROUTE)) < 0) {
        snprintf(err, errlen, "rtnetlink: cannot connect: %s", nl_geterror(rc));
        goto fail;
    }
    return nd;
fail:
    netdev_close(nd);
    return NULL;
}

void netdev_close(struct netdev *nd)
{
    if (nd == NULL)
        return;
    if (nd->sock != NULL)
        nl_socket_free(nd->sock);
    free(nd);
}

/* Looks device NAME up in the kernel. Returns the link (rtnl_link_put it) or NULL
 * with ERR saying what was being done (DOING). */
static struct rtnl_link *get_link(struct netdev *nd, const char *name, const char *doing,
                                  char *err, size_t errlen)
{
    struct rtnl_link *link = NULL;
    int rc;

    if (!tun_device_name_valid(name)) {
        snprintf(err, errlen, "%s device '%.*s': not a valid interface name", doing,
                 IFNAMSIZ, name);
        return NULL;
    }
    if ((rc = rtnl_link_get_kernel(nd->sock, 0, name, &link)) < 0) {
        snprintf(err, errlen, "%s device %s: %s", doing, name, nl_geterror(rc));
        return NULL;
    }
    return link;
}

/* Applies CHANGE (made by the caller, put here) to device NAME; DOING and FAILED name
 * the step in ERR ("bringing up", "setting MTU 1400 and bringing up"). Returns 0, or
 * -1 with ERR. */
static int change_link(struct netdev *nd, const char *name, struct rtnl_link *change,
                       const char *doing, const char *failed, char *err, size_t errlen)
{
    struct rtnl_link *link = NULL;
    int rc, result = -1;

    if (change == NULL) {
        snprintf(err, errlen, "%s device %s: out of memory", doing, name);
        goto out;
    }
    if ((link = get_link(nd, name, doing, err, errlen)) == NULL)
        goto out;
    if ((rc = rtnl_link_change(nd->sock, link, change, 0)) < 0) {
        snprintf(err, errlen, "%s device %s: %s", failed, name, nl_geterror(rc));
        goto out;
    }
    result = 0;
out:
    if (change != NULL)
        rtnl_link_put(change);
    if (link != NULL)
        rtnl_link_put(link);
    return result;
}

int netdev_set_mtu_up(struct netdev *nd, const char *name, unsigned mtu, char *err,
                      size_t errlen)
{
    char failed[64];
    struct rtnl_link *change = rtnl_link_alloc();
    if (change != NULL) {
        if (mtu != 0)
            rtnl_link_set_mtu(change, mtu);
        rtnl_link_set_flags(change, IFF_UP);
    }
    snprintf(failed, sizeof(failed), "setting MTU %u and bringing up", mtu);
    return change_link(nd, name, change, "bringing up", failed, err, errlen);
}

/* P as a libnl address with its prefix length. Returns it (nl_addr_put it) or NULL. */
static struct nl_addr *to_nl_addr(const struct ip_prefix *p)
{
    size_t len = ip_prefix_addr_len(p->family);
    struct nl_addr *a = len > 0 ? nl_addr_build(p->family, p->addr, len) : NULL;
    if (a != NULL)
        nl_addr_set_prefixlen(a, p->len);
    return a;
}

static int change_address(struct netdev *nd, const char *name, const struct ip_prefix *addr,
                          int add, char *err, size_t errlen)
{
    const char *doing = add ? "adding address to" : "removing address from";
    char text[IP_PREFIX_TEXT_MAX];
    struct rtnl_link *link = NULL;
    struct rtnl_addr *ra = NULL;
    struct nl_addr *local = NULL;
    int rc, result = -1;

    ip_prefix_format(addr, text, sizeof(text));
    if ((link = get_link(nd, name, doing, err, errlen)) == NULL)
        goto out;
    if ((ra = rtnl_addr_alloc()) == NULL || (local = to_nl_addr(addr)) == NULL) {
        snprintf(err, errlen, "%s device %s: %s: cannot build the address", doing, name, text);
        goto out;
    }
    rtnl_addr_set_ifindex(ra, rtnl_link_get_ifindex(link));
    rtnl_addr_set_family(ra, addr->family);
    if ((rc = rtnl_addr_set_local(ra, local)) < 0) {
        snprintf(err, errlen, "%s device %s: %s: %s", doing, name, text, nl_geterror(rc));
        goto out;
    }
    rtnl_addr_set_prefixlen(ra, addr->len);
    if (addr->family == AF_INET6)
        rtnl_addr_set_flags(ra, IFA_F_NODAD);
    rc = add ? rtnl_addr_add(nd->sock, ra, NLM_F_EXCL) : rtnl_addr_delete(nd->sock, ra, 0);
    if (rc < 0) {
        snprintf(err, errlen, "%s device %s: %s: %s", doing, name, text, nl_geterror(rc));
        goto out;
    }
    result = 0;
out:
    if (local != NULL)
        nl_addr_put(local);
    if (ra != NULL)
        rtnl_addr_put(ra);
    if (link != NULL)
        rtnl_link_put(link);
    return result;
}

int netdev_add_address(struct netdev *nd, const char *name, const struct ip_prefix *addr,
                       char *err, size_t errlen)
{
    return change_address(nd, name, addr, 1, err, errlen);
}

int netdev_remove_address(struct netdev *nd, const char *name, const struct ip_prefix *addr,
                          char *err, size_t errlen)
{
    return change_address(nd, name, addr, 0, err, errlen);
}

static int change_route(struct netdev *nd, const char *name, const struct ip_prefix *network,
                        int add, char *err, size_t errlen)
{
    const char *doing = add ? "adding route via" : "removing route via";
    char text[IP_PREFIX_TEXT_MAX];
    struct rtnl_link *link = NULL;
    struct rtnl_route *route = NULL;
    struct rtnl_nexthop *hop = NULL;
    struct nl_addr *dst = NULL;
    int rc, result = -1;

    ip_prefix_format(network, text, sizeof(text));
    if (!ip_prefix_is_network(network)) {
        snprintf(err, errlen, "%s device %s: %s has host bits set", doing, name, text);
        goto out;
    }
    if ((link = get_link(nd, name, doing, err, errlen)) == NULL)
        goto out;
    if ((route = rtnl_route_alloc()) == NULL || (hop = rtnl_route_nh_alloc()) == NULL ||
        (dst = to_nl_addr(network)) == NULL) {
        snprintf(err, errlen, "%s device %s: %s: cannot build the route", doing, name, text);
        goto out;
    }
    rtnl_route_set_family(route, (uint8_t)network->family);
    rtnl_route_set_table(route, RT_TABLE_MAIN);
    rtnl_route_set_protocol(route, RTPROT_STATIC);
    rtnl_route_set_scope(route, RT_SCOPE_LINK);
    rtnl_route_set_type(route, RTN_UNICAST);
    if ((rc = rtnl_route_set_dst(route, dst)) < 0) {
        snprintf(err, errlen, "%s device %s: %s: %s", doing, name, text, nl_geterror(rc));
        goto out;
    }
    rtnl_route_nh_set_ifindex(hop, rtnl_link_get_ifindex(link));
    rtnl_route_add_nexthop(route, hop);
    hop = NULL;   /* the route owns it now */
    rc = add ? rtnl_route_add(nd->sock, route, NLM_F_EXCL) : rtnl_route_delete(nd->sock, route, 0);
    if (rc < 0) {
        snprintf(err, errlen, "%s device %s: %s: %s", doing, name, text, nl_geterror(rc));
        goto out;
    }
    result = 0;
out:
    if (dst != NULL)
        nl_addr_put(dst);
    if (hop != NULL)
        rtnl_route_nh_free(hop);
    if (route != NULL)
        rtnl_route_put(route);
    if (link != NULL)
        rtnl_link_put(link);
    return result;
}

int netdev_add_route(struct netdev *nd, const char *name, const struct ip_prefix *network,
                     char *err, size_t errlen)
{
    return change_route(nd, name, network, 1, err, errlen);
}

int netdev_remove_route(struct netdev *nd, const char *name, const struct ip_prefix *network,
                        char *err, size_t errlen)
{
    return change_route(nd, name, network, 0, err, errlen);
}

int netdev_delete(struct netdev *nd, const char *name, char *err, size_t errlen)
{
    struct rtnl_link *link = NULL;
    int rc, result = -1;

    if ((link = get_link(nd, name, "deleting", err, errlen)) == NULL)
        goto out;
    if ((rc = rtnl_link_delete(nd->sock, link)) < 0) {
        snprintf(err, errlen, "deleting device %s: %s", name, nl_geterror(rc));
        goto out;
    }
    result = 0;
out:
    if (link != NULL)
        rtnl_link_put(link);
    return result;
}

int netdev_owner_for(const char *runtime_dir, char *out, size_t len)
{
    int n = snprintf(out, len, "%s%s", NETDEV_OWNER_PREFIX, runtime_dir);
    if (n < 0 || (size_t)n >= len || n > NETDEV_OWNER_MAX) {
        if (len > 0)
            out[0] = '\0';
        return -1;
    }
    return 0;
}

int netdev_set_owner(struct netdev *nd, const char *name, const char *owner, char *err,
                     size_t errlen)
{
    if (owner[0] == '\0' || strlen(owner) > NETDEV_OWNER_MAX) {
        snprintf(err, errlen, "marking device %s: the owner is empty or longer than %d bytes",
                 name, NETDEV_OWNER_MAX);
        return -1;
    }
    struct rtnl_link *change = rtnl_link_alloc();
    if (change != NULL)
        rtnl_link_set_ifalias(change, owner);
    return change_link(nd, name, change, "marking", "marking", err, errlen);
}

int netdev_owner(struct netdev *nd, const char *name, char *owner, size_t len, char *err,
                 size_t errlen)
{
    struct rtnl_link *link = NULL;
    const char *alias;
    int rc, result = -1;

    if (len > 0)
        owner[0] = '\0';
    if (!tun_device_name_valid(name)) {
        snprintf(err, errlen, "reading the owner of device '%.*s': not a valid interface name",
                 IFNAMSIZ, name);
        goto out;
    }
    if ((rc = rtnl_link_get_kernel(nd->sock, 0, name, &link)) < 0) {
        if (rc == -NLE_NODEV || rc == -NLE_OBJ_NOTFOUND) {
            result = 0;
            goto out;
        }
        snprintf(err, errlen, "reading the owner of device %s: %s", name, nl_geterror(rc));
        goto out;
    }
    alias = rtnl_link_get_ifalias(link);
    if (len > 0)
        snprintf(owner, len, "%s", alias != NULL ? alias : "");
    result = 1;
out:
    if (link != NULL)
        rtnl_link_put(link);
    return result;
}

int netdev_remove_leftovers(struct netdev *nd, const char *prefix, const char *owner,
                            unsigned *removed, char *err, size_t errlen)
{
    struct nl_cache *cache = NULL;
    size_t prefix_len = strlen(prefix);
    int rc, result = -1;

    *removed = 0;
    if (prefix_len == 0 || owner[0] == '\0') {
        snprintf(err, errlen, "removing leftover devices: empty name prefix or owner");
        goto out;
    }
    if ((rc = rtnl_link_alloc_cache(nd->sock, AF_UNSPEC, &cache)) < 0) {
        snprintf(err, errlen, "removing leftover devices: listing devices: %s",
                 nl_geterror(rc));
        goto out;
    }
    for (struct nl_object *obj = nl_cache_get_first(cache); obj != NULL;
         obj = nl_cache_get_next(obj)) {
        struct rtnl_link *link = (struct rtnl_link *)obj;
        const char *name = rtnl_link_get_name(link);
        const char *kind = rtnl_link_get_type(link);
        const char *alias = rtnl_link_get_ifalias(link);
        if (name == NULL || strncmp(name, prefix, prefix_len) != 0)
            continue;
        /* Only our kind: a bridge or a veth with a matching name is someone else's. */
        if (kind == NULL || strcmp(kind, "tun") != 0)
            continue;
        /* Only ours: another daemon in this namespace may be using its devices now,
         * and one without an alias is the operator's. */
        if (alias == NULL || strcmp(alias, owner) != 0)
            continue;
        if ((rc = rtnl_link_delete(nd->sock, link)) < 0) {
            snprintf(err, errlen, "removing leftover device %s: %s", name, nl_geterror(rc));
            goto out;
        }
        (*removed)++;
    }
    result = 0;
out:
    if (cache != NULL)
        nl_cache_free(cache);
    return result;
}
