/* mss_clamp — lowers the maximum segment size a TCP SYN or SYN-ACK announces so that
 * the segments of that connection fit the tunnel's MTU unfragmented, and fixes the
 * TCP checksum for the change (RFC 1624). Pure: works on the packet in place. */
#ifndef KTLSTUN_MSS_CLAMP_H
#define KTLSTUN_MSS_CLAMP_H

#include <stddef.h>
#include <stdint.h>

#include "packet/ip_packet.h"

/* Returns the largest MSS that fits MTU for FAMILY: MTU less the IP (20 or 40) and
 * TCP (20) headers. */
unsigned mss_clamp_limit(int family, unsigned mtu);

/* When PKT (parsed into *P by ip_packet_parse) is a TCP segment with SYN set whose MSS
 * option is above mss_clamp_limit(P's family, MTU), writes that limit into the option
 * and updates the TCP checksum. Returns 1 when it changed PKT, 0 when it left it alone
 * (not TCP, no SYN, no MSS option, small enough, or options it cannot read). */
int mss_clamp(uint8_t *pkt, const struct ip_packet *p, unsigned mtu);

#endif
