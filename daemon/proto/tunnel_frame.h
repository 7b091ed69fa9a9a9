/* tunnel_frame — the byte stream inside a network (layer 3) tunnel's TLS session:
 * IP packets and control messages, both directions.
 *
 * Every frame is TYPE (1 byte), LENGTH (2 bytes, big-endian), then LENGTH bytes of
 * payload:
 *
 *   PACKET           0x01  both     one IP packet, 1..MTU bytes
 *   CONFIG           0x10  server   what the client brings up (below), first frame
 *   KEEPALIVE        0x11  both     8 opaque bytes the peer must echo
 *   KEEPALIVE_REPLY  0x12  both     the 8 bytes of the keepalive it answers
 *   REFUSED          0x80  server   why the hub will not serve this client (text,
 *                                   1..TUNNEL_REFUSED_MAX bytes), its last frame
 *                                   before it closes; optional, so a client that does
 *                                   not know it skips it (and one from a client is
 *                                   skipped as any unknown optional frame)
 *
 * CONFIG: version (1, = 1), MTU (2), keepalive interval in seconds (2), address count
 * (1, 1..2, at most one per family), route count (1, 0..TUNNEL_CONFIG_MAX_ROUTES),
 * then the addresses and the routes, each family (1: 4 or 6), address (4 or 16 bytes),
 * prefix length (1). Nothing may follow. A route is a network (no host bits set).
 *
 * Types from 0x80 up are optional: a receiver that does not know one skips it and
 * counts it; an unknown type below 0x80 ends the stream. Every length is checked
 * against its type before the payload is awaited: a PACKET of 0 bytes or above the
 * MTU, a keepalive of another size than 8, a CONFIG outside its bounds is fatal.
 *
 * Many frames go into one buffer (tunnel_frame_writer) so that one write, hence one TLS
 * record, carries many packets. The reader takes the stream as it comes, split
 * anywhere. Pure: no I/O, no allocation, so it can be fuzzed. */
#ifndef KTLSTUN_TUNNEL_FRAME_H
#define KTLSTUN_TUNNEL_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "core/ip_prefix.h"

#define TUNNEL_FRAME_HEADER_LEN 3
#define TUNNEL_MTU_MIN 576            /* IPv4's minimum datagram every host takes */
#define TUNNEL_MTU_MIN_IPV6 1280      /* RFC 8200: an IPv6 link carries at least this */
#define TUNNEL_MTU_MAX 9000
#define TUNNEL_CONFIG_VERSION 1
#define TUNNEL_CONFIG_MAX_ADDRESSES 2
#define TUNNEL_CONFIG_MAX_ROUTES 64
#define TUNNEL_CONFIG_FIXED_LEN 7
#define TUNNEL_CONFIG_ENTRY_MAX 18
#define TUNNEL_CONFIG_MAX_PAYLOAD \
    (TUNNEL_CONFIG_FIXED_LEN + \
     (TUNNEL_CONFIG_MAX_ADDRESSES + TUNNEL_CONFIG_MAX_ROUTES) * TUNNEL_CONFIG_ENTRY_MAX)
#define TUNNEL_KEEPALIVE_LEN 8
#define TUNNEL_KEEPALIVE_MAX_S 3600
#define TUNNEL_OPTIONAL_MAX_PAYLOAD 2048   /* an optional frame this end does not know */
#define TUNNEL_REFUSED_MAX 512            /* a REFUSED frame's reason */
#define TUNNEL_FRAME_MAX (TUNNEL_FRAME_HEADER_LEN + TUNNEL_MTU_MAX)
/* A batch that fills one TLS record: what a writer's buffer should hold. */
#define TUNNEL_BATCH_MAX 16384

enum tunnel_frame_type {
    TUNNEL_FRAME_PACKET = 0x01,
    TUNNEL_FRAME_CONFIG = 0x10,
    TUNNEL_FRAME_KEEPALIVE = 0x11,
    TUNNEL_FRAME_KEEPALIVE_REPLY = 0x12,
    TUNNEL_FRAME_REFUSED = 0x80,
};
#define TUNNEL_FRAME_OPTIONAL 0x80

enum tunnel_frame_sender { TUNNEL_FROM_CLIENT, TUNNEL_FROM_SERVER };

enum tunnel_frame_status {
    TUNNEL_FRAME_OK,
    TUNNEL_FRAME_NEED_MORE,     /* every byte taken, no whole frame yet */
    TUNNEL_FRAME_BAD_TYPE,      /* unknown type, or one this sender never sends: fatal */
    TUNNEL_FRAME_BAD_LENGTH,    /* zero, above the limit, or wrong for the type: fatal */
    TUNNEL_FRAME_BAD_PAYLOAD,   /* a CONFIG that does not decode: fatal */
};

