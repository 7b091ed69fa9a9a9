/* ip_prefix — an IPv4 or IPv6 address with a prefix length ("10.8.0.2/24",
 * "fd00:8::/64"): a tunnel address, a network behind a client, a route. Pure: no I/O,
 * no allocation, no name lookup. */
#ifndef KTLSTUN_IP_PREFIX_H
#define KTLSTUN_IP_PREFIX_H

#include <stddef.h>
#include <stdint.h>

#define IP_PREFIX_TEXT_MAX 50   /* "ffff:...:ffff/128" and its NUL fit */

struct ip_prefix {
    int family;             /* AF_INET or AF_INET6 */
    uint8_t addr[16];       /* network byte order; AF_INET uses the first 4 bytes */
    uint8_t len;            /* 0..32 or 0..128 */
};

/* Parses TEXT ("ADDRESS/LEN", or a bare ADDRESS meaning /32 or /128) into *OUT.
 * Host bits after LEN are kept as written (an interface address); see
 * ip_prefix_is_network. Returns 0, or -1 with a static reason in *REASON and *OUT
 * untouched. */
int ip_prefix_parse(const char *text, struct ip_prefix *out, const char **reason);

/* Formats P as "ADDRESS/LEN" into BUF (LEN bytes, IP_PREFIX_TEXT_MAX is enough).
 * Returns BUF. */
char *ip_prefix_format(const struct ip_prefix *p, char *buf, size_t len);

/* Returns the address bytes of FAMILY: 4 for AF_INET, 16 for AF_INET6, 0 otherwise. */
size_t ip_prefix_addr_len(int family);

/* Returns the largest prefix length of FAMILY (32 or 128), 0 for another family. */
unsigned ip_prefix_max_len(int family);

/* Returns 1 when ADDR (FAMILY, ip_prefix_addr_len bytes, network order) lies inside
 * P, else 0 (a different family never does). */
int ip_prefix_contains(const struct ip_prefix *p, int family, const uint8_t *addr);

/* Returns 1 when P has no bits set after its length (a network, fit for a route),
 * else 0. */
int ip_prefix_is_network(const struct ip_prefix *p);

/* Returns P with the bits after its length cleared (the network it names). */
struct ip_prefix ip_prefix_network(const struct ip_prefix *p);

#endif
