#include "proto/tun_request.h"

#include <string.h>
#include <sys/socket.h>

#include "proto/tunnel_frame.h"

_Static_assert(TUN_REQUEST_CONFIG_MAX == TUNNEL_CONFIG_MAX_PAYLOAD,
               "a CONFIGURE carries any CONFIG payload");

static const char *ignored;

static int printable(unsigned char c, int blank_ok)
{
    return (c > 0x20 && c < 0x7f) || (blank_ok && c == 0x20);
}

/* NAME: 1..MAX printable bytes (BLANK_OK: blanks too); DEVICE: also a device name. */
static int text_ok(const char *name, size_t max, int blank_ok, int device)
{
    size_t len = strnlen(name, max + 1);
    if (len == 0 || len > max)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!printable((unsigned char)name[i], blank_ok) ||
            (device && (name[i] == '/' || name[i] == ':')))
            return 0;
    return !device || (strcmp(name, ".") != 0 && strcmp(name, "..") != 0);
}

static int config_ok(const struct tun_message *msg)
{
    struct tunnel_frame_config config;
    return msg->config_len <= sizeof(msg->config) &&
           tunnel_frame_config_decode(msg->config, msg->config_len, &config, NULL) ==
               TUNNEL_FRAME_OK;
}

static int addresses_ok(const struct tun_message *msg)
{
    int families = 0;
    if (msg->address_count > TUN_REQUEST_MAX_ADDRESSES)
        return 0;
    for (size_t i = 0; i < msg->address_count; i++) {
        const struct ip_prefix *a = &msg->addresses[i];
        int bit = a->family == AF_INET ? 1 : a->family == AF_INET6 ? 2 : 0;
        if (bit == 0 || a->len != ip_prefix_max_len(a->family) || (families & bit))
            return 0;
        families |= bit;
    }
    return 1;
}

static int check_reply(const struct tun_message *msg, const char **reason)
{
    if (msg->refused) {
        *reason = "a refusal without a reason, or with a device";
        if (!text_ok(msg->reason, TUN_REQUEST_REASON_MAX, 1, 0) || msg->device[0] != '\0' ||
            msg->address_count != 0)
            return -1;
        return 0;
    }
    *reason = "a reply without a device, or with a reason";
    if (!text_ok(msg->device, TUN_REQUEST_DEVICE_MAX, 0, 1) || msg->reason[0] != '\0')
        return -1;
    *reason = "addresses that are not one host per family";
    return addresses_ok(msg) ? 0 : -1;
}

int tun_request_check(const struct tun_message *msg, const char **reason)
{
    int rc = -1;
    int has_tunnel = msg->type == TUN_MESSAGE_HUB || msg->type == TUN_MESSAGE_ATTACH ||
                     msg->type == TUN_MESSAGE_CONFIGURE;
    *reason = "tunnel name empty, too long or not printable";
    if (has_tunnel && !text_ok(msg->tunnel, LIMIT_TUNNEL_NAME, 0, 0))
        goto out;
    switch (msg->type) {
    case TUN_MESSAGE_HUB:
        *reason = "identity empty, too long or not printable";
        if (!text_ok(msg->identity, TUN_REQUEST_IDENTITY_MAX, 1, 0))
            goto out;
        break;
    case TUN_MESSAGE_ATTACH:
    case TUN_MESSAGE_RELEASE:
        break;
    case TUN_MESSAGE_CONFIGURE:
        *reason = "configuration does not decode";
        if (!config_ok(msg))
            goto out;
        break;
    case TUN_MESSAGE_REPLY:
        if (check_reply(msg, reason) != 0)
            goto out;
        break;
    case TUN_MESSAGE_END:
        *reason = "end order without a printable reason";
        if (!text_ok(msg->reason, TUN_REQUEST_REASON_MAX, 1, 0))
            goto out;
        break;
    default:
        *reason = "unknown message type";
        goto out;
    }
    *reason = "ok";
    rc = 0;
out:
    return rc;
}

struct cursor {
    unsigned char *out;          /* writing; NULL when reading */
    const unsigned char *in;
    size_t len;
    size_t at;
};

