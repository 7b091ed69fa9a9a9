#include "proto/tun_request.h"

#include <string.h>
#include <sys/socket.h>

#include "proto/tunnel_frame.h"

#define REQUEST_TAG 'Q'
#define REPLY_TAG 'R'

static const char *ignored;

static int printable(unsigned char c, int blank_ok)
{
    return (c > 0x20 && c < 0x7f) || (blank_ok && c == 0x20);
}

static int name_ok(const char *name, size_t max, int device)
{
    size_t len = strnlen(name, max + 1);
    if (len == 0 || len > max)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!printable((unsigned char)name[i], 0) || (device && (name[i] == '/' || name[i] == ':')))
            return 0;
    return !device || (strcmp(name, ".") != 0 && strcmp(name, "..") != 0);
}

int tun_request_check(const struct tun_request *req, const char **reason)
{
    int families = 0;
    *reason = "ok";
    if (!name_ok(req->tunnel, LIMIT_TUNNEL_NAME, 0)) {
        *reason = "tunnel name empty, too long or not printable";
        return -1;
    }
    if (req->mtu < TUNNEL_MTU_MIN || req->mtu > TUNNEL_MTU_MAX) {
        *reason = "MTU out of range";
        return -1;
    }
    if (req->address_count < 1 || req->address_count > TUN_REQUEST_MAX_ADDRESSES) {
        *reason = "address count out of range";
        return -1;
    }
    if (req->network_count > TUN_REQUEST_MAX_NETWORKS) {
        *reason = "too many networks";
        return -1;
    }
    for (size_t i = 0; i < req->address_count; i++) {
        const struct ip_prefix *a = &req->addresses[i];
        int bit = a->family == AF_INET ? 1 : a->family == AF_INET6 ? 2 : 0;
        if (bit == 0 || a->len != ip_prefix_max_len(a->family)) {
            *reason = "a client address is not a host address";
            return -1;
        }
        if (families & bit) {
            *reason = "two client addresses of one family";
            return -1;
        }
        families |= bit;
    }
    for (size_t i = 0; i < req->network_count; i++) {
        const struct ip_prefix *n = &req->networks[i];
        if ((n->family != AF_INET && n->family != AF_INET6) ||
            n->len > ip_prefix_max_len(n->family) || !ip_prefix_is_network(n)) {
            *reason = "a network has host bits set or no family";
            return -1;
        }
    }
    return 0;
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

/* A string of LEN bytes into OUT (MAX + 1 bytes), NUL-terminated. */
static int take_string(struct cursor *c, size_t len, char *out, size_t max)
{
    const unsigned char *s;
    if (len > max || (s = take(c, len)) == NULL)
        return -1;
    memcpy(out, s, len);
    out[len] = '\0';
    return memchr(out, '\0', len) == NULL ? 0 : -1;
}

size_t tun_request_encode(const struct tun_request *req, unsigned char *buf, size_t cap)
{
    struct cursor c = { .out = buf, .len = cap };
    const char *reason;
    size_t name_len = strlen(req->tunnel);
    if (tun_request_check(req, &reason) != 0)
        return 0;
    if (put_u(&c, REQUEST_TAG, 1) != 0 || put_u(&c, TUN_REQUEST_VERSION, 1) != 0 ||
        put_u(&c, req->id, 4) != 0 || put_u(&c, req->mtu, 2) != 0 ||
        put_u(&c, (uint32_t)name_len, 1) != 0 || put(&c, req->tunnel, name_len) != 0 ||
        put_u(&c, (uint32_t)req->address_count, 1) != 0 ||
        put_u(&c, (uint32_t)req->network_count, 1) != 0)
        return 0;
    for (size_t i = 0; i < req->address_count; i++)
        if (put_prefix(&c, &req->addresses[i]) != 0)
            return 0;
    for (size_t i = 0; i < req->network_count; i++)
        if (put_prefix(&c, &req->networks[i]) != 0)
            return 0;
    return c.at;
}

int tun_request_decode(const unsigned char *buf, size_t len, struct tun_request *out,
                       const char **reason)
{
    struct cursor c = { .in = buf, .len = len };
    uint32_t tag, version, mtu, name_len, addresses, networks;
    const char **why = reason != NULL ? reason : &ignored;
    *why = "truncated request";
    memset(out, 0, sizeof(*out));
    if (take_u(&c, 1, &tag) != 0 || take_u(&c, 1, &version) != 0)
        return -1;
    if (tag != REQUEST_TAG || version != TUN_REQUEST_VERSION) {
        *why = "not a request of this version";
        return -1;
    }
    if (take_u(&c, 4, &out->id) != 0 || take_u(&c, 2, &mtu) != 0 ||
        take_u(&c, 1, &name_len) != 0 ||
        take_string(&c, name_len, out->tunnel, LIMIT_TUNNEL_NAME) != 0 ||
        take_u(&c, 1, &addresses) != 0 || take_u(&c, 1, &networks) != 0)
        return -1;
    out->mtu = mtu;
    if (addresses > TUN_REQUEST_MAX_ADDRESSES || networks > TUN_REQUEST_MAX_NETWORKS) {
        *why = "too many addresses or networks";
        return -1;
    }
    out->address_count = addresses;
    out->network_count = networks;
    for (size_t i = 0; i < addresses; i++)
        if (take_prefix(&c, &out->addresses[i]) != 0) {
            *why = "bad address entry";
            return -1;
        }
    for (size_t i = 0; i < networks; i++)
        if (take_prefix(&c, &out->networks[i]) != 0) {
            *why = "bad network entry";
            return -1;
        }
    if (c.at != len) {
        *why = "bytes after the request";
        return -1;
    }
    return tun_request_check(out, why);
}

size_t tun_request_reply_encode(const struct tun_reply *reply, unsigned char *buf, size_t cap)
{
    struct cursor c = { .out = buf, .len = cap };
    char reason[TUN_REQUEST_REASON_MAX];
    size_t device_len = reply->refused ? 0 : strlen(reply->device);
    size_t reason_len = reply->refused ? strnlen(reply->reason, TUN_REQUEST_REASON_MAX) : 0;
    if (reply->refused ? reason_len == 0 : !name_ok(reply->device, TUN_REQUEST_DEVICE_MAX, 1))
        return 0;
    memcpy(reason, reply->reason, reason_len);
    for (size_t i = 0; i < reason_len; i++)
        if (!printable((unsigned char)reason[i], 1))
            reason[i] = '?';
    if (put_u(&c, REPLY_TAG, 1) != 0 || put_u(&c, TUN_REQUEST_VERSION, 1) != 0 ||
        put_u(&c, reply->id, 4) != 0 || put_u(&c, reply->refused ? 1 : 0, 1) != 0 ||
        put_u(&c, (uint32_t)device_len, 1) != 0 || put(&c, reply->device, device_len) != 0 ||
        put_u(&c, (uint32_t)reason_len, 1) != 0 || put(&c, reason, reason_len) != 0)
        return 0;
    return c.at;
}

int tun_request_reply_decode(const unsigned char *buf, size_t len, struct tun_reply *out,
                             const char **reason)
{
    struct cursor c = { .in = buf, .len = len };
    uint32_t tag, version, status, device_len, reason_len;
    const char **why = reason != NULL ? reason : &ignored;
    *why = "truncated reply";
    memset(out, 0, sizeof(*out));
    if (take_u(&c, 1, &tag) != 0 || take_u(&c, 1, &version) != 0)
        return -1;
    if (tag != REPLY_TAG || version != TUN_REQUEST_VERSION) {
        *why = "not a reply of this version";
        return -1;
    }
    if (take_u(&c, 4, &out->id) != 0 || take_u(&c, 1, &status) != 0 ||
        take_u(&c, 1, &device_len) != 0 ||
        take_string(&c, device_len, out->device, TUN_REQUEST_DEVICE_MAX) != 0 ||
        take_u(&c, 1, &reason_len) != 0 ||
        take_string(&c, reason_len, out->reason, TUN_REQUEST_REASON_MAX) != 0)
        return -1;
    if (c.at != len) {
        *why = "bytes after the reply";
        return -1;
    }
    out->refused = status == 1;
    if (status > 1 || (out->refused ? device_len != 0 || reason_len == 0
                                    : reason_len != 0 || !name_ok(out->device, TUN_REQUEST_DEVICE_MAX, 1))) {
        *why = "status, device name and reason do not agree";
        return -1;
    }
    for (size_t i = 0; i < reason_len; i++)
        if (!printable((unsigned char)out->reason[i], 1)) {
            *why = "reason not printable";
            return -1;
        }
    *why = "ok";
    return 0;
}
