#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "core/ip_prefix.h"
#include "proto/tunnel_frame.h"

static struct ip_prefix prefix(const char *text)
{
    struct ip_prefix p;
    const char *reason = NULL;
    if (ip_prefix_parse(text, &p, &reason) != 0)
        fail_msg("'%s': %s", text, reason);
    return p;
}

static struct tunnel_frame_config sample_config(void)
{
    struct tunnel_frame_config c = { .mtu = 1400, .keepalive_s = 25, .address_count = 2,
                               .route_count = 3 };
    c.addresses[0] = prefix("10.8.0.2/24");
    c.addresses[1] = prefix("fd00:8::2/64");
    c.routes[0] = prefix("10.20.0.0/16");
    c.routes[1] = prefix("0.0.0.0/0");
    c.routes[2] = prefix("fd00:20::/48");
    return c;
}

/* A batch as a sender builds it: config, packets of several sizes, keepalives. */
static size_t sample_batch(unsigned char *buf, size_t cap)
{
    struct tunnel_frame_writer w;
    unsigned char packet[1400];
    struct tunnel_frame_config c = sample_config();

    for (size_t i = 0; i < sizeof(packet); i++)
        packet[i] = (unsigned char)(i * 7 + 1);
    tunnel_frame_writer_init(&w, buf, cap);
    assert_int_equal(tunnel_frame_put_config(&w, &c), 1);
    assert_int_equal(tunnel_frame_put_packet(&w, packet, 1), 1);
    assert_int_equal(tunnel_frame_put_packet(&w, packet, 60), 1);
    assert_int_equal(tunnel_frame_put_keepalive(&w, 0, 0x0102030405060708ull), 1);
    assert_int_equal(tunnel_frame_put_packet(&w, packet, 1400), 1);
    assert_int_equal(tunnel_frame_put_keepalive(&w, 1, UINT64_MAX), 1);
    assert_int_equal(tunnel_frame_put_packet(&w, packet, 300), 1);
    return w.len;
}

struct seen {
    int count;
    enum tunnel_frame_type type[16];
    size_t len[16];
    uint64_t keepalive[16];
    unsigned sum[16];
};

static void record(struct seen *s, const struct tunnel_frame *f)
{
    assert_true(s->count < 16);
    s->type[s->count] = f->type;
    s->len[s->count] = f->len;
    s->keepalive[s->count] = f->keepalive;
    unsigned sum = 0;
    for (size_t i = 0; i < f->len; i++)
        sum = sum * 31 + f->payload[i];
    s->sum[s->count] = sum;
    s->count++;
}

/* Feeds DATA to R in pieces cut at CUTS (ascending, NCUTS of them). */
static enum tunnel_frame_status feed(struct tunnel_frame_reader *r, const unsigned char *data,
                                     size_t len, const size_t *cuts, size_t ncuts,
                                     struct seen *s)
{
    size_t start = 0;
    for (size_t piece = 0; piece <= ncuts; piece++) {
        size_t end = piece < ncuts && cuts != NULL ? cuts[piece] : len;
        size_t at = start;
        while (at < end) {
            struct tunnel_frame f;
            size_t used = 0;
            enum tunnel_frame_status st = tunnel_frame_read(r, data + at, end - at, &used, &f);
            assert_true(used <= end - at);
            at += used;
            if (st == TUNNEL_FRAME_NEED_MORE) {
                assert_int_equal(at, end);
                break;
            }
            if (st != TUNNEL_FRAME_OK)
                return st;
            record(s, &f);
        }
        start = end;
    }
    return TUNNEL_FRAME_OK;
}

static void assert_same(const struct seen *a, const struct seen *b)
{
    assert_int_equal(a->count, b->count);
    for (int i = 0; i < a->count; i++) {
        assert_int_equal(a->type[i], b->type[i]);
        assert_int_equal(a->len[i], b->len[i]);
        assert_true(a->keepalive[i] == b->keepalive[i]);
        assert_int_equal(a->sum[i], b->sum[i]);
    }
}

