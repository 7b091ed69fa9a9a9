/* ip_packet — what the network tunnel checks in each IP packet before it passes it on:
 * a well-formed IPv4 or IPv6 header whose length is the packet's, and a source
 * address the sending client may use. Pure: no I/O, no allocation; the packet is read,
 * never changed (see mss_clamp for that). */
#ifndef KTLSTUN_IP_PACKET_H
#define KTLSTUN_IP_PACKET_H

#include <stddef.h>
#include <stdint.h>

#include "core/ip_prefix.h"

#define IP_PACKET_MAX_EXTENSIONS 8   /* IPv6 extension headers walked to find TCP */

enum ip_packet_status {
    IP_PACKET_OK,
    IP_PACKET_TOO_SHORT,       /* shorter than the fixed header */
    IP_PACKET_BAD_VERSION,     /* neither 4 nor 6 */
    IP_PACKET_BAD_HEADER,      /* header length, an extension header, options */
    IP_PACKET_BAD_LENGTH,      /* the header's length is not the packet's */
    IP_PACKET_BAD_CHECKSUM,    /* IPv4 header checksum */
};

/* A parsed packet. SRC and DST point into the packet. */
struct ip_packet {
    int family;                 /* AF_INET or AF_INET6 */
    const uint8_t *src;         /* 4 or 16 bytes */
    const uint8_t *dst;
    uint8_t protocol;           /* the transport protocol (after IPv6 extensions) */
    size_t l4_offset;           /* where that protocol's header starts; 0 when the packet
                                   holds none (a later fragment, an unknown extension) */
    size_t len;
};

/* Checks the packet at PKT (LEN bytes) and fills *OUT. Returns IP_PACKET_OK, or the
 * first problem found (*OUT unspecified). */
enum ip_packet_status ip_packet_parse(const uint8_t *pkt, size_t len, struct ip_packet *out);

/* Returns 1 when P's source lies in one of the N prefixes at ALLOWED (a client's
 * address as a /32 or /128, and the networks behind it), else 0. */
int ip_packet_source_allowed(const struct ip_packet *p, const struct ip_prefix *allowed,
                             size_t n);

/* Returns a short explanation of STATUS ("bad IPv4 header checksum", ...). */
const char *ip_packet_status_text(enum ip_packet_status status);

#endif
