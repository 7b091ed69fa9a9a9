/* client_device — a network client tunnel's persistent TUN device, the supervisor's:
 * made at start (or at the reload that adds the tunnel) and marked as this daemon's
 * (netdev.h: its alias), multi-queue so that a draining worker and its replacement
 * can be attached at once, given to the dialer worker as one more descriptor per
 * attach, configured from the hub's CONFIG (MTU, up, addresses, routes; a new CONFIG
 * replaces what differs from the one before), and kept with its routes while the
 * tunnel reconnects; deleted at stop or when a reload drops the tunnel.
 *
 * Kept apart from config/config.h: it speaks proto/tunnel_frame.h's CONFIG. */
#ifndef KTLSTUN_CLIENT_DEVICE_H
#define KTLSTUN_CLIENT_DEVICE_H

#include <stddef.h>

#include "config/config.h"
#include "netdev/netdev.h"

struct client_device;

/* Creates the persistent device NAME for TUNNEL (both copied) in ND's namespace and
 * marks it with OWNER (the daemon's owner string, netdev.h); a device of that name
 * marked with OWNER already is taken over. A device of that name with another alias
 * (another ktlstund's) or with none (the operator's) is refused: ERR names the device
 * and whose it is. Returns it, or NULL with ERR (ERRLEN bytes), no device of ours
 * left behind. */
struct client_device *client_device_create(struct netdev *nd, const char *owner,
                                           const char *tunnel, const char *name, char *err,
                                           size_t errlen);

/* The tunnel's and the device's names. */
const char *client_device_tunnel(const struct client_device *cd);
const char *client_device_name(const struct client_device *cd);

/* Opens one more queue of the device, made again (and marked OWNER, over ND) when it
 * was deleted meanwhile. Returns its descriptor (the caller's), or -1 with ERR, also
 * when a device of that name is now another's. */
int client_device_attach(struct client_device *cd, struct netdev *nd, const char *owner,
                         char *err, size_t errlen);

/* Applies the CONFIG payload PAYLOAD (LEN bytes, proto/tunnel_frame.h): MTU, up, its
 * addresses (with their lengths) and routes, removing those of the CONFIG before that
 * this one does not have. Returns 0, or -1 with ERR naming the first failure (the
 * rest is still applied; what failed is not remembered as there). */
int client_device_configure(struct client_device *cd, struct netdev *nd,
                            const unsigned char *payload, size_t len, char *err,
                            size_t errlen);

/* Deletes the device (ND may be NULL: then it is only forgotten) and frees CD. NULL
 * is a no-op. */
void client_device_delete(struct client_device *cd, struct netdev *nd);

/* Writes into OUT (LEN bytes) the name of client tunnel T's device: its `device`, or
 * NETDEV_NAME_PREFIX and the tunnel's name with unfit characters replaced. */
void client_device_name_for(const struct tunnel_config *t, char *out, size_t len);

#endif