static void test_batch_round_trip(void **state)
{
    (void)state;
    unsigned char buf[TUNNEL_BATCH_MAX];
    size_t len = sample_batch(buf, sizeof(buf));
    struct tunnel_frame_reader r;
    struct seen s = { 0 };

    tunnel_frame_reader_init(&r, TUNNEL_FROM_SERVER, 1400);
    assert_int_equal(feed(&r, buf, len, NULL, 0, &s), TUNNEL_FRAME_OK);
    assert_int_equal(s.count, 7);
    assert_int_equal(s.type[0], TUNNEL_FRAME_CONFIG);
    assert_int_equal(s.type[1], TUNNEL_FRAME_PACKET);
    assert_int_equal(s.len[1], 1);
    assert_int_equal(s.len[2], 60);
    assert_int_equal(s.type[3], TUNNEL_FRAME_KEEPALIVE);
    assert_true(s.keepalive[3] == 0x0102030405060708ull);
    assert_int_equal(s.len[4], 1400);
    assert_int_equal(s.type[5], TUNNEL_FRAME_KEEPALIVE_REPLY);
    assert_true(s.keepalive[5] == UINT64_MAX);
    assert_int_equal(s.len[6], 300);

    /* The config decodes to what was sent. */
    struct tunnel_frame_config out, want = sample_config();
    const char *reason = NULL;
    assert_int_equal(tunnel_frame_config_decode(buf + TUNNEL_FRAME_HEADER_LEN,
                                                ((size_t)buf[1] << 8) | buf[2], &out, &reason),
                     TUNNEL_FRAME_OK);
    assert_int_equal(out.mtu, 1400);
    assert_int_equal(out.keepalive_s, 25);
    assert_int_equal(out.address_count, 2);
    assert_int_equal(out.route_count, 3);
    char got[IP_PREFIX_TEXT_MAX], expected[IP_PREFIX_TEXT_MAX];
    for (size_t i = 0; i < 2; i++)
        assert_string_equal(ip_prefix_format(&out.addresses[i], got, sizeof(got)),
                            ip_prefix_format(&want.addresses[i], expected, sizeof(expected)));
    for (size_t i = 0; i < 3; i++)
        assert_string_equal(ip_prefix_format(&out.routes[i], got, sizeof(got)),
                            ip_prefix_format(&want.routes[i], expected, sizeof(expected)));
}

/* Every way of cutting the stream in two, and in three around each frame boundary, and
 * one byte at a time: the same frames come out. */
static void test_split_anywhere(void **state)
{
    (void)state;
    unsigned char buf[TUNNEL_BATCH_MAX];
    size_t len = sample_batch(buf, sizeof(buf));
    struct tunnel_frame_reader r;
    struct seen whole = { 0 };

    tunnel_frame_reader_init(&r, TUNNEL_FROM_SERVER, 1400);
    assert_int_equal(feed(&r, buf, len, NULL, 0, &whole), TUNNEL_FRAME_OK);
    for (size_t cut = 0; cut <= len; cut++) {
        struct seen s = { 0 };
        tunnel_frame_reader_init(&r, TUNNEL_FROM_SERVER, 1400);
        assert_int_equal(feed(&r, buf, len, &cut, 1, &s), TUNNEL_FRAME_OK);
        assert_same(&whole, &s);
        for (size_t second = cut; second <= len && second < cut + 5; second++) {
            size_t cuts[2] = { cut, second };
            struct seen s2 = { 0 };
            tunnel_frame_reader_init(&r, TUNNEL_FROM_SERVER, 1400);
            assert_int_equal(feed(&r, buf, len, cuts, 2, &s2), TUNNEL_FRAME_OK);
            assert_same(&whole, &s2);
        }
    }
    static size_t every[TUNNEL_BATCH_MAX];
    for (size_t i = 0; i < len - 1; i++)
        every[i] = i + 1;
    struct seen bytewise = { 0 };
    tunnel_frame_reader_init(&r, TUNNEL_FROM_SERVER, 1400);
    assert_int_equal(feed(&r, buf, len, every, len - 1, &bytewise), TUNNEL_FRAME_OK);
    assert_same(&whole, &bytewise);
}

