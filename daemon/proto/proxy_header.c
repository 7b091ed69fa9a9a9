#include "proto/proxy_header.h"

#include <netinet/in.h>
#include <stdint.h>
#include <string.h>

#define SIGNATURE "\r\n\r\n\0\r\nQUIT\n"
#define SIGNATURE_LEN 12
#define VERSION_PROXY 0x21          /* version 2, command PROXY */
#define FAMILY_UNSPEC 0x00
#define FAMILY_INET_STREAM 0x11
#define FAMILY_INET6_STREAM 0x21
#define FIELD_MAX 255

struct writer {
    unsigned char *out;
    size_t cap, len;
    int failed;
};

static void put(struct writer *w, const void *bytes, size_t len)
{
    if (w->failed || len > w->cap - w->len) {
        w->failed = 1;
        return;
    }
    memcpy(w->out + w->len, bytes, len);
    w->len += len;
}

static void put_u8(struct writer *w, unsigned value)
{
    unsigned char byte = (unsigned char)value;
    put(w, &byte, 1);
}

static void put_u16(struct writer *w, size_t value)
{
    unsigned char bytes[2] = { (unsigned char)(value >> 8), (unsigned char)value };
    put(w, bytes, 2);
}

/* Writes the 16-bit length at AT, counting what was written after it. */
static void close_length(struct writer *w, size_t at)
{
    if (w->failed)
        return;
    size_t len = w->len - at - 2;
    w->out[at] = (unsigned char)(len >> 8);
    w->out[at + 1] = (unsigned char)len;
}

static int present(const char *value)
{
    return value != NULL && value[0] != '\0';
}

static void put_tlv(struct writer *w, unsigned type, const char *value)
{
    if (!present(value))
        return;
    size_t len = strlen(value);
    if (len > FIELD_MAX) {
        w->failed = 1;
        return;
    }
    put_u8(w, type);
    put_u16(w, len);
    put(w, value, len);
}

static int is_mapped_v4(const struct sockaddr_in6 *a)
{
    return IN6_IS_ADDR_V4MAPPED(&a->sin6_addr);
}

/* The address block: family byte and addresses, after the length's place. */
static void put_addresses(struct writer *w, const struct sockaddr *source,
                          const struct sockaddr *destination, size_t length_at)
{
    if (source == NULL || destination == NULL || source->sa_family != destination->sa_family) {
        w->out[length_at - 1] = FAMILY_UNSPEC;
        return;
    }
    if (source->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)source;
        const struct sockaddr_in *d = (const struct sockaddr_in *)destination;
        w->out[length_at - 1] = FAMILY_INET_STREAM;
        put(w, &s->sin_addr, 4);
        put(w, &d->sin_addr, 4);
        put(w, &s->sin_port, 2);
        put(w, &d->sin_port, 2);
    } else if (source->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)source;
        const struct sockaddr_in6 *d = (const struct sockaddr_in6 *)destination;
        if (is_mapped_v4(s) && is_mapped_v4(d)) {
            w->out[length_at - 1] = FAMILY_INET_STREAM;
            put(w, s->sin6_addr.s6_addr + 12, 4);
            put(w, d->sin6_addr.s6_addr + 12, 4);
        } else {
            w->out[length_at - 1] = FAMILY_INET6_STREAM;
            put(w, &s->sin6_addr, 16);
            put(w, &d->sin6_addr, 16);
        }
        put(w, &s->sin6_port, 2);
        put(w, &d->sin6_port, 2);
    } else {
        w->out[length_at - 1] = FAMILY_UNSPEC;
    }
}

size_t proxy_header_build(const struct sockaddr *source, const struct sockaddr *destination,
                          const struct proxy_header_tls *tls, unsigned char *out, size_t cap)
{
    struct writer w = { out, cap, 0, 0 };

    put(&w, SIGNATURE, SIGNATURE_LEN);
    put_u8(&w, VERSION_PROXY);
    put_u8(&w, FAMILY_UNSPEC);
    size_t length_at = w.len;
    put_u16(&w, 0);
    if (w.failed)
        return 0;
    put_addresses(&w, source, destination, length_at);

    /* verify = 0: the client's certificate was verified, or there would be no stream. */
    put_u8(&w, PROXY_HEADER_TLV_SSL);
    size_t ssl_at = w.len;
    put_u16(&w, 0);
    unsigned client = PROXY_HEADER_CLIENT_SSL;
    if (present(tls->cn) || present(tls->cert_sha256))
        client |= PROXY_HEADER_CLIENT_CERT_CONN | PROXY_HEADER_CLIENT_CERT_SESS;
    put_u8(&w, client);
    put(&w, "\0\0\0\0", 4);
    put_tlv(&w, PROXY_HEADER_SUBTLV_SSL_VERSION, tls->version);
    put_tlv(&w, PROXY_HEADER_SUBTLV_SSL_CN, tls->cn);
    put_tlv(&w, PROXY_HEADER_SUBTLV_SSL_CIPHER, tls->cipher);
    close_length(&w, ssl_at);
    put_tlv(&w, PROXY_HEADER_TLV_CERT_SHA256, tls->cert_sha256);
    put_tlv(&w, PROXY_HEADER_TLV_USER, tls->user);
    close_length(&w, length_at);
    return w.failed ? 0 : w.len;
}
