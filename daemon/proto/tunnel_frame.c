#include "proto/tunnel_frame.h"

#include <string.h>
#include <sys/socket.h>

/* The reader's buffer holds any frame it may have to gather. */
_Static_assert(TUNNEL_CONFIG_MAX_PAYLOAD <= TUNNEL_MTU_MAX, "config fits the reader");
_Static_assert(TUNNEL_OPTIONAL_MAX_PAYLOAD <= TUNNEL_MTU_MAX, "optional frames fit");
_Static_assert(TUNNEL_CONFIG_MAX_PAYLOAD <= 0xffff && TUNNEL_MTU_MAX <= 0xffff,
               "lengths fit two bytes");

static unsigned clamp_mtu(unsigned mtu)
{
    return mtu < TUNNEL_MTU_MIN ? TUNNEL_MTU_MIN : mtu > TUNNEL_MTU_MAX ? TUNNEL_MTU_MAX : mtu;
}

void tunnel_frame_reader_init(struct tunnel_frame_reader *r, enum tunnel_frame_sender from,
                              unsigned mtu)
{
    r->from = from;
    r->mtu = clamp_mtu(mtu);
    r->error = TUNNEL_FRAME_OK;
    r->skipped = 0;
    r->fill = 0;
}

static int is_optional(unsigned type)
{
    return (type & TUNNEL_FRAME_OPTIONAL) != 0;
}

/* The type alone, judged as soon as its byte arrives: garbage fails before a length. */
static enum tunnel_frame_status check_type(const struct tunnel_frame_reader *r, unsigned type)
{
    switch (type) {
    case TUNNEL_FRAME_PACKET:
    case TUNNEL_FRAME_KEEPALIVE:
    case TUNNEL_FRAME_KEEPALIVE_REPLY:
        return TUNNEL_FRAME_OK;
    case TUNNEL_FRAME_CONFIG:
        return r->from == TUNNEL_FROM_SERVER ? TUNNEL_FRAME_OK : TUNNEL_FRAME_BAD_TYPE;
    default:
        return is_optional(type) ? TUNNEL_FRAME_OK : TUNNEL_FRAME_BAD_TYPE;
    }
}

static enum tunnel_frame_status check_length(const struct tunnel_frame_reader *r,
                                             unsigned type, size_t len)
{
    int ok;
    switch (type) {
    case TUNNEL_FRAME_PACKET:
        ok = len >= 1 && len <= r->mtu;
        break;
    case TUNNEL_FRAME_KEEPALIVE:
    case TUNNEL_FRAME_KEEPALIVE_REPLY:
        ok = len == TUNNEL_KEEPALIVE_LEN;
        break;
    case TUNNEL_FRAME_CONFIG:
        ok = len >= TUNNEL_CONFIG_FIXED_LEN && len <= TUNNEL_CONFIG_MAX_PAYLOAD;
        break;
    case TUNNEL_FRAME_REFUSED:
        ok = r->from == TUNNEL_FROM_SERVER ? len >= 1 && len <= TUNNEL_REFUSED_MAX
                                           : len <= TUNNEL_OPTIONAL_MAX_PAYLOAD;
        break;
    default:
        ok = len <= TUNNEL_OPTIONAL_MAX_PAYLOAD;
        break;
    }
    return ok ? TUNNEL_FRAME_OK : TUNNEL_FRAME_BAD_LENGTH;
}

static size_t payload_length(const unsigned char *header)
{
    return ((size_t)header[1] << 8) | header[2];
}

static uint64_t get_u64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = (v << 8) | p[i];
    return v;
}

static enum tunnel_frame_status fail(struct tunnel_frame_reader *r,
                                     enum tunnel_frame_status status)
{
    r->error = status;
    r->fill = 0;
    return status;
}

/* Copies up to WANT bytes of DATA (LEN bytes from *USED on) into the reader's buffer
 * until it holds WANT bytes. Returns 1 when it does. */