static enum tunnel_frame_status read_all(enum tunnel_frame_sender from, unsigned mtu,
                                         const unsigned char *data, size_t len, int *frames,
                                         uint64_t *skipped)
{
    struct tunnel_frame_reader r;
    struct seen s = { 0 };
    tunnel_frame_reader_init(&r, from, mtu);
    enum tunnel_frame_status st = feed(&r, data, len, NULL, 0, &s);
    *frames = s.count;
    if (skipped != NULL)
        *skipped = r.skipped;
    return st;
}

static void test_hostile_lengths(void **state)
{
    (void)state;
    int n;
    static const unsigned char empty_packet[] = { 0x01, 0x00, 0x00 };
    assert_int_equal(read_all(TUNNEL_FROM_CLIENT, 1400, empty_packet, 3, &n, NULL),
                     TUNNEL_FRAME_BAD_LENGTH);
    /* Above the MTU: refused from the header alone, before any payload. */
    static const unsigned char big_packet[] = { 0x01, 0x05, 0x79 };   /* 1401 */
    assert_int_equal(read_all(TUNNEL_FROM_CLIENT, 1400, big_packet, 3, &n, NULL),
                     TUNNEL_FRAME_BAD_LENGTH);
    static const unsigned char huge_packet[] = { 0x01, 0xff, 0xff };
    assert_int_equal(read_all(TUNNEL_FROM_CLIENT, TUNNEL_MTU_MAX, huge_packet, 3, &n, NULL),
                     TUNNEL_FRAME_BAD_LENGTH);
    static const unsigned char short_keepalive[] = { 0x11, 0x00, 0x07, 1, 2, 3, 4, 5, 6, 7 };
    assert_int_equal(read_all(TUNNEL_FROM_CLIENT, 1400, short_keepalive,
                              sizeof(short_keepalive), &n, NULL),
                     TUNNEL_FRAME_BAD_LENGTH);
    static const unsigned char long_reply[] = { 0x12, 0x00, 0x09 };
    assert_int_equal(read_all(TUNNEL_FROM_SERVER, 1400, long_reply, 3, &n, NULL),
                     TUNNEL_FRAME_BAD_LENGTH);
    static const unsigned char big_config[] = { 0x10, 0x10, 0x00 };
    assert_int_equal(read_all(TUNNEL_FROM_SERVER, 1400, big_config, 3, &n, NULL),
                     TUNNEL_FRAME_BAD_LENGTH);
    static const unsigned char big_optional[] = { 0x90, 0x08, 0x01 };
    assert_int_equal(read_all(TUNNEL_FROM_SERVER, 1400, big_optional, 3, &n, NULL),
                     TUNNEL_FRAME_BAD_LENGTH);
    /* The MTU given to the reader is kept within bounds. */
    static const unsigned char packet_600[3 + 600] = { 0x01, 0x02, 0x58 };
    assert_int_equal(read_all(TUNNEL_FROM_CLIENT, 100, packet_600, sizeof(packet_600), &n, NULL),
                     TUNNEL_FRAME_BAD_LENGTH);
    static const unsigned char packet_576[3 + 576] = { 0x01, 0x02, 0x40 };
    assert_int_equal(read_all(TUNNEL_FROM_CLIENT, 100, packet_576, sizeof(packet_576), &n, NULL),
                     TUNNEL_FRAME_OK);
    assert_int_equal(n, 1);
}

