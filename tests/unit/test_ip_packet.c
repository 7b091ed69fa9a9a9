/* Real packets (a Linux SYN's options, a SYN-ACK, a plain ACK, UDP, ICMPv6, IPv6 with
 * a hop-by-hop header and a later fragment) checked and clamped; every checksum after
 * a clamp is recomputed from scratch here, independently of the incremental update. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "core/ip_prefix.h"
#include "packet/ip_packet.h"
#include "packet/mss_clamp.h"

static const uint8_t syn_v4[] = {
    0x45, 0x00, 0x00, 0x3c, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x0a, 0x54,
    0x0a, 0x08, 0x00, 0x02, 0x0a, 0x14, 0x00, 0x05, 0xa8, 0xca, 0x01, 0xbb,
    0x5e, 0x1a, 0x2b, 0x3c, 0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa, 0xf0,
    0x2e, 0x77, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x04, 0x02, 0x08, 0x0a,
    0x00, 0x12, 0xd6, 0x87, 0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
};
static const uint8_t synack_v4[] = {
    0x45, 0x00, 0x00, 0x34, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x0a, 0x5c,
    0x0a, 0x14, 0x00, 0x05, 0x0a, 0x08, 0x00, 0x02, 0x01, 0xbb, 0xa8, 0xca,
    0x5e, 0x1a, 0x2b, 0x3c, 0x11, 0x22, 0x33, 0x44, 0x80, 0x12, 0xfa, 0xf0,
    0xe7, 0xab, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4, 0x01, 0x01, 0x04, 0x02,
    0x01, 0x03, 0x03, 0x07,
};
static const uint8_t ack_v4[] = {
    0x45, 0x00, 0x00, 0x34, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x06, 0x0a, 0x5c,
    0x0a, 0x08, 0x00, 0x02, 0x0a, 0x14, 0x00, 0x05, 0xa8, 0xca, 0x01, 0xbb,
    0x5e, 0x1a, 0x2b, 0x3c, 0x11, 0x22, 0x33, 0x44, 0x80, 0x10, 0xfa, 0xf0,
    0x18, 0xc4, 0x00, 0x00, 0x01, 0x01, 0x08, 0x0a, 0x00, 0x12, 0xd6, 0x87,
    0x00, 0x00, 0x00, 0x0a,
};
static const uint8_t udp_v4[] = {
    0x45, 0x00, 0x00, 0x21, 0x1c, 0x46, 0x40, 0x00, 0x40, 0x11, 0x21, 0xbe,
    0xc0, 0xa8, 0x32, 0x07, 0x0a, 0x14, 0x00, 0x05, 0xd4, 0x31, 0x00, 0x35,
    0x00, 0x11, 0xab, 0xcd, 0x68, 0x65, 0x6c, 0x6c, 0x6f,
};
static const uint8_t syn_v6_odd[] = {
    0x60, 0x00, 0x00, 0x00, 0x00, 0x1f, 0x06, 0x40, 0xfd, 0x00, 0x00, 0x08,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
    0xfd, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x05, 0xc3, 0x50, 0x00, 0x16, 0x5e, 0x1a, 0x2b, 0x3c,
    0x00, 0x00, 0x00, 0x00, 0x70, 0x02, 0xfa, 0xf0, 0xe3, 0x8d, 0x00, 0x00,
    0x01, 0x01, 0x01, 0x02, 0x04, 0x05, 0xa0, 0x00, 0x61, 0x62, 0x63,
};
static const uint8_t syn_v6_linux[] = {
    0x60, 0x00, 0x00, 0x00, 0x00, 0x28, 0x06, 0x40, 0xfd, 0x00, 0x00, 0x08,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
    0xfd, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x05, 0xc3, 0x50, 0x00, 0x16, 0x5e, 0x1a, 0x2b, 0x3c,
    0x00, 0x00, 0x00, 0x00, 0xa0, 0x02, 0xfa, 0xf0, 0x2f, 0x9c, 0x00, 0x00,
    0x02, 0x04, 0x05, 0xa0, 0x04, 0x02, 0x08, 0x0a, 0x00, 0x12, 0xd6, 0x87,
    0x00, 0x00, 0x00, 0x00, 0x01, 0x03, 0x03, 0x07,
};
static const uint8_t syn_v6_hbh[] = {
    0x60, 0x00, 0x00, 0x00, 0x00, 0x24, 0x00, 0x40, 0xfd, 0x00, 0x00, 0x08,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
    0xfd, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x05, 0x06, 0x00, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00,
    0xc3, 0x50, 0x00, 0x16, 0x5e, 0x1a, 0x2b, 0x3c, 0x00, 0x00, 0x00, 0x00,
    0x70, 0x02, 0xfa, 0xf0, 0x41, 0x55, 0x00, 0x00, 0x02, 0x04, 0x05, 0xa0,
    0x01, 0x01, 0x04, 0x02,
};
static const uint8_t frag_v6[] = {
    0x60, 0x00, 0x00, 0x00, 0x00, 0x18, 0x2c, 0x40, 0xfd, 0x00, 0x00, 0x08,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
    0xfd, 0x00, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x05, 0x06, 0x00, 0x01, 0x01, 0x00, 0x00, 0x12, 0x34,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x00,
};
static const uint8_t icmp_v6[] = {
    0x60, 0x00, 0x00, 0x00, 0x00, 0x0c, 0x3a, 0x40, 0xfd, 0x00, 0x00, 0x08,
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02,
    0xfd, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
    0x00, 0x00, 0x00, 0x01, 0x80, 0x00, 0xf0, 0x0d, 0x00, 0x01, 0x00, 0x01,
    0x70, 0x69, 0x6e, 0x67,
};

static uint32_t add_words(uint32_t sum, const uint8_t *p, size_t len)
{
    for (size_t i = 0; i + 1 < len; i += 2)
        sum += ((uint32_t)p[i] << 8) | p[i + 1];
    if (len % 2)
        sum += (uint32_t)p[len - 1] << 8;
    return sum;
}

/* 1 when the TCP checksum of the parsed packet verifies (pseudo header included). */
static int tcp_checksum_ok(const uint8_t *pkt, const struct ip_packet *p)
{
    size_t addr_len = p->family == AF_INET ? 4 : 16;
    size_t seg_len = p->len - p->l4_offset;
    uint32_t sum = 0;
    sum = add_words(sum, p->src, addr_len);
    sum = add_words(sum, p->dst, addr_len);
    sum += IPPROTO_TCP + (uint32_t)seg_len;
    sum = add_words(sum, pkt + p->l4_offset, seg_len);
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return sum == 0xffff;
}

