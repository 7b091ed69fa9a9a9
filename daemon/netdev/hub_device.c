#include "netdev/hub_device.h"

#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "netdev/tun_device.h"

char *hub_device_name(const char *tunnel, unsigned counter, char *name, size_t len)
{
    char number[16];
    char out[IFNAMSIZ];
    int digits = snprintf(number, sizeof(number), ".%u", counter);
    size_t room = IFNAMSIZ - 1 - strlen(NETDEV_NAME_PREFIX) - (size_t)digits;
    size_t at = (size_t)snprintf(out, sizeof(out), "%s", NETDEV_NAME_PREFIX);
    for (size_t i = 0; i < room && tunnel[i] != '\0'; i++) {
        char c = tunnel[i];
        unsigned char u = (unsigned char)c;
        if (u <= ' ' || u >= 0x7f || c == '/' || c == ':' || c == '.')
            c = '_';
        out[at++] = c;
    }
    snprintf(out + at, sizeof(out) - at, "%s", number);
    snprintf(name, len, "%s", out);
    return name;
}

static struct ip_prefix as_host(const struct ip_prefix *p)
{
    struct ip_prefix h = *p;
    h.len = (uint8_t)ip_prefix_max_len(p->family);
    return h;
}

int hub_device_create(struct netdev *nd, const struct hub_device_spec *spec, char *name,
                      size_t namelen, char *err, size_t errlen)
{
    char dev[IFNAMSIZ];
    int fd = -1;
    hub_device_name(spec->tunnel, spec->counter, dev, sizeof(dev));
    snprintf(name, namelen, "%s", dev);
    /* Opening a TUN device attaches to a persistent one of that name: this one must be
     * new, or routes and addresses of another would be taken over. */
    if (if_nametoindex(dev) != 0) {
        snprintf(err, errlen, "tun device %s: a device of that name exists already", dev);
        goto fail;
    }
    fd = tun_device_open(dev, 0, err, errlen);
    /* Marked before anything else, so that other daemons in this namespace and the
     * operator (`ip link`) see whose it is; one that cannot be marked is not made. */
    if (fd < 0 || netdev_set_owner(nd, dev, spec->owner, err, errlen) != 0 ||
        netdev_set_mtu_up(nd, dev, spec->mtu, err, errlen) != 0)
        goto fail;
    for (size_t i = 0; i < spec->hub_count; i++) {
        struct ip_prefix hub = as_host(&spec->hub_addresses[i]);
        if (netdev_add_address(nd, dev, &hub, err, errlen) != 0)
            goto fail;
    }
    for (size_t i = 0; i < spec->client_count; i++) {
        struct ip_prefix client = as_host(&spec->client_addresses[i]);
        if (netdev_add_route(nd, dev, &client, err, errlen) != 0)
            goto fail;
    }
    for (size_t i = 0; i < spec->network_count; i++)
        if (netdev_add_route(nd, dev, &spec->networks[i], err, errlen) != 0)
            goto fail;
    return fd;
fail:
    /* Not persistent: with its only descriptor closed, the device and what was added
     * to it go. */
    if (fd >= 0)
        close(fd);
    return -1;
}