static void test_types(void **state)
{
    (void)state;
    int n;
    uint64_t skipped;
    /* A client never sends a configuration. */
    unsigned char config[64];
    struct tunnel_frame_writer w;
    struct tunnel_frame_config c = sample_config();
    tunnel_frame_writer_init(&w, config, sizeof(config));
    c.route_count = 0;
    assert_int_equal(tunnel_frame_put_config(&w, &c), 1);
    assert_int_equal(read_all(TUNNEL_FROM_CLIENT, 1400, config, w.len, &n, NULL),
                     TUNNEL_FRAME_BAD_TYPE);
    assert_int_equal(read_all(TUNNEL_FROM_SERVER, 1400, config, w.len, &n, NULL),
                     TUNNEL_FRAME_OK);
    assert_int_equal(n, 1);

    /* Unknown below 0x80: fatal at its first byte. */
    static const unsigned char unknown[] = { 0x02 };
    assert_int_equal(read_all(TUNNEL_FROM_SERVER, 1400, unknown, 1, &n, NULL),
                     TUNNEL_FRAME_BAD_TYPE);
    static const unsigned char zero[] = { 0x00, 0x00, 0x00 };
    assert_int_equal(read_all(TUNNEL_FROM_SERVER, 1400, zero, 3, &n, NULL),
                     TUNNEL_FRAME_BAD_TYPE);

    /* Optional ones are skipped and counted, empty or not, between packets. */
    static const unsigned char optional[] = { 0x01, 0x00, 0x01, 0x45,
                                              0x81, 0x00, 0x00,
                                              0xfe, 0x00, 0x03, 'a', 'b', 'c',
                                              0x01, 0x00, 0x01, 0x60 };
    assert_int_equal(read_all(TUNNEL_FROM_CLIENT, 1400, optional, sizeof(optional), &n,
                              &skipped),
                     TUNNEL_FRAME_OK);
    assert_int_equal(n, 2);
    assert_int_equal(skipped, 2);
}

/* REFUSED: the hub's reason, read by a client; from a client it is one more unknown
 * optional frame, skipped; empty or too long from the hub it is fatal. */
static void test_refused(void **state)
{
    (void)state;
    int n;
    uint64_t skipped;
    unsigned char buf[TUNNEL_FRAME_HEADER_LEN + TUNNEL_REFUSED_MAX + 8];
    struct tunnel_frame_writer w;
    tunnel_frame_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(tunnel_frame_put_refused(&w, ""), -1);
    assert_int_equal(tunnel_frame_put_refused(&w, "the pool is full"), 1);
    assert_int_equal(w.len, TUNNEL_FRAME_HEADER_LEN + 16);
    assert_int_equal(buf[0], TUNNEL_FRAME_REFUSED);

    struct tunnel_frame_reader r;
    struct tunnel_frame f;
    size_t used;
    tunnel_frame_reader_init(&r, TUNNEL_FROM_SERVER, 1400);
    assert_int_equal(tunnel_frame_read(&r, buf, w.len, &used, &f), TUNNEL_FRAME_OK);
    assert_int_equal(used, w.len);
    assert_int_equal(f.type, TUNNEL_FRAME_REFUSED);
    assert_int_equal(f.len, 16);
    assert_memory_equal(f.payload, "the pool is full", 16);
    assert_int_equal(r.skipped, 0);

    assert_int_equal(read_all(TUNNEL_FROM_CLIENT, 1400, buf, w.len, &n, &skipped),
                     TUNNEL_FRAME_OK);
    assert_int_equal(n, 0);
    assert_int_equal(skipped, 1);

    static const unsigned char empty[] = { TUNNEL_FRAME_REFUSED, 0x00, 0x00 };
    assert_int_equal(read_all(TUNNEL_FROM_SERVER, 1400, empty, 3, &n, NULL),
                     TUNNEL_FRAME_BAD_LENGTH);
    static const unsigned char long_one[] = { TUNNEL_FRAME_REFUSED, 0x02, 0x01 };   /* 513 */
    assert_int_equal(read_all(TUNNEL_FROM_SERVER, 1400, long_one, 3, &n, NULL),
                     TUNNEL_FRAME_BAD_LENGTH);

    /* A longer reason is cut to TUNNEL_REFUSED_MAX bytes. */
    char reason[TUNNEL_REFUSED_MAX + 40];
    memset(reason, 'x', sizeof(reason) - 1);
    reason[sizeof(reason) - 1] = '\0';
    tunnel_frame_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(tunnel_frame_put_refused(&w, reason), 1);
    assert_int_equal(w.len, TUNNEL_FRAME_HEADER_LEN + TUNNEL_REFUSED_MAX);
    tunnel_frame_writer_init(&w, buf, TUNNEL_FRAME_HEADER_LEN + 3);
    assert_int_equal(tunnel_frame_put_refused(&w, "four"), 0);
}

