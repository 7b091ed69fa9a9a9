#include "core/ip_prefix.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

size_t ip_prefix_addr_len(int family)
{
    return family == AF_INET ? 4 : family == AF_INET6 ? 16 : 0;
}

unsigned ip_prefix_max_len(int family)
{
    return (unsigned)ip_prefix_addr_len(family) * 8;
}

int ip_prefix_parse(const char *text, struct ip_prefix *out, const char **reason)
{
    char host[INET6_ADDRSTRLEN];
    const char *slash = strchr(text, '/');
    size_t host_len = slash != NULL ? (size_t)(slash - text) : strlen(text);
    struct ip_prefix p = { 0 };

    if (host_len == 0 || host_len >= sizeof(host)) {
        *reason = "not an IP address";
        return -1;
    }
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    if (inet_pton(AF_INET, host, p.addr) == 1) {
        p.family = AF_INET;
    } else if (inet_pton(AF_INET6, host, p.addr) == 1) {
        p.family = AF_INET6;
    } else {
        *reason = "not an IP address";
        return -1;
    }
    unsigned max = ip_prefix_max_len(p.family);
    p.len = (uint8_t)max;
    if (slash != NULL) {
        const char *digits = slash + 1;
        char *end = NULL;
        /* strtoul would take a sign or spaces: only plain digits are a length. */
        if (*digits < '0' || *digits > '9' || strlen(digits) > 3) {
            *reason = "prefix length is not a number";
            return -1;
        }
        errno = 0;
        unsigned long len = strtoul(digits, &end, 10);
        if (errno != 0 || *end != '\0') {
            *reason = "prefix length is not a number";
            return -1;
        }
        if (len > max) {
            *reason = p.family == AF_INET ? "prefix length above 32" : "prefix length above 128";
            return -1;
        }
        p.len = (uint8_t)len;
    }
    *out = p;
    return 0;
}

char *ip_prefix_format(const struct ip_prefix *p, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN];
    if (len == 0)
        return buf;
    if (inet_ntop(p->family, p->addr, host, sizeof(host)) == NULL)
        snprintf(host, sizeof(host), "?");
    snprintf(buf, len, "%s/%u", host, (unsigned)p->len);
    return buf;
}

int ip_prefix_contains(const struct ip_prefix *p, int family, const uint8_t *addr)
{
    if (family != p->family || p->len > ip_prefix_max_len(family))
        return 0;
    unsigned whole = p->len / 8u, rest = p->len % 8u;
    if (memcmp(p->addr, addr, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xffu << (8u - rest));
    return (p->addr[whole] & mask) == (addr[whole] & mask);
}

struct ip_prefix ip_prefix_network(const struct ip_prefix *p)
{
    struct ip_prefix net = *p;
    size_t bytes = ip_prefix_addr_len(p->family);
    for (size_t i = 0; i < sizeof(net.addr); i++) {
        unsigned first_bit = (unsigned)i * 8u;
        if (i >= bytes || first_bit >= p->len)
            net.addr[i] = 0;
        else if (first_bit + 8u > p->len)
            net.addr[i] &= (uint8_t)(0xffu << (8u - (p->len - first_bit)));
    }
    return net;
}

int ip_prefix_is_network(const struct ip_prefix *p)
{
    struct ip_prefix net = ip_prefix_network(p);
    return memcmp(net.addr, p->addr, sizeof(net.addr)) == 0;
}