static int put(struct cursor *c, const void *data, size_t len)
{
    if (c->len - c->at < len)
        return -1;
    if (len > 0)
        memcpy(c->out + c->at, data, len);
    c->at += len;
    return 0;
}

static int put_u(struct cursor *c, uint32_t value, size_t bytes)
{
    unsigned char b[4];
    for (size_t i = 0; i < bytes; i++)
        b[i] = (unsigned char)(value >> (8 * (bytes - 1 - i)));
    return put(c, b, bytes);
}

static int put_text(struct cursor *c, const char *text)
{
    size_t len = strlen(text);
    return put_u(c, (uint32_t)len, 1) != 0 ? -1 : put(c, text, len);
}

static int put_prefix(struct cursor *c, const struct ip_prefix *p)
{
    size_t n = ip_prefix_addr_len(p->family);
    if (put_u(c, n == 4 ? 4 : 6, 1) != 0 || put(c, p->addr, n) != 0)
        return -1;
    return put_u(c, p->len, 1);
}

static const unsigned char *take(struct cursor *c, size_t len)
{
    if (c->len - c->at < len)
        return NULL;
    c->at += len;
    return c->in + c->at - len;
}

static int take_u(struct cursor *c, size_t bytes, uint32_t *value)
{
    const unsigned char *b = take(c, bytes);
    if (b == NULL)
        return -1;
    *value = 0;
    for (size_t i = 0; i < bytes; i++)
        *value = *value << 8 | b[i];
    return 0;
}

static int take_prefix(struct cursor *c, struct ip_prefix *p)
{
    uint32_t family, len;
    const unsigned char *addr;
    if (take_u(c, 1, &family) != 0 || (family != 4 && family != 6))
        return -1;
    memset(p, 0, sizeof(*p));
    p->family = family == 4 ? AF_INET : AF_INET6;
    if ((addr = take(c, ip_prefix_addr_len(p->family))) == NULL || take_u(c, 1, &len) != 0 ||
        len > ip_prefix_max_len(p->family))
        return -1;
    memcpy(p->addr, addr, ip_prefix_addr_len(p->family));
    p->len = (uint8_t)len;
    return 0;
}

/* A length byte and that many bytes into OUT (MAX + 1 bytes), NUL-terminated. */
static int take_text(struct cursor *c, char *out, size_t max)
{
    uint32_t len;
    const unsigned char *s;
    if (take_u(c, 1, &len) != 0 || len > max || (s = take(c, len)) == NULL)
        return -1;
    memcpy(out, s, len);
    out[len] = '\0';
    return memchr(out, '\0', len) == NULL ? 0 : -1;
}

/* What follows the id, by type. */
static int put_body(struct cursor *c, const struct tun_message *msg, const char *reason)
{
    switch (msg->type) {
    case TUN_MESSAGE_HUB:
        return put_text(c, msg->tunnel) != 0 ? -1 : put_text(c, msg->identity);
    case TUN_MESSAGE_ATTACH:
        return put_text(c, msg->tunnel);
    case TUN_MESSAGE_CONFIGURE:
        return put_text(c, msg->tunnel) != 0 ? -1 : put(c, msg->config, msg->config_len);
    case TUN_MESSAGE_REPLY:
        if (put_u(c, msg->refused ? 1 : 0, 1) != 0 || put_text(c, msg->device) != 0 ||
            put_u(c, (uint32_t)msg->address_count, 1) != 0)
            return -1;
        for (size_t i = 0; i < msg->address_count; i++)
            if (put_prefix(c, &msg->addresses[i]) != 0)
                return -1;
        return put_text(c, reason);
    case TUN_MESSAGE_END:
        return put_text(c, reason);
    default:
        return 0;
    }
}

