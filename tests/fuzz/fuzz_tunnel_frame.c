/* fuzz_tunnel_frame — libFuzzer target for the network tunnel's frame reader
 * (tunnel_frame_read) and its configuration message (tunnel_frame_config_decode).
 *
 * The first two bytes pick the reader's MTU and where the stream is cut; the rest is
 * the stream, read as sent by a client and by a server. Beyond "does not crash" it
 * checks what the reader promises: it never takes more bytes than it was given, every
 * frame keeps within its type's bounds (a REFUSED only from a server), a stream cut in pieces gives the same frames
 * as the whole, a fatal status stays, and a configuration that decodes re-encodes to
 * exactly its bytes.
 *
 *   make fuzz FUZZ_RUN=tunnel_frame
 * tests/unit/test_fuzz_corpus.c replays the corpus in `make check` without clang. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "proto/tunnel_frame.h"

#define MAX_FRAMES 64

struct digest {
    int frames;
    enum tunnel_frame_status end;
    uint32_t sums[MAX_FRAMES];
};

static void check_config(const struct tunnel_frame *f)
{
    struct tunnel_frame_config config;
    const char *reason = NULL;
    enum tunnel_frame_status st = tunnel_frame_config_decode(f->payload, f->len, &config, &reason);
    CHECK(reason != NULL);
    if (st != TUNNEL_FRAME_OK) {
        CHECK(st == TUNNEL_FRAME_BAD_PAYLOAD);
        return;
    }
    CHECK(tunnel_frame_config_check(&config, &reason) == 0);
    unsigned char out[TUNNEL_FRAME_HEADER_LEN + TUNNEL_CONFIG_MAX_PAYLOAD];
    struct tunnel_frame_writer w;
    tunnel_frame_writer_init(&w, out, sizeof(out));
    CHECK(tunnel_frame_put_config(&w, &config) == 1);
    CHECK(w.len == TUNNEL_FRAME_HEADER_LEN + f->len);
    CHECK(memcmp(out + TUNNEL_FRAME_HEADER_LEN, f->payload, f->len) == 0);
}

static void check_frame(const struct tunnel_frame *f, unsigned mtu, enum tunnel_frame_sender from)
{
    switch (f->type) {
    case TUNNEL_FRAME_PACKET:
        CHECK(f->len >= 1 && f->len <= mtu);
        break;
    case TUNNEL_FRAME_KEEPALIVE:
    case TUNNEL_FRAME_KEEPALIVE_REPLY: {
        CHECK(f->len == TUNNEL_KEEPALIVE_LEN);
        uint64_t v = 0;
        for (size_t i = 0; i < TUNNEL_KEEPALIVE_LEN; i++)
            v = (v << 8) | f->payload[i];
        CHECK(v == f->keepalive);
        break;
    }
    case TUNNEL_FRAME_CONFIG:
        CHECK(from == TUNNEL_FROM_SERVER);
        check_config(f);
        break;
    case TUNNEL_FRAME_REFUSED:
        /* From a client it is an unknown optional frame: skipped, never returned. */
        CHECK(from == TUNNEL_FROM_SERVER);
        CHECK(f->len >= 1 && f->len <= TUNNEL_REFUSED_MAX);
        break;
    default:
        abort();
    }
}