static struct ip_packet parsed(const uint8_t *pkt, size_t len)
{
    struct ip_packet p;
    enum ip_packet_status st = ip_packet_parse(pkt, len, &p);
    if (st != IP_PACKET_OK)
        fail_msg("packet rejected: %s", ip_packet_status_text(st));
    return p;
}

static enum ip_packet_status status_of(const uint8_t *pkt, size_t len)
{
    struct ip_packet p;
    return ip_packet_parse(pkt, len, &p);
}

static unsigned mss_at(const uint8_t *pkt, size_t offset)
{
    return ((unsigned)pkt[offset] << 8) | pkt[offset + 1];
}

static void test_parse_real_packets(void **state)
{
    (void)state;
    struct ip_packet p = parsed(syn_v4, sizeof(syn_v4));
    char text[INET6_ADDRSTRLEN];
    assert_int_equal(p.family, AF_INET);
    assert_string_equal(inet_ntop(AF_INET, p.src, text, sizeof(text)), "10.8.0.2");
    assert_string_equal(inet_ntop(AF_INET, p.dst, text, sizeof(text)), "10.20.0.5");
    assert_int_equal(p.protocol, IPPROTO_TCP);
    assert_int_equal(p.l4_offset, 20);
    assert_true(tcp_checksum_ok(syn_v4, &p));

    p = parsed(udp_v4, sizeof(udp_v4));
    assert_int_equal(p.protocol, IPPROTO_UDP);

    p = parsed(syn_v6_linux, sizeof(syn_v6_linux));
    assert_int_equal(p.family, AF_INET6);
    assert_string_equal(inet_ntop(AF_INET6, p.src, text, sizeof(text)), "fd00:8::2");
    assert_string_equal(inet_ntop(AF_INET6, p.dst, text, sizeof(text)), "fd00:20::5");
    assert_int_equal(p.l4_offset, 40);
    assert_true(tcp_checksum_ok(syn_v6_linux, &p));

    p = parsed(syn_v6_hbh, sizeof(syn_v6_hbh));
    assert_int_equal(p.protocol, IPPROTO_TCP);
    assert_int_equal(p.l4_offset, 48);
    assert_true(tcp_checksum_ok(syn_v6_hbh, &p));

    p = parsed(frag_v6, sizeof(frag_v6));
    assert_int_equal(p.l4_offset, 0);
    assert_int_equal(p.protocol, IPPROTO_TCP);

    p = parsed(icmp_v6, sizeof(icmp_v6));
    assert_int_equal(p.protocol, IPPROTO_ICMPV6);
}