size_t tun_request_encode(const struct tun_message *msg, unsigned char *buf, size_t cap)
{
    struct cursor c = { .out = buf, .len = cap };
    struct tun_message fixed;
    const char *why;
    /* The reason is repaired on a copy, so that the check sees what goes out. */
    const struct tun_message *m = msg;
    if (msg->type == TUN_MESSAGE_REPLY || msg->type == TUN_MESSAGE_END) {
        fixed = *msg;
        size_t len = strnlen(fixed.reason, TUN_REQUEST_REASON_MAX);
        fixed.reason[len] = '\0';
        for (size_t i = 0; i < len; i++)
            if (!printable((unsigned char)fixed.reason[i], 1))
                fixed.reason[i] = '?';
        m = &fixed;
    }
    if (tun_request_check(m, &why) != 0)
        return 0;
    if (put_u(&c, (uint32_t)m->type, 1) != 0 || put_u(&c, TUN_REQUEST_VERSION, 1) != 0 ||
        put_u(&c, m->id, 4) != 0 || put_body(&c, m, m->reason) != 0)
        return 0;
    return c.at;
}

static int take_body(struct cursor *c, struct tun_message *out)
{
    uint32_t status, count;
    switch (out->type) {
    case TUN_MESSAGE_HUB:
        return take_text(c, out->tunnel, LIMIT_TUNNEL_NAME) != 0
                   ? -1
                   : take_text(c, out->identity, TUN_REQUEST_IDENTITY_MAX);
    case TUN_MESSAGE_ATTACH:
        return take_text(c, out->tunnel, LIMIT_TUNNEL_NAME);
    case TUN_MESSAGE_CONFIGURE:
        if (take_text(c, out->tunnel, LIMIT_TUNNEL_NAME) != 0 ||
            c->len - c->at > sizeof(out->config))
            return -1;
        out->config_len = c->len - c->at;
        memcpy(out->config, take(c, out->config_len), out->config_len);
        return 0;
    case TUN_MESSAGE_RELEASE:
        return 0;
    case TUN_MESSAGE_REPLY:
        if (take_u(c, 1, &status) != 0 || status > 1 ||
            take_text(c, out->device, TUN_REQUEST_DEVICE_MAX) != 0 ||
            take_u(c, 1, &count) != 0 || count > TUN_REQUEST_MAX_ADDRESSES)
            return -1;
        out->refused = (int)status;
        out->address_count = count;
        for (size_t i = 0; i < count; i++)
            if (take_prefix(c, &out->addresses[i]) != 0)
                return -1;
        return take_text(c, out->reason, TUN_REQUEST_REASON_MAX);
    case TUN_MESSAGE_END:
        return take_text(c, out->reason, TUN_REQUEST_REASON_MAX);
    default:
        return -1;
    }
}

int tun_request_decode(const unsigned char *buf, size_t len, struct tun_message *out,
                       const char **reason)
{
    struct cursor c = { .in = buf, .len = len };
    uint32_t tag, version;
    const char **why = reason != NULL ? reason : &ignored;
    *why = "truncated message";
    memset(out, 0, sizeof(*out));
    if (take_u(&c, 1, &tag) != 0 || take_u(&c, 1, &version) != 0)
        return -1;
    out->type = (enum tun_message_type)tag;
    if (version != TUN_REQUEST_VERSION || strchr("HACLRE", (int)tag) == NULL || tag == 0) {
        *why = "not a message of this version";
        return -1;
    }
    if (take_u(&c, 4, &out->id) != 0)
        return -1;
    if (take_body(&c, out) != 0) {
        *why = "bad or truncated field";
        return -1;
    }
    if (c.at != len) {
        *why = "bytes after the message";
        return -1;
    }
    return tun_request_check(out, why);
}

void tun_request_reply(struct tun_message *msg, uint32_t id, const char *device,
                       size_t count, const struct ip_prefix *addresses, const char *reason)
{
    memset(msg, 0, sizeof(*msg));
    msg->type = TUN_MESSAGE_REPLY;
    msg->id = id;
    if (device == NULL) {
        msg->refused = 1;
        strncpy(msg->reason, reason, TUN_REQUEST_REASON_MAX);
        return;
    }
    strncpy(msg->device, device, TUN_REQUEST_DEVICE_MAX);
    msg->address_count = count < TUN_REQUEST_MAX_ADDRESSES ? count : TUN_REQUEST_MAX_ADDRESSES;
    if (msg->address_count > 0)
        memcpy(msg->addresses, addresses, msg->address_count * sizeof(*addresses));
}
