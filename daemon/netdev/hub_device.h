/* hub_device — a hub's TUN device for one client connection: created when a worker
 * asks (proto/tun_request.h), configured, and its descriptor handed to that worker.
 *
 * The device is not persistent: the supervisor closes its own descriptor once it has
 * handed it over, so when the worker's connection ends, or the worker dies, the last
 * descriptor closes and the kernel removes the device with its addresses and routes.
 * The hub's address goes on each client's device as a host address (/32, /128) and
 * the client's addresses and networks are routed to it: the kernel's routing then
 * picks the connection a packet belongs to. Needs CAP_NET_ADMIN: the supervisor's
 * alone. */
#ifndef KTLSTUN_HUB_DEVICE_H
#define KTLSTUN_HUB_DEVICE_H

#include <stddef.h>

#include "core/ip_prefix.h"
#include "netdev/netdev.h"

/* What one client's device gets. The arrays are the caller's. */
struct hub_device_spec {
    const char *tunnel;                    /* the tunnel's name, for the device's name */
    const char *owner;                     /* the daemon's owner string (netdev.h) */
    unsigned counter;                      /* the supervisor's, one more per device */
    unsigned mtu;
    size_t hub_count;                      /* the hub's addresses, one per family */
    const struct ip_prefix *hub_addresses; /* their lengths are ignored */
    size_t client_count;                   /* the client's addresses (hosts) */
    const struct ip_prefix *client_addresses;
    size_t network_count;                  /* the networks behind the client */
    const struct ip_prefix *networks;
};

/* Writes the name of the device for TUNNEL and COUNTER into NAME (LEN bytes, IFNAMSIZ
 * is enough): NETDEV_NAME_PREFIX, TUNNEL cut to fit (characters a device name may not
 * hold become '_', and so does '.'), '.', COUNTER in decimal; at most IFNAMSIZ - 1
 * bytes. Different counters give different names. Returns NAME. */
char *hub_device_name(const char *tunnel, unsigned counter, char *name, size_t len);

/* Creates the device SPEC describes in ND's network namespace: a new TUN device (one
 * of that name already there is refused, never reused), marked with SPEC's owner,
 * its MTU, up, the hub's addresses, routes to the client's addresses and networks. Writes the device's name
 * into NAME (NAMELEN bytes, IFNAMSIZ is enough). Returns its descriptor (non-blocking,
 * close-on-exec; the caller hands it over and closes it), or -1 with ERR (ERRLEN bytes)
 * naming the device and the reason, everything it created gone again. */
int hub_device_create(struct netdev *nd, const struct hub_device_spec *spec, char *name,
                      size_t namelen, char *err, size_t errlen);

#endif