static void test_reject_malformed(void **state)
{
    (void)state;
    uint8_t pkt[128];

    assert_int_equal(status_of(syn_v4, 0), IP_PACKET_TOO_SHORT);
    assert_int_equal(status_of(syn_v4, 19), IP_PACKET_TOO_SHORT);
    assert_int_equal(status_of(syn_v6_linux, 39), IP_PACKET_TOO_SHORT);
    /* Cut short, or with a byte too many: the header's length is not the packet's. */
    assert_int_equal(status_of(syn_v4, sizeof(syn_v4) - 1), IP_PACKET_BAD_LENGTH);
    memcpy(pkt, syn_v4, sizeof(syn_v4));
    pkt[sizeof(syn_v4)] = 0;
    assert_int_equal(status_of(pkt, sizeof(syn_v4) + 1), IP_PACKET_BAD_LENGTH);
    assert_int_equal(status_of(syn_v6_linux, sizeof(syn_v6_linux) - 1), IP_PACKET_BAD_LENGTH);

    memcpy(pkt, syn_v4, sizeof(syn_v4));
    pkt[0] = 0x55;
    assert_int_equal(status_of(pkt, sizeof(syn_v4)), IP_PACKET_BAD_VERSION);
    pkt[0] = 0x44;   /* IHL 4: shorter than the fixed header */
    assert_int_equal(status_of(pkt, sizeof(syn_v4)), IP_PACKET_BAD_HEADER);
    pkt[0] = 0x4f;   /* IHL 15: 60 bytes, but the checksum covers only 20 */
    assert_int_equal(status_of(pkt, sizeof(syn_v4)), IP_PACKET_BAD_CHECKSUM);
    memcpy(pkt, syn_v4, sizeof(syn_v4));
    pkt[12] ^= 0x01;   /* a forged source breaks the header checksum */
    assert_int_equal(status_of(pkt, sizeof(syn_v4)), IP_PACKET_BAD_CHECKSUM);
    memcpy(pkt, syn_v4, 20);
    pkt[0] = 0x46;   /* options running past the end */
    pkt[2] = 0;
    pkt[3] = 20;
    assert_int_equal(status_of(pkt, 20), IP_PACKET_BAD_HEADER);
    assert_int_equal(status_of((const uint8_t *)"\x00", 1), IP_PACKET_BAD_VERSION);

    /* IPv6: an extension header running past the packet. */
    memcpy(pkt, syn_v6_hbh, sizeof(syn_v6_hbh));
    pkt[41] = 40;   /* hop-by-hop claims 328 bytes */
    assert_int_equal(status_of(pkt, sizeof(syn_v6_hbh)), IP_PACKET_BAD_HEADER);
    memcpy(pkt, syn_v6_hbh, 44);
    pkt[4] = 0;
    pkt[5] = 4;   /* payload 4: shorter than any extension header */
    assert_int_equal(status_of(pkt, 44), IP_PACKET_BAD_HEADER);
}

