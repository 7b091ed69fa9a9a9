/* fuzz_ip_packet — libFuzzer target for what a network tunnel reads in each packet a
 * client sends: ip_packet_parse, ip_packet_source_allowed and mss_clamp.
 *
 * The first byte picks the MTU; the rest is the packet. Beyond "does not crash" it
 * checks what the modules promise: the addresses and the transport header a parse
 * points at lie inside the packet; a /0 of the packet's family allows any source and
 * the other family's none; a clamp changes nothing but the MSS value and the TCP
 * checksum, keeps the checksum verifying if it did, leaves a packet that parses the
 * same, and a second clamp finds nothing to do.
 *
 *   make fuzz FUZZ_RUN=ip_packet
 * tests/unit/test_fuzz_corpus.c replays the corpus in `make check` without clang. */
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz_check.h"
#include "core/ip_prefix.h"
#include "packet/ip_packet.h"
#include "packet/mss_clamp.h"

static int tcp_checksum_ok(const uint8_t *pkt, const struct ip_packet *p)
{
    size_t addr_len = p->family == AF_INET ? 4 : 16;
    size_t seg_len = p->len - p->l4_offset;
    const uint8_t *seg = pkt + p->l4_offset;
    uint32_t sum = IPPROTO_TCP + (uint32_t)seg_len;
    for (size_t i = 0; i < addr_len; i += 2)
        sum += (((uint32_t)p->src[i] << 8) | p->src[i + 1]) +
               (((uint32_t)p->dst[i] << 8) | p->dst[i + 1]);
    for (size_t i = 0; i < seg_len; i += 2)
        sum += ((uint32_t)seg[i] << 8) | (i + 1 < seg_len ? seg[i + 1] : 0);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return sum == 0xffff;
}

static void check_sources(const struct ip_packet *p)
{
    struct ip_prefix all4 = { .family = AF_INET }, all6 = { .family = AF_INET6 };
    struct ip_prefix own = { .family = p->family,
                             .len = (uint8_t)ip_prefix_max_len(p->family) };
    memcpy(own.addr, p->src, ip_prefix_addr_len(p->family));
    CHECK(ip_packet_source_allowed(p, p->family == AF_INET ? &all4 : &all6, 1) == 1);
    CHECK(ip_packet_source_allowed(p, p->family == AF_INET ? &all6 : &all4, 1) == 0);
    CHECK(ip_packet_source_allowed(p, &own, 1) == 1);
    own.addr[ip_prefix_addr_len(p->family) - 1] ^= 1;
    CHECK(ip_packet_source_allowed(p, &own, 1) == 0);
    CHECK(ip_packet_source_allowed(p, NULL, 0) == 0);
}

static void check_clamp(const uint8_t *pkt, const struct ip_packet *p, unsigned mtu)
{
    uint8_t *copy = malloc(p->len);
    CHECK(copy != NULL);
    memcpy(copy, pkt, p->len);
    int tcp = p->protocol == IPPROTO_TCP && p->l4_offset != 0 && p->len - p->l4_offset >= 20;
    int verified = tcp && tcp_checksum_ok(pkt, p);
    int changed = mss_clamp(copy, p, mtu);
    if (!changed) {
        CHECK(memcmp(copy, pkt, p->len) == 0);
        free(copy);
        return;
    }
    CHECK(tcp);
    size_t differ = 0, first = p->len, last = 0;
    for (size_t i = 0; i < p->len; i++) {
        if (copy[i] == pkt[i])
            continue;
        differ++;
        if (i != p->l4_offset + 16 && i != p->l4_offset + 17) {
            first = i < first ? i : first;
            last = i;
        }
    }
    CHECK(differ <= 4);
    CHECK(last >= first && last - first <= 1);
    CHECK(first > p->l4_offset + 20 && last < p->l4_offset + (size_t)(pkt[p->l4_offset + 12] >> 4) * 4);
    struct ip_packet again;
    CHECK(ip_packet_parse(copy, p->len, &again) == IP_PACKET_OK);
    CHECK(again.l4_offset == p->l4_offset && again.protocol == p->protocol);
    if (verified)
        CHECK(tcp_checksum_ok(copy, &again));
    CHECK(mss_clamp(copy, &again, mtu) == 0);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mtu = 576 + (unsigned)data[0] * 34u;
    const uint8_t *pkt = data + 1;
    size_t len = size - 1;
    struct ip_packet p;
    enum ip_packet_status st = ip_packet_parse(pkt, len, &p);
    CHECK(ip_packet_status_text(st) != NULL);
    if (st != IP_PACKET_OK)
        return 0;
    size_t addr_len = ip_prefix_addr_len(p.family);
    CHECK(addr_len != 0 && p.len == len);
    CHECK(p.src >= pkt && p.src + addr_len <= pkt + len);
    CHECK(p.dst >= pkt && p.dst + addr_len <= pkt + len);
    CHECK(p.l4_offset <= len);
    CHECK((pkt[0] >> 4) == (p.family == AF_INET ? 4 : 6));
    check_sources(&p);
    check_clamp(pkt, &p, mtu);
    return 0;
}
