/* tun_device — a layer-3 TUN device (IFF_TUN, no packet information header): its file
 * descriptor carries one IP packet per read and write. Opening needs CAP_NET_ADMIN,
 * so the supervisor opens it and hands the descriptor to a worker. The device lives in
 * the network namespace of the process that opens it. */
#ifndef KTLSTUN_TUN_DEVICE_H
#define KTLSTUN_TUN_DEVICE_H

#include <stddef.h>

#define TUN_DEVICE_PERSIST 0x1       /* the device outlives its descriptors */
#define TUN_DEVICE_MULTI_QUEUE 0x2   /* each open is one more queue of the device: two
                                        processes can be attached at once; every open
                                        of a multi-queue device must pass it */

/* Returns 1 when NAME can name a network device (1..15 bytes, no '/', ':' or
 * whitespace, not "." or ".."), else 0. */
int tun_device_name_valid(const char *name);

/* Creates the TUN device NAME, or attaches to it when it exists (persistent and of our
 * kind), with FLAGS (TUN_DEVICE_PERSIST or 0: the device goes with its last
 * descriptor, and one made persistent before is made not so), TUN_DEVICE_MULTI_QUEUE
 * added as needed. Returns the descriptor
 * (non-blocking, close-on-exec; the caller closes it), or -1 with ERR (ERRLEN bytes)
 * naming the device and the reason. */
int tun_device_open(const char *name, unsigned flags, char *err, size_t errlen);

#endif