static int gather(struct tunnel_frame_reader *r, const unsigned char *data, size_t len,
                  size_t *used, size_t want)
{
    size_t take = want - r->fill;
    if (take > len - *used)
        take = len - *used;
    memcpy(r->buf + r->fill, data + *used, take);
    r->fill += take;
    *used += take;
    return r->fill == want;
}

enum tunnel_frame_status tunnel_frame_read(struct tunnel_frame_reader *r,
                                           const unsigned char *data, size_t len,
                                           size_t *consumed, struct tunnel_frame *frame)
{
    size_t used = 0;
    enum tunnel_frame_status status = r->error;

    *consumed = 0;
    if (status != TUNNEL_FRAME_OK)
        return status;
    for (;;) {
        const unsigned char *bytes;
        size_t payload_len;

        if (r->fill == 0 && len - used >= TUNNEL_FRAME_HEADER_LEN) {
            /* The common case: a whole frame in the caller's bytes, read in place. */
            bytes = data + used;
            payload_len = payload_length(bytes);
            if ((status = check_type(r, bytes[0])) != TUNNEL_FRAME_OK ||
                (status = check_length(r, bytes[0], payload_len)) != TUNNEL_FRAME_OK) {
                *consumed = used;
                return fail(r, status);
            }
            if (len - used >= TUNNEL_FRAME_HEADER_LEN + payload_len) {
                used += TUNNEL_FRAME_HEADER_LEN + payload_len;
                goto whole;
            }
        }
        if (used == len) {
            *consumed = used;
            return TUNNEL_FRAME_NEED_MORE;
        }
        if (r->fill == 0 && (status = check_type(r, data[used])) != TUNNEL_FRAME_OK) {
            *consumed = used;
            return fail(r, status);
        }
        if (!gather(r, data, len, &used, TUNNEL_FRAME_HEADER_LEN > r->fill
                                              ? TUNNEL_FRAME_HEADER_LEN : r->fill)) {
            *consumed = used;
            return TUNNEL_FRAME_NEED_MORE;
        }
        payload_len = payload_length(r->buf);
        if ((status = check_length(r, r->buf[0], payload_len)) != TUNNEL_FRAME_OK) {
            *consumed = used;
            return fail(r, status);
        }
        if (!gather(r, data, len, &used, TUNNEL_FRAME_HEADER_LEN + payload_len)) {
            *consumed = used;
            return TUNNEL_FRAME_NEED_MORE;
        }
        bytes = r->buf;
        r->fill = 0;
    whole:
        if (is_optional(bytes[0]) &&
            !(bytes[0] == TUNNEL_FRAME_REFUSED && r->from == TUNNEL_FROM_SERVER)) {
            r->skipped++;
            continue;
        }
        frame->type = (enum tunnel_frame_type)bytes[0];
        frame->payload = bytes + TUNNEL_FRAME_HEADER_LEN;
        frame->len = payload_len;
        frame->keepalive = 0;
        if (frame->type == TUNNEL_FRAME_KEEPALIVE || frame->type == TUNNEL_FRAME_KEEPALIVE_REPLY)
            frame->keepalive = get_u64(frame->payload);
        *consumed = used;
        return TUNNEL_FRAME_OK;
    }
}

static int entry_family(unsigned code)
{
    return code == 4 ? AF_INET : code == 6 ? AF_INET6 : 0;
}

static int check_prefix(const struct ip_prefix *p, int want_network)
{
    unsigned max = ip_prefix_max_len(p->family);
    if (max == 0 || p->len > max)
        return -1;
    return want_network && !ip_prefix_is_network(p) ? -1 : 0;
}