/* What a client brings up: its addresses on the tunnel, MTU, routes via the tunnel. */
struct tunnel_frame_config {
    unsigned mtu;
    unsigned keepalive_s;            /* 1..TUNNEL_KEEPALIVE_MAX_S */
    size_t address_count;
    struct ip_prefix addresses[TUNNEL_CONFIG_MAX_ADDRESSES];
    size_t route_count;
    struct ip_prefix routes[TUNNEL_CONFIG_MAX_ROUTES];
};

/* One frame read. PAYLOAD points into the bytes given to tunnel_frame_read or into the
 * reader, and stays valid until the next call on the reader or until those bytes
 * change; it is not copied. */
struct tunnel_frame {
    enum tunnel_frame_type type;
    const unsigned char *payload;
    size_t len;
    uint64_t keepalive;              /* KEEPALIVE and KEEPALIVE_REPLY */
};

/* The receiving end of one stream. Embed it, and set it up with tunnel_frame_reader_init. */
struct tunnel_frame_reader {
    enum tunnel_frame_sender from;
    unsigned mtu;
    enum tunnel_frame_status error;  /* TUNNEL_FRAME_OK until a fatal status */
    uint64_t skipped;                /* optional frames of unknown type, skipped */
    size_t fill;
    unsigned char buf[TUNNEL_FRAME_MAX];
};

/* The sending end: frames appended to BUF (owned by the caller) until it is written. */
struct tunnel_frame_writer {
    unsigned char *buf;
    size_t cap;
    size_t len;
};

/* Sets R up to read frames sent by FROM, packets of at most MTU bytes
 * (TUNNEL_MTU_MIN..TUNNEL_MTU_MAX; out of range is clamped). */
void tunnel_frame_reader_init(struct tunnel_frame_reader *r, enum tunnel_frame_sender from,
                              unsigned mtu);

/* Reads from DATA (LEN bytes) until one frame is whole, skipping optional frames of
 * unknown type. Sets *CONSUMED to the bytes taken (the rest is for the next call).
 * Returns TUNNEL_FRAME_OK with *FRAME filled; TUNNEL_FRAME_NEED_MORE when all LEN
 * bytes were taken without a frame; any other status is fatal, and every later call
 * returns it again. */
enum tunnel_frame_status tunnel_frame_read(struct tunnel_frame_reader *r,
                                           const unsigned char *data, size_t len,
                                           size_t *consumed, struct tunnel_frame *frame);

/* Decodes a CONFIG frame's payload (LEN bytes) into *OUT. Returns TUNNEL_FRAME_OK, or
 * TUNNEL_FRAME_BAD_PAYLOAD with *OUT unspecified; *REASON (may be NULL) gets a static
 * explanation either way. */
enum tunnel_frame_status tunnel_frame_config_decode(const unsigned char *payload, size_t len,
                                                    struct tunnel_frame_config *out,
                                                    const char **reason);

/* Checks CONFIG as CONFIG decoding would. Returns 0, or -1 with a static reason. */
int tunnel_frame_config_check(const struct tunnel_frame_config *config, const char **reason);

/* Sets W up to append frames to BUF (CAP bytes, owned by the caller), empty. */
void tunnel_frame_writer_init(struct tunnel_frame_writer *w, unsigned char *buf, size_t cap);

/* Appends a PACKET frame of PACKET (LEN bytes, 1..TUNNEL_MTU_MAX). Returns 1 when
 * added, 0 when it does not fit (write the batch out, then try again), -1 when LEN is
 * out of range. */
int tunnel_frame_put_packet(struct tunnel_frame_writer *w, const void *packet, size_t len);

/* Appends a CONFIG frame. Returns 1, 0 (no room) or -1 (CONFIG fails
 * tunnel_frame_config_check). */
int tunnel_frame_put_config(struct tunnel_frame_writer *w, const struct tunnel_frame_config *config);

/* Appends a KEEPALIVE frame (a KEEPALIVE_REPLY when REPLY is set) carrying VALUE.
 * Returns 1, or 0 when it does not fit. */
int tunnel_frame_put_keepalive(struct tunnel_frame_writer *w, int reply, uint64_t value);

/* Appends a REFUSED frame carrying REASON (cut to TUNNEL_REFUSED_MAX bytes). Returns 1,
 * 0 when it does not fit, or -1 when REASON is empty. */
int tunnel_frame_put_refused(struct tunnel_frame_writer *w, const char *reason);

/* Returns a short explanation of a status ("frame too large", ...). */
const char *tunnel_frame_status_text(enum tunnel_frame_status status);

#endif
