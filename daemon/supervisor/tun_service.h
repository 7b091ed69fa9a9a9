/* tun_service — the supervisor's side of network tunnels: it alone holds
 * CAP_NET_ADMIN, and answers its workers over one SOCK_SEQPACKET link each
 * (proto/tun_request.h; the worker's end is worker/tun_link.h).
 *
 * Hub tunnels: a worker asks for a device for one client connection by tunnel and
 * certificate CN. The client's addresses come from the tunnel's address plan
 * (addrplan/address_plan.h; one per generation and tunnel, built at the first
 * request); an older device of the same tunnel and CN, on any worker, first loses its
 * routes and its worker gets an end order; then netdev/hub_device.h makes the device
 * with routes to the addresses and the CN's client_networks, and its descriptor goes
 * to the worker with the reply. The lease is released when the worker says the
 * connection ended, or when the worker is gone.
 *
 * Client tunnels: each has a persistent device (supervisor/client_device.h), made when
 * the configuration names it and deleted when it no longer does or the service ends;
 * attach gives the worker one more descriptor of it, configure applies the hub's
 * CONFIG; a device name another daemon or the operator holds is refused.
 *
 * Every device made here is marked with this daemon's owner string (netdev/netdev.h:
 * "ktlstund " and the runtime_dir it started with), since other daemons may share the
 * network namespace. Devices named NETDEV_NAME_PREFIX... with that mark, which a
 * crashed run left, are removed the first time a network tunnel is configured; those
 * of other daemons and the operator's stay. */
#ifndef KTLSTUN_TUN_SERVICE_H
#define KTLSTUN_TUN_SERVICE_H

#include <poll.h>
#include <stddef.h>
#include <sys/types.h>

#include "config/config.h"
#include "supervisor/helper_process.h"

struct tun_service;

/* Returns 1 when CONFIG has a network tunnel (the supervisor then keeps
 * CAP_NET_ADMIN), else 0. */
int tun_service_needed(const struct config *config);

/* Returns a new service with no link and no device, or NULL (logged). */
struct tun_service *tun_service_new(void);

/* Makes the client devices match CONFIG (the current configuration, at start and
 * after each reload; the first call's runtime_dir makes the owner string): removes
 * our leftovers the first time CONFIG has a network tunnel, creates the devices of
 * new client tunnels, deletes those of tunnels it no longer has. Failures are logged
 * (a device name held by another daemon or the operator too); a tunnel whose device
 * failed refuses attach requests. */
void tun_service_sync(struct tun_service *ts, const struct config *config);

/* Takes FD, the supervisor's end of worker PID's link; the worker serves CONFIG
 * (generation GENERATION, which must outlive the link). Returns 0, or -1 (logged, FD
 * closed). */
int tun_service_add_worker(struct tun_service *ts, pid_t pid, int fd,
                           const struct config *config, unsigned generation);

/* Worker PID is gone (reaped): closes its link and releases its leases. */
void tun_service_worker_gone(struct tun_service *ts, pid_t pid);

/* In a freshly forked worker: closes every link's supervisor end (another worker's
 * would let it speak for the parent). Frees nothing else. */
void tun_service_close_in_child(struct tun_service *ts);

/* Pool addresses of hubs whose configuration has a shared state store are leased
 * through HELPER's store process (supervisor/fleet_leases.h); when CONFIG has both,
 * the store hears at once that this gateway holds no lease. */
void tun_service_use_helper(struct tun_service *ts, struct helper_process *helper,
                            const struct config *config);

/* Fills FDS (at most MAX) with the links to poll for input. Returns how many. */
size_t tun_service_poll_fds(const struct tun_service *ts, struct pollfd *fds, size_t max);

/* Answers what the links in FDS (COUNT, as poll left them) have sent. */
void tun_service_handle(struct tun_service *ts, const struct pollfd *fds, size_t count);

/* Deletes the client devices, closes every link, releases every lease, frees TS.
 * NULL is a no-op. */
void tun_service_free(struct tun_service *ts);

#endif