static void test_errors_are_sticky(void **state)
{
    (void)state;
    struct tunnel_frame_reader r;
    struct tunnel_frame f;
    size_t used = 99;
    static const unsigned char good_then_bad[] = { 0x01, 0x00, 0x01, 0x45, 0x33 };
    static const unsigned char good[] = { 0x01, 0x00, 0x01, 0x45 };

    tunnel_frame_reader_init(&r, TUNNEL_FROM_CLIENT, 1400);
    assert_int_equal(tunnel_frame_read(&r, good_then_bad, sizeof(good_then_bad), &used, &f),
                     TUNNEL_FRAME_OK);
    assert_int_equal(used, 4);
    assert_int_equal(f.len, 1);
    assert_int_equal(f.payload[0], 0x45);
    assert_int_equal(tunnel_frame_read(&r, good_then_bad + 4, 1, &used, &f),
                     TUNNEL_FRAME_BAD_TYPE);
    assert_int_equal(used, 0);
    assert_int_equal(tunnel_frame_read(&r, good, sizeof(good), &used, &f),
                     TUNNEL_FRAME_BAD_TYPE);
    assert_int_equal(used, 0);
    assert_string_equal(tunnel_frame_status_text(TUNNEL_FRAME_BAD_TYPE),
                        "unexpected frame type");
}

static enum tunnel_frame_status decode(const unsigned char *payload, size_t len,
                                       const char **reason)
{
    struct tunnel_frame_config out;
    return tunnel_frame_config_decode(payload, len, &out, reason);
}

static void test_config_rejects(void **state)
{
    (void)state;
    const char *reason = NULL;
    /* version 1, MTU 1400, keepalive 25, 1 address, 0 routes, 10.8.0.2/24 */
    unsigned char ok[] = { 1, 0x05, 0x78, 0, 25, 1, 0, 4, 10, 8, 0, 2, 24 };
    unsigned char p[sizeof(ok) + 1];

    assert_int_equal(decode(ok, sizeof(ok), &reason), TUNNEL_FRAME_OK);
    assert_string_equal(reason, "valid");
#define REJECTS(index, value, len, why)                                         \
    do {                                                                        \
        memcpy(p, ok, sizeof(ok));                                              \
        p[sizeof(ok)] = 0;                                                      \
        p[(index)] = (value);                                                   \
        assert_int_equal(decode(p, (len), &reason), TUNNEL_FRAME_BAD_PAYLOAD);  \
        assert_string_equal(reason, (why));                                     \
    } while (0)
/* Only LEN wrong: the payload as it is, one byte more (0) or fewer. */
#define REJECTS_LEN(len, why)                                                   \
    do {                                                                        \
        memcpy(p, ok, sizeof(ok));                                              \
        p[sizeof(ok)] = 0;                                                      \
        assert_int_equal(decode(p, (len), &reason), TUNNEL_FRAME_BAD_PAYLOAD);  \
        assert_string_equal(reason, (why));                                     \
    } while (0)
    REJECTS(0, 2, sizeof(ok), "unknown version");
    REJECTS_LEN(sizeof(ok) + 1, "bytes after the last entry");
    REJECTS_LEN(sizeof(ok) - 1, "bad entry");
    REJECTS_LEN(6, "truncated");
    REJECTS(1, 0x00, sizeof(ok), "MTU out of range");        /* 120 */
    REJECTS(1, 0x24, sizeof(ok), "MTU out of range");        /* 9336 */
    REJECTS(4, 0, sizeof(ok), "keepalive interval out of range");
    REJECTS(3, 0x0f, sizeof(ok), "keepalive interval out of range");
    REJECTS(5, 0, TUNNEL_CONFIG_FIXED_LEN, "needs one address per family, one or two");
    REJECTS(5, 3, sizeof(ok), "too many entries");
    REJECTS(6, 65, sizeof(ok), "too many entries");
    REJECTS(6, 1, sizeof(ok), "bad entry");
    REJECTS(7, 5, sizeof(ok), "bad entry");
    REJECTS(12, 33, sizeof(ok), "bad address");
    REJECTS(12, 0, sizeof(ok), "bad address");
#undef REJECTS
#undef REJECTS_LEN

    /* Two addresses of one family; an IPv6 address with a small MTU; a route with host bits. */
    struct tunnel_frame_config c = sample_config();
    unsigned char buf[TUNNEL_FRAME_HEADER_LEN + TUNNEL_CONFIG_MAX_PAYLOAD];
    struct tunnel_frame_writer w;
    tunnel_frame_writer_init(&w, buf, sizeof(buf));
    c.addresses[1] = prefix("10.9.0.2/24");
    assert_int_equal(tunnel_frame_put_config(&w, &c), -1);
    assert_int_equal(tunnel_frame_config_check(&c, &reason), -1);
    assert_string_equal(reason, "two addresses of one family");
    c = sample_config();
    c.mtu = 1200;
    assert_int_equal(tunnel_frame_config_check(&c, &reason), -1);
    assert_string_equal(reason, "MTU below 1280 with an IPv6 address");
    c.address_count = 1;
    assert_int_equal(tunnel_frame_config_check(&c, &reason), 0);
    c = sample_config();
    c.routes[1] = prefix("10.20.0.1/16");
    assert_int_equal(tunnel_frame_config_check(&c, &reason), -1);
    assert_string_equal(reason, "a route is not a network");
    assert_int_equal(w.len, 0);

    /* The largest configuration fits and decodes (its IPv4 address is 12 bytes short of
     * an IPv6 one). */
    c = sample_config();
    c.route_count = TUNNEL_CONFIG_MAX_ROUTES;
    for (size_t i = 0; i < c.route_count; i++) {
        char text[64];
        snprintf(text, sizeof(text), "fd00:%zx::/32", i);
        c.routes[i] = prefix(text);
    }
    assert_int_equal(tunnel_frame_put_config(&w, &c), 1);
    assert_int_equal(w.len, TUNNEL_FRAME_HEADER_LEN + TUNNEL_CONFIG_MAX_PAYLOAD - 12);
    struct tunnel_frame_config out;
    assert_int_equal(tunnel_frame_config_decode(buf + 3, w.len - 3, &out, NULL), TUNNEL_FRAME_OK);
    assert_int_equal(out.route_count, TUNNEL_CONFIG_MAX_ROUTES);
    c.route_count++;
    assert_int_equal(tunnel_frame_config_check(&c, &reason), -1);
}