int tunnel_frame_config_check(const struct tunnel_frame_config *config, const char **reason)
{
    int have_v6 = 0, families = 0;

    if (config->mtu < TUNNEL_MTU_MIN || config->mtu > TUNNEL_MTU_MAX) {
        *reason = "MTU out of range";
        return -1;
    }
    if (config->keepalive_s < 1 || config->keepalive_s > TUNNEL_KEEPALIVE_MAX_S) {
        *reason = "keepalive interval out of range";
        return -1;
    }
    if (config->address_count < 1 || config->address_count > TUNNEL_CONFIG_MAX_ADDRESSES) {
        *reason = "needs one address per family, one or two";
        return -1;
    }
    if (config->route_count > TUNNEL_CONFIG_MAX_ROUTES) {
        *reason = "too many routes";
        return -1;
    }
    for (size_t i = 0; i < config->address_count; i++) {
        const struct ip_prefix *a = &config->addresses[i];
        int bit = a->family == AF_INET6 ? 2 : 1;
        if (check_prefix(a, 0) != 0 || a->len == 0) {
            *reason = "bad address";
            return -1;
        }
        if (families & bit) {
            *reason = "two addresses of one family";
            return -1;
        }
        families |= bit;
        have_v6 |= a->family == AF_INET6;
    }
    if (have_v6 && config->mtu < TUNNEL_MTU_MIN_IPV6) {
        *reason = "MTU below 1280 with an IPv6 address";
        return -1;
    }
    for (size_t i = 0; i < config->route_count; i++) {
        if (check_prefix(&config->routes[i], 1) != 0) {
            *reason = "a route is not a network";
            return -1;
        }
    }
    *reason = "valid";
    return 0;
}

/* Reads one family/address/length entry at P (LEFT bytes). Returns its size or 0. */
static size_t get_entry(const unsigned char *p, size_t left, struct ip_prefix *out)
{
    if (left < 1)
        return 0;
    int family = entry_family(p[0]);
    size_t addr_len = ip_prefix_addr_len(family);
    if (addr_len == 0 || left < 1 + addr_len + 1)
        return 0;
    memset(out, 0, sizeof(*out));
    out->family = family;
    memcpy(out->addr, p + 1, addr_len);
    out->len = p[1 + addr_len];
    return 1 + addr_len + 1;
}

enum tunnel_frame_status tunnel_frame_config_decode(const unsigned char *payload, size_t len,
                                                    struct tunnel_frame_config *out,
                                                    const char **reason)
{
    const char *why = "truncated";
    enum tunnel_frame_status status = TUNNEL_FRAME_BAD_PAYLOAD;
    size_t at = TUNNEL_CONFIG_FIXED_LEN;

    if (len < TUNNEL_CONFIG_FIXED_LEN || len > TUNNEL_CONFIG_MAX_PAYLOAD)
        goto out;
    if (payload[0] != TUNNEL_CONFIG_VERSION) {
        why = "unknown version";
        goto out;
    }
    out->mtu = ((unsigned)payload[1] << 8) | payload[2];
    out->keepalive_s = ((unsigned)payload[3] << 8) | payload[4];
    out->address_count = payload[5];
    out->route_count = payload[6];
    if (out->address_count > TUNNEL_CONFIG_MAX_ADDRESSES ||
        out->route_count > TUNNEL_CONFIG_MAX_ROUTES) {
        why = "too many entries";
        goto out;
    }
    for (size_t i = 0; i < out->address_count + out->route_count; i++) {
        struct ip_prefix *p = i < out->address_count ? &out->addresses[i]
                                                     : &out->routes[i - out->address_count];
        size_t n = get_entry(payload + at, len - at, p);
        if (n == 0) {
            why = "bad entry";
            goto out;
        }
        at += n;
    }
    if (at != len) {
        why = "bytes after the last entry";
        goto out;
    }
    if (tunnel_frame_config_check(out, &why) != 0)
        goto out;
    status = TUNNEL_FRAME_OK;
out:
    if (reason != NULL)
        *reason = why;
    return status;
}

void tunnel_frame_writer_init(struct tunnel_frame_writer *w, unsigned char *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
}

static unsigned char *reserve(struct tunnel_frame_writer *w, unsigned type, size_t payload_len)
{
    if (w->cap - w->len < TUNNEL_FRAME_HEADER_LEN + payload_len)
        return NULL;
    unsigned char *p = w->buf + w->len;
    p[0] = (unsigned char)type;
    p[1] = (unsigned char)(payload_len >> 8);
    p[2] = (unsigned char)(payload_len & 0xff);
    w->len += TUNNEL_FRAME_HEADER_LEN + payload_len;
    return p + TUNNEL_FRAME_HEADER_LEN;
}

