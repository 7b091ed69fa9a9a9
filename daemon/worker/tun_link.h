/* tun_link — a worker's end of its link with the supervisor for network tunnels:
 * it asks for TUN devices (the supervisor alone holds CAP_NET_ADMIN) and hears when
 * the supervisor wants a connection ended. Requests are answered asynchronously, in
 * the worker's event loop, one callback per request (proto/tun_request.h).
 *
 * Hub side: tun_link_request_hub asks for a device for one client connection; the
 * supervisor leases the client its addresses (fixed or from the pool, by CN), creates
 * the device with routes to those addresses and the client's networks, and answers
 * with the device's descriptor and the leased addresses. tun_link_release tells it the
 * connection ended (its lease is released). An older connection of the same identity
 * on the same tunnel is ended first: the supervisor sends an end order for it.
 *
 * Client side: tun_link_request_attach gets the descriptor of the tunnel's persistent
 * device (made at start, kept across reconnects); tun_link_request_configure asks
 * the supervisor to give it the addresses, MTU and routes the hub sent (replacing
 * what an earlier CONFIG gave). */
#ifndef KTLSTUN_TUN_LINK_H
#define KTLSTUN_TUN_LINK_H

#include <stdint.h>

#include "core/event_loop.h"
#include "proto/tunnel_frame.h"

struct tun_link;

/* What the supervisor answered. */
struct tun_link_answer {
    int refused;                     /* 1: REASON says why, FD is -1 */
    const char *reason;              /* when refused; valid during the callback */
    int fd;                          /* hub and attach: the device's descriptor, now the
                                        callee's to close; -1 otherwise */
    const char *device;              /* the device's name */
    size_t address_count;            /* hub: the client's leased addresses (hosts) */
    const struct ip_prefix *addresses;
};

/* Called once per request with its answer (also when the link fails: refused, with
 * the reason), unless the request was cancelled first. */
typedef void (*tun_link_done)(void *arg, const struct tun_link_answer *answer);

/* Called when the supervisor orders the connection that made request ID ended
 * (REASON is a sentence). */
typedef void (*tun_link_end)(void *arg, uint32_t id, const char *reason);

/* Takes FD (the worker's end of the link; SOCK_SEQPACKET, owned from now on) and
 * watches it in LOOP. END is called with end orders. Returns the link, or NULL after
 * logging (FD closed). */
struct tun_link *tun_link_new(struct event_loop *loop, int fd, tun_link_end end, void *end_arg);

/* Closes the link and frees it. Pending requests are dropped without callbacks.
 * NULL is a no-op. */
void tun_link_free(struct tun_link *link);

/* Asks for a hub device of TUNNEL for the client IDENTITY (its CN). Returns the
 * request's id (non-zero), or 0 when the request cannot be sent (then DONE is not
 * called). */
uint32_t tun_link_request_hub(struct tun_link *link, const char *tunnel, const char *identity,
                              tun_link_done done, void *arg);

/* Asks for the descriptor of TUNNEL's persistent client device. As above. */
uint32_t tun_link_request_attach(struct tun_link *link, const char *tunnel, tun_link_done done,
                                 void *arg);

/* Asks that TUNNEL's client device get CONFIG's addresses, MTU and routes. As above. */
uint32_t tun_link_request_configure(struct tun_link *link, const char *tunnel,
                                    const struct tunnel_frame_config *config, tun_link_done done,
                                    void *arg);

/* Forgets request ID: its callback is never called; a descriptor that still arrives
 * for it is closed (and a hub device's lease released). */
void tun_link_cancel(struct tun_link *link, uint32_t id);

/* Tells the supervisor the hub connection of request ID ended: its lease goes. */
void tun_link_release(struct tun_link *link, uint32_t id);

#endif