static void test_writer_limits(void **state)
{
    (void)state;
    unsigned char buf[20], packet[TUNNEL_MTU_MAX + 1] = { 0 };
    struct tunnel_frame_writer w;

    tunnel_frame_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(tunnel_frame_put_packet(&w, packet, 0), -1);
    assert_int_equal(tunnel_frame_put_packet(&w, packet, TUNNEL_MTU_MAX + 1), -1);
    assert_int_equal(tunnel_frame_put_packet(&w, packet, 10), 1);
    assert_int_equal(w.len, 13);
    /* No room: nothing written, the batch is what it was. */
    assert_int_equal(tunnel_frame_put_packet(&w, packet, 5), 0);
    assert_int_equal(tunnel_frame_put_keepalive(&w, 0, 1), 0);
    assert_int_equal(w.len, 13);
    assert_int_equal(tunnel_frame_put_packet(&w, packet, 4), 1);
    assert_int_equal(w.len, 20);
    tunnel_frame_writer_init(&w, buf, sizeof(buf));
    assert_int_equal(tunnel_frame_put_keepalive(&w, 1, 0xa1b2c3d4e5f60718ull), 1);
    static const unsigned char expected[] = { 0x12, 0, 8, 0xa1, 0xb2, 0xc3, 0xd4,
                                              0xe5, 0xf6, 0x07, 0x18 };
    assert_memory_equal(buf, expected, sizeof(expected));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_round_trip),
        cmocka_unit_test(test_split_anywhere),
        cmocka_unit_test(test_hostile_lengths),
        cmocka_unit_test(test_types),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_errors_are_sticky),
        cmocka_unit_test(test_config_rejects),
        cmocka_unit_test(test_writer_limits),
    };
    return cmocka_run_group_tests_name("tunnel_frame", tests, NULL, NULL);
}
