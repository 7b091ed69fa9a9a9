#include "packet/ip_packet.h"

#include <netinet/in.h>
#include <sys/socket.h>

#define IPV4_MIN_HEADER 20
#define IPV6_HEADER 40

static unsigned get16(const uint8_t *p)
{
    return ((unsigned)p[0] << 8) | p[1];
}

static int ipv4_checksum_ok(const uint8_t *header, size_t len)
{
    uint32_t sum = 0;
    for (size_t i = 0; i < len; i += 2)
        sum += get16(header + i);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return sum == 0xffff;
}

static enum ip_packet_status parse_ipv4(const uint8_t *pkt, size_t len, struct ip_packet *out)
{
    size_t header_len = (size_t)(pkt[0] & 0x0f) * 4;
    if (header_len < IPV4_MIN_HEADER || header_len > len)
        return IP_PACKET_BAD_HEADER;
    if (get16(pkt + 2) != len)
        return IP_PACKET_BAD_LENGTH;
    if (!ipv4_checksum_ok(pkt, header_len))
        return IP_PACKET_BAD_CHECKSUM;
    out->family = AF_INET;
    out->src = pkt + 12;
    out->dst = pkt + 16;
    out->protocol = pkt[9];
    /* A fragment after the first holds no transport header. */
    out->l4_offset = (get16(pkt + 6) & 0x1fff) == 0 ? header_len : 0;
    return IP_PACKET_OK;
}

static enum ip_packet_status parse_ipv6(const uint8_t *pkt, size_t len, struct ip_packet *out)
{
    if (IPV6_HEADER + (size_t)get16(pkt + 4) != len)
        return IP_PACKET_BAD_LENGTH;
    out->family = AF_INET6;
    out->src = pkt + 8;
    out->dst = pkt + 24;
    out->l4_offset = 0;

    uint8_t next = pkt[6];
    size_t at = IPV6_HEADER;
    for (int i = 0; i < IP_PACKET_MAX_EXTENSIONS; i++) {
        size_t ext_len;
        switch (next) {
        case IPPROTO_HOPOPTS:
        case IPPROTO_ROUTING:
        case IPPROTO_DSTOPTS:
            if (len - at < 8)
                return IP_PACKET_BAD_HEADER;
            ext_len = ((size_t)pkt[at + 1] + 1) * 8;
            break;
        case IPPROTO_FRAGMENT:
            if (len - at < 8)
                return IP_PACKET_BAD_HEADER;
            if ((get16(pkt + at + 2) & 0xfff8) != 0) {
                out->protocol = pkt[at];
                return IP_PACKET_OK;   /* a later fragment */
            }
            ext_len = 8;
            break;
        case IPPROTO_AH:
            if (len - at < 8)
                return IP_PACKET_BAD_HEADER;
            ext_len = ((size_t)pkt[at + 1] + 2) * 4;
            break;
        default:
            out->protocol = next;
            out->l4_offset = at;
            return IP_PACKET_OK;
        }
        if (ext_len > len - at)
            return IP_PACKET_BAD_HEADER;
        next = pkt[at];
        at += ext_len;
    }
    /* Longer chains are legal but rare: pass the packet, look no deeper. */
    out->protocol = next;
    return IP_PACKET_OK;
}

enum ip_packet_status ip_packet_parse(const uint8_t *pkt, size_t len, struct ip_packet *out)
{
    if (len < 1)
        return IP_PACKET_TOO_SHORT;
    out->len = len;
    switch (pkt[0] >> 4) {
    case 4:
        return len < IPV4_MIN_HEADER ? IP_PACKET_TOO_SHORT : parse_ipv4(pkt, len, out);
    case 6:
        return len < IPV6_HEADER ? IP_PACKET_TOO_SHORT : parse_ipv6(pkt, len, out);
    default:
        return IP_PACKET_BAD_VERSION;
    }
}

int ip_packet_source_allowed(const struct ip_packet *p, const struct ip_prefix *allowed,
                             size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ip_prefix_contains(&allowed[i], p->family, p->src))
            return 1;
    }
    return 0;
}

const char *ip_packet_status_text(enum ip_packet_status status)
{
    switch (status) {
    case IP_PACKET_OK:
        return "valid";
    case IP_PACKET_TOO_SHORT:
        return "shorter than an IP header";
    case IP_PACKET_BAD_VERSION:
        return "not IPv4 or IPv6";
    case IP_PACKET_BAD_HEADER:
        return "malformed IP header";
    case IP_PACKET_BAD_LENGTH:
        return "IP length differs from the packet's";
    case IP_PACKET_BAD_CHECKSUM:
        return "bad IPv4 header checksum";
    }
    return "unknown";
}