int tunnel_frame_put_refused(struct tunnel_frame_writer *w, const char *reason)
{
    size_t len = strlen(reason);
    if (len == 0)
        return -1;
    if (len > TUNNEL_REFUSED_MAX)
        len = TUNNEL_REFUSED_MAX;
    unsigned char *p = reserve(w, TUNNEL_FRAME_REFUSED, len);
    if (p == NULL)
        return 0;
    for (size_t i = 0; i < len; i++)
        p[i] = (unsigned char)reason[i];
    return 1;
}

int tunnel_frame_put_packet(struct tunnel_frame_writer *w, const void *packet, size_t len)
{
    if (len < 1 || len > TUNNEL_MTU_MAX)
        return -1;
    unsigned char *p = reserve(w, TUNNEL_FRAME_PACKET, len);
    if (p == NULL)
        return 0;
    memcpy(p, packet, len);
    return 1;
}

static unsigned char *put_entry(unsigned char *p, const struct ip_prefix *prefix)
{
    size_t addr_len = ip_prefix_addr_len(prefix->family);
    p[0] = prefix->family == AF_INET ? 4 : 6;
    memcpy(p + 1, prefix->addr, addr_len);
    p[1 + addr_len] = prefix->len;
    return p + 2 + addr_len;
}

int tunnel_frame_put_config(struct tunnel_frame_writer *w, const struct tunnel_frame_config *config)
{
    const char *reason;
    if (tunnel_frame_config_check(config, &reason) != 0)
        return -1;
    size_t len = TUNNEL_CONFIG_FIXED_LEN;
    for (size_t i = 0; i < config->address_count; i++)
        len += 2 + ip_prefix_addr_len(config->addresses[i].family);
    for (size_t i = 0; i < config->route_count; i++)
        len += 2 + ip_prefix_addr_len(config->routes[i].family);
    unsigned char *p = reserve(w, TUNNEL_FRAME_CONFIG, len);
    if (p == NULL)
        return 0;
    p[0] = TUNNEL_CONFIG_VERSION;
    p[1] = (unsigned char)(config->mtu >> 8);
    p[2] = (unsigned char)(config->mtu & 0xff);
    p[3] = (unsigned char)(config->keepalive_s >> 8);
    p[4] = (unsigned char)(config->keepalive_s & 0xff);
    p[5] = (unsigned char)config->address_count;
    p[6] = (unsigned char)config->route_count;
    p += TUNNEL_CONFIG_FIXED_LEN;
    for (size_t i = 0; i < config->address_count; i++)
        p = put_entry(p, &config->addresses[i]);
    for (size_t i = 0; i < config->route_count; i++)
        p = put_entry(p, &config->routes[i]);
    return 1;
}

int tunnel_frame_put_keepalive(struct tunnel_frame_writer *w, int reply, uint64_t value)
{
    unsigned char *p = reserve(w, reply ? TUNNEL_FRAME_KEEPALIVE_REPLY : TUNNEL_FRAME_KEEPALIVE,
                               TUNNEL_KEEPALIVE_LEN);
    if (p == NULL)
        return 0;
    for (int i = TUNNEL_KEEPALIVE_LEN - 1; i >= 0; i--) {
        p[i] = (unsigned char)(value & 0xff);
        value >>= 8;
    }
    return 1;
}

const char *tunnel_frame_status_text(enum tunnel_frame_status status)
{
    switch (status) {
    case TUNNEL_FRAME_OK:
        return "no error";
    case TUNNEL_FRAME_NEED_MORE:
        return "incomplete frame";
    case TUNNEL_FRAME_BAD_TYPE:
        return "unexpected frame type";
    case TUNNEL_FRAME_BAD_LENGTH:
        return "frame length out of bounds";
    case TUNNEL_FRAME_BAD_PAYLOAD:
        return "malformed control message";
    }
    return "unknown error";
}