static struct ip_prefix prefix(const char *text)
{
    struct ip_prefix p;
    const char *reason = NULL;
    if (ip_prefix_parse(text, &p, &reason) != 0)
        fail_msg("'%s': %s", text, reason);
    return p;
}

static void test_source_check(void **state)
{
    (void)state;
    struct ip_prefix client[3] = { prefix("10.8.0.2/32"), prefix("192.168.50.0/24"),
                                   prefix("fd00:8::2/128") };
    struct ip_packet p = parsed(syn_v4, sizeof(syn_v4));
    assert_true(ip_packet_source_allowed(&p, client, 3));
    assert_false(ip_packet_source_allowed(&p, client + 1, 2));   /* 10.8.0.2 not behind it */
    p = parsed(udp_v4, sizeof(udp_v4));                         /* from 192.168.50.7 */
    assert_true(ip_packet_source_allowed(&p, client, 3));
    p = parsed(synack_v4, sizeof(synack_v4));                   /* from 10.20.0.5 */
    assert_false(ip_packet_source_allowed(&p, client, 3));
    p = parsed(syn_v6_linux, sizeof(syn_v6_linux));
    assert_true(ip_packet_source_allowed(&p, client, 3));
    assert_false(ip_packet_source_allowed(&p, client, 2));      /* IPv4 only */
    assert_false(ip_packet_source_allowed(&p, client, 0));
}

static void test_clamp_ipv4(void **state)
{
    (void)state;
    uint8_t pkt[sizeof(syn_v4)];
    memcpy(pkt, syn_v4, sizeof(pkt));
    struct ip_packet p = parsed(pkt, sizeof(pkt));

    assert_int_equal(mss_clamp_limit(AF_INET, 1400), 1360);
    assert_int_equal(mss_clamp(pkt, &p, 1500), 0);   /* 1460 fits 1500 */
    assert_memory_equal(pkt, syn_v4, sizeof(pkt));
    assert_int_equal(mss_clamp(pkt, &p, 1400), 1);
    assert_int_equal(mss_at(pkt, 42), 1360);
    assert_true(tcp_checksum_ok(pkt, &p));
    /* Only the MSS and the checksum changed; the IP header still verifies. */
    assert_memory_equal(pkt, syn_v4, 36);
    assert_memory_equal(pkt + 38, syn_v4 + 38, 4);
    assert_memory_equal(pkt + 44, syn_v4 + 44, sizeof(pkt) - 44);
    assert_int_equal(status_of(pkt, sizeof(pkt)), IP_PACKET_OK);
    assert_int_equal(mss_clamp(pkt, &p, 1400), 0);   /* idempotent */

    uint8_t reply[sizeof(synack_v4)];
    memcpy(reply, synack_v4, sizeof(reply));
    p = parsed(reply, sizeof(reply));
    assert_int_equal(mss_clamp(reply, &p, 576), 1);
    assert_int_equal(mss_at(reply, 42), 536);
    assert_true(tcp_checksum_ok(reply, &p));

    uint8_t ack[sizeof(ack_v4)];
    memcpy(ack, ack_v4, sizeof(ack));
    p = parsed(ack, sizeof(ack));
    assert_int_equal(mss_clamp(ack, &p, 576), 0);   /* no SYN */
    uint8_t udp[sizeof(udp_v4)];
    memcpy(udp, udp_v4, sizeof(udp));
    p = parsed(udp, sizeof(udp));
    assert_int_equal(mss_clamp(udp, &p, 576), 0);
    assert_memory_equal(udp, udp_v4, sizeof(udp));
}

