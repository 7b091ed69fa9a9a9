/* net_dialer — the network client tunnels of one worker (the one its supervisor made
 * the dialer): each keeps its device's descriptor (worker/tun_link.h) for as long as
 * the worker runs, connects to its hub, and reconnects when the connection ends,
 * waiting 1 s, then twice as long each time up to reconnect_max (back to 1 s after a
 * connection that lasted 30 s). While it is down, the device and its routes stay: what
 * is routed into the tunnel waits or is dropped, never takes another path. */
#ifndef KTLSTUN_NET_DIALER_H
#define KTLSTUN_NET_DIALER_H

#include <stdint.h>

#include "supervisor/generation.h"
#include "worker/conn.h"

struct net_dialer;

/* Starts the network client tunnels of GEN on HOST (its tun_link asks for their
 * devices). Returns the dialer (free with net_dialer_free; also when GEN has none), or
 * NULL when memory is short (logged). */
struct net_dialer *net_dialer_start(struct conn_host *host, const struct generation *gen);

/* Connects the tunnels whose wait is over at NOW_MS. */
void net_dialer_tick(struct net_dialer *d, uint64_t now_ms);

/* Stops reconnecting (the worker drains or stops). NULL is a no-op. */
void net_dialer_stop(struct net_dialer *d);

/* Frees D and closes its devices' descriptors; its connections must be gone. NULL is a
 * no-op. */
void net_dialer_free(struct net_dialer *d);

#endif
