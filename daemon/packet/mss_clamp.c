#include "packet/mss_clamp.h"

#include <netinet/in.h>
#include <sys/socket.h>

#define TCP_MIN_HEADER 20
#define TCP_FLAG_SYN 0x02
#define TCP_OPTION_END 0
#define TCP_OPTION_NOP 1
#define TCP_OPTION_MSS 2
#define TCP_OPTION_MSS_LEN 4

unsigned mss_clamp_limit(int family, unsigned mtu)
{
    unsigned headers = (family == AF_INET6 ? 40u : 20u) + TCP_MIN_HEADER;
    return mtu > headers ? mtu - headers : 0;
}

/* The 16-bit word of the segment (SEG, LEN bytes) at even offset AT, zero past its end
 * as the checksum pads it. */
static unsigned word_at(const uint8_t *seg, size_t len, size_t at)
{
    unsigned hi = at < len ? seg[at] : 0, lo = at + 1 < len ? seg[at + 1] : 0;
    return (hi << 8) | lo;
}

/* RFC 1624 eqn. 3: HC' = ~(~HC + ~m + m'), one's complement sums. */
static unsigned checksum_replace(unsigned checksum, unsigned old_word, unsigned new_word)
{
    uint32_t sum = (~checksum & 0xffffu) + (~old_word & 0xffffu) + new_word;
    while (sum >> 16)
        sum = (sum & 0xffff) + (sum >> 16);
    return ~sum & 0xffffu;
}

/* Writes MSS at offset AT of the segment and folds the change into its checksum. The
 * option may start at any offset, so the value may straddle two checksum words. */
static void write_mss(uint8_t *seg, size_t len, size_t at, unsigned mss)
{
    size_t first = at & ~(size_t)1, last = (at + 1) & ~(size_t)1;
    unsigned old_first = word_at(seg, len, first), old_last = word_at(seg, len, last);
    unsigned checksum = ((unsigned)seg[16] << 8) | seg[17];

    seg[at] = (uint8_t)(mss >> 8);
    seg[at + 1] = (uint8_t)(mss & 0xff);
    checksum = checksum_replace(checksum, old_first, word_at(seg, len, first));
    if (last != first)
        checksum = checksum_replace(checksum, old_last, word_at(seg, len, last));
    seg[16] = (uint8_t)(checksum >> 8);
    seg[17] = (uint8_t)(checksum & 0xff);
}

int mss_clamp(uint8_t *pkt, const struct ip_packet *p, unsigned mtu)
{
    if (p->protocol != IPPROTO_TCP || p->l4_offset == 0 || p->l4_offset > p->len ||
        p->len - p->l4_offset < TCP_MIN_HEADER)
        return 0;
    uint8_t *seg = pkt + p->l4_offset;
    size_t seg_len = p->len - p->l4_offset;
    size_t header_len = (size_t)(seg[12] >> 4) * 4;
    if ((seg[13] & TCP_FLAG_SYN) == 0 || header_len < TCP_MIN_HEADER || header_len > seg_len)
        return 0;
    unsigned limit = mss_clamp_limit(p->family, mtu);

    for (size_t at = TCP_MIN_HEADER; at < header_len;) {
        uint8_t kind = seg[at];
        if (kind == TCP_OPTION_END)
            break;
        if (kind == TCP_OPTION_NOP) {
            at++;
            continue;
        }
        if (header_len - at < 2 || seg[at + 1] < 2 || seg[at + 1] > header_len - at)
            return 0;
        if (kind == TCP_OPTION_MSS) {
            if (seg[at + 1] != TCP_OPTION_MSS_LEN)
                return 0;
            unsigned mss = ((unsigned)seg[at + 2] << 8) | seg[at + 3];
            if (mss <= limit)
                return 0;
            write_mss(seg, seg_len, at + 2, limit);
            return 1;
        }
        at += seg[at + 1];
    }
    return 0;
}