static void test_clamp_ipv6(void **state)
{
    (void)state;
    uint8_t pkt[sizeof(syn_v6_linux)];
    memcpy(pkt, syn_v6_linux, sizeof(pkt));
    struct ip_packet p = parsed(pkt, sizeof(pkt));
    assert_int_equal(mss_clamp_limit(AF_INET6, 1280), 1220);
    assert_int_equal(mss_clamp(pkt, &p, 1500), 0);   /* 1440 fits 1500 */
    assert_int_equal(mss_clamp(pkt, &p, 1280), 1);
    assert_int_equal(mss_at(pkt, 62), 1220);
    assert_true(tcp_checksum_ok(pkt, &p));

    /* The MSS at an odd offset, straddling two checksum words, next to odd-sized data. */
    uint8_t odd[sizeof(syn_v6_odd)];
    memcpy(odd, syn_v6_odd, sizeof(odd));
    p = parsed(odd, sizeof(odd));
    assert_true(tcp_checksum_ok(odd, &p));
    assert_int_equal(mss_at(odd, 65), 0x05a0);
    for (unsigned mtu = 1280; mtu < 1500; mtu += 7) {
        memcpy(odd, syn_v6_odd, sizeof(odd));
        assert_int_equal(mss_clamp(odd, &p, mtu), 1);
        assert_int_equal(mss_at(odd, 65), mtu - 60);
        assert_true(tcp_checksum_ok(odd, &p));
    }

    /* Behind a hop-by-hop header; and not in a later fragment. */
    uint8_t hbh[sizeof(syn_v6_hbh)];
    memcpy(hbh, syn_v6_hbh, sizeof(hbh));
    p = parsed(hbh, sizeof(hbh));
    assert_int_equal(mss_clamp(hbh, &p, 1300), 1);
    assert_int_equal(mss_at(hbh, 70), 1240);
    assert_true(tcp_checksum_ok(hbh, &p));
    uint8_t frag[sizeof(frag_v6)];
    memcpy(frag, frag_v6, sizeof(frag));
    p = parsed(frag, sizeof(frag));
    assert_int_equal(mss_clamp(frag, &p, 1280), 0);
}

static void test_clamp_leaves_bad_options(void **state)
{
    (void)state;
    uint8_t pkt[sizeof(syn_v4)];
    struct ip_packet p;

    /* An option whose length runs past the header; an MSS option of the wrong size. */
    memcpy(pkt, syn_v4, sizeof(pkt));
    p = parsed(pkt, sizeof(pkt));
    pkt[41] = 30;
    assert_int_equal(mss_clamp(pkt, &p, 576), 0);
    pkt[41] = 0;
    assert_int_equal(mss_clamp(pkt, &p, 576), 0);
    pkt[41] = 3;
    assert_int_equal(mss_clamp(pkt, &p, 576), 0);
    /* A data offset past the segment. */
    memcpy(pkt, syn_v4, sizeof(pkt));
    pkt[32] = 0xf0;
    assert_int_equal(mss_clamp(pkt, &p, 576), 0);
    /* END before the MSS option: nothing after it counts. */
    memcpy(pkt, syn_v4, sizeof(pkt));
    pkt[40] = 0;
    assert_int_equal(mss_clamp(pkt, &p, 576), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_real_packets),
        cmocka_unit_test(test_reject_malformed),
        cmocka_unit_test(test_source_check),
        cmocka_unit_test(test_clamp_ipv4),
        cmocka_unit_test(test_clamp_ipv6),
        cmocka_unit_test(test_clamp_leaves_bad_options),
    };
    return cmocka_run_group_tests_name("ip_packet", tests, NULL, NULL);
}
