/* netdev — a network tunnel's device configured over rtnetlink (libnl-route-3): MTU,
 * up, IPv4/IPv6 addresses, routes through the device, its owner, deletion, and the
 * removal of devices a crashed run left behind. Needs CAP_NET_ADMIN: the supervisor's
 * alone. Acts in the network namespace the handle was opened in.
 *
 * Several daemons may share a network namespace (one per runtime_dir): each marks the
 * devices it makes with its owner string, NETDEV_OWNER_PREFIX and its runtime_dir, in
 * the device's alias (IFLA_IFALIAS, `ip link` shows it as "alias ..."), and touches no
 * device of another owner.
 *
 * Every call that fails writes into ERR (ERRLEN bytes) a sentence that names the
 * device and the kernel's reason; the caller logs it once. */
#ifndef KTLSTUN_NETDEV_H
#define KTLSTUN_NETDEV_H

#include <stddef.h>

#include "core/ip_prefix.h"

/* Devices a tunnel creates are named with this prefix unless configured otherwise:
 * what netdev_remove_leftovers looks for at start. */
#define NETDEV_NAME_PREFIX "ktl"

/* An owner string is this and the daemon's runtime_dir. */
#define NETDEV_OWNER_PREFIX "ktlstund "

/* The longest owner string the kernel keeps in an alias, without its NUL (IFALIASZ). */
#define NETDEV_OWNER_MAX 255

struct netdev;

/* Opens an rtnetlink handle. Returns it (free with netdev_close), or NULL with ERR. */
struct netdev *netdev_open(char *err, size_t errlen);

/* Closes ND. NULL is a no-op. */
void netdev_close(struct netdev *nd);

/* Sets the MTU of device NAME (0 leaves it) and brings it up. Returns 0, or -1 with
 * ERR. */
int netdev_set_mtu_up(struct netdev *nd, const char *name, unsigned mtu, char *err,
                      size_t errlen);

/* Adds ADDR (its length is the on-link prefix: "10.8.0.1/24") to device NAME. IPv6
 * addresses skip duplicate address detection: the tunnel's peer has no other.
 * Returns 0, or -1 with ERR (an address already there is an error). */
int netdev_add_address(struct netdev *nd, const char *name, const struct ip_prefix *addr,
                       char *err, size_t errlen);

/* Removes ADDR from device NAME. Returns 0, or -1 with ERR. */
int netdev_remove_address(struct netdev *nd, const char *name, const struct ip_prefix *addr,
                          char *err, size_t errlen);

/* Adds a route to NETWORK (no host bits) through device NAME, in the main table.
 * Returns 0, or -1 with ERR (a route to NETWORK already there is an error: it is
 * someone else's). */
int netdev_add_route(struct netdev *nd, const char *name, const struct ip_prefix *network,
                     char *err, size_t errlen);

/* Removes the route to NETWORK through device NAME. Returns 0, or -1 with ERR. */
int netdev_remove_route(struct netdev *nd, const char *name, const struct ip_prefix *network,
                        char *err, size_t errlen);

/* Deletes device NAME (its addresses and routes go with it). Returns 0, or -1 with
 * ERR (a device that is not there is an error). */
int netdev_delete(struct netdev *nd, const char *name, char *err, size_t errlen);

/* Writes into OUT (LEN bytes) the owner string of the daemon whose runtime_dir is
 * RUNTIME_DIR: NETDEV_OWNER_PREFIX RUNTIME_DIR. Returns 0, or -1 when it does not fit
 * in OUT or exceeds NETDEV_OWNER_MAX (OUT then holds an empty string). */
int netdev_owner_for(const char *runtime_dir, char *out, size_t len);

/* Marks device NAME as OWNER's (a non-empty owner string): sets its alias to OWNER.
 * Returns 0, or -1 with ERR. */
int netdev_set_owner(struct netdev *nd, const char *name, const char *owner, char *err,
                     size_t errlen);

/* Reads the alias of device NAME into OWNER (LEN bytes; an empty string when it has
 * none; cut to fit). Returns 1 when the device exists, 0 when there is no device of
 * that name (OWNER empty), or -1 with ERR. */
int netdev_owner(struct netdev *nd, const char *name, char *owner, size_t len, char *err,
                 size_t errlen);

/* Deletes every TUN device whose name starts with PREFIX (a non-empty string) and
 * whose alias is OWNER exactly (a non-empty owner string): those a run of this daemon
 * that crashed left. Devices of another kind, with another alias (another daemon's)
 * or with none (the operator's) are left alone whatever their name. Sets *REMOVED to
 * how many went. Returns 0, or -1 with ERR after the first failure (those before it
 * are counted). */
int netdev_remove_leftovers(struct netdev *nd, const char *prefix, const char *owner,
                            unsigned *removed, char *err, size_t errlen);

#endif