/* Reads DATA in pieces of at most PIECE bytes (0: all at once) into *D. */
static void read_stream(const uint8_t *data, size_t size, enum tunnel_frame_sender from,
                        unsigned mtu, size_t piece, struct digest *d)
{
    static struct tunnel_frame_reader r;
    size_t at = 0;
    tunnel_frame_reader_init(&r, from, mtu);
    memset(d, 0, sizeof(*d));
    d->end = TUNNEL_FRAME_NEED_MORE;
    while (at < size) {
        size_t end = piece == 0 || size - at < piece ? size : at + piece;
        while (at < end) {
            struct tunnel_frame f;
            size_t used = 0;
            enum tunnel_frame_status st = tunnel_frame_read(&r, data + at, end - at, &used, &f);
            CHECK(used <= end - at);
            at += used;
            if (st == TUNNEL_FRAME_NEED_MORE) {
                CHECK(at == end);
                break;
            }
            if (st != TUNNEL_FRAME_OK) {
                CHECK(st == TUNNEL_FRAME_BAD_TYPE || st == TUNNEL_FRAME_BAD_LENGTH);
                CHECK(tunnel_frame_read(&r, data, size, &used, &f) == st && used == 0);
                d->end = st;
                return;
            }
            CHECK(f.payload != NULL);
            check_frame(&f, r.mtu, from);
            uint32_t sum = (uint32_t)f.type << 24 ^ (uint32_t)f.len;
            for (size_t i = 0; i < f.len; i++)
                sum = sum * 31u + f.payload[i];
            if (d->frames < MAX_FRAMES)
                d->sums[d->frames] = sum;
            d->frames++;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned mtu = TUNNEL_MTU_MIN + (unsigned)data[0] * 40u;
    size_t piece = data[1];
    data += 2;
    size -= 2;
    for (int from = TUNNEL_FROM_CLIENT; from <= TUNNEL_FROM_SERVER; from++) {
        struct digest whole, cut;
        read_stream(data, size, (enum tunnel_frame_sender)from, mtu, 0, &whole);
        read_stream(data, size, (enum tunnel_frame_sender)from, mtu, piece, &cut);
        CHECK(whole.frames == cut.frames && whole.end == cut.end);
        int n = whole.frames < MAX_FRAMES ? whole.frames : MAX_FRAMES;
        CHECK(memcmp(whole.sums, cut.sums, (size_t)n * sizeof(whole.sums[0])) == 0);
    }
    struct tunnel_frame_config config;
    tunnel_frame_config_decode(data, size, &config, NULL);
    return 0;
}

#ifdef FUZZ_REPLAY
/* For the replay in make check: streams of frames with headers that are mostly valid,
 * so the reader's deeper paths run too. X is the xorshift state. */
#define FUZZ_REPLAY_GENERATE generate_stream
static size_t generate_stream(uint64_t *x, uint8_t *buf, size_t cap)
{
    static const unsigned char types[] = { 0x01, 0x01, 0x01, 0x10, 0x11, 0x12, 0x80, 0xc3, 0x00, 0x7f };
    size_t len = 2;
    if (cap < 2)
        return 0;
    *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
    buf[0] = (unsigned char)(*x >> 8);
    buf[1] = (unsigned char)(*x >> 16);
    while (len + TUNNEL_FRAME_HEADER_LEN < cap) {
        *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
        unsigned char type = types[(*x >> 20) % sizeof(types)];
        size_t payload = type == 0x11 || type == 0x12 ? 8 : (size_t)((*x >> 8) % 1500);
        if (type == 0x10)
            payload = TUNNEL_CONFIG_FIXED_LEN + 6 * ((*x >> 30) % 3);
        if (*x % 50 == 0)
            payload = (size_t)(*x >> 40) % 0x10000;
        if (len + TUNNEL_FRAME_HEADER_LEN + payload > cap)
            break;
        buf[len] = type;
        buf[len + 1] = (unsigned char)(payload >> 8);
        buf[len + 2] = (unsigned char)payload;
        unsigned char *p = buf + len + TUNNEL_FRAME_HEADER_LEN;
        for (size_t i = 0; i < payload; i++) {
            *x ^= *x << 13, *x ^= *x >> 7, *x ^= *x << 17;
            p[i] = (unsigned char)(*x >> 24);
        }
        if (type == 0x10 && payload >= TUNNEL_CONFIG_FIXED_LEN) {
            /* version 1, MTU 1400, keepalive 25, then entries of 10.x.y.z/24 */
            static const unsigned char head[] = { 1, 0x05, 0x78, 0, 25 };
            memcpy(p, head, sizeof(head));
            size_t entries = (payload - TUNNEL_CONFIG_FIXED_LEN) / 6;
            p[5] = entries > 0 ? 1 : 0;
            p[6] = entries > 0 ? (unsigned char)(entries - 1) : 0;
            for (size_t e = 0; e < entries; e++) {
                unsigned char *entry = p + TUNNEL_CONFIG_FIXED_LEN + 6 * e;
                entry[0] = 4;
                entry[1] = 10;
                if (e > 0)
                    entry[4] = 0;   /* a route: no host bits */
                entry[5] = 24;
            }
        }
        len += TUNNEL_FRAME_HEADER_LEN + payload;
        if (*x % 7 == 0)
            break;
    }
    return len;
}
#endif
