#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include <cmocka.h>

#include "proto/proxy_header.h"

#define SIGNATURE "\r\n\r\n\0\r\nQUIT\n"
#define SHA "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static struct sockaddr_in v4(const char *ip, uint16_t port)
{
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
    inet_pton(AF_INET, ip, &a.sin_addr);
    return a;
}

static struct sockaddr_in6 v6(const char *ip, uint16_t port)
{
    struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons(port) };
    inet_pton(AF_INET6, ip, &a.sin6_addr);
    return a;
}

static size_t u16(const unsigned char *p)
{
    return (size_t)p[0] << 8 | p[1];
}

/* Finds TYPE among the TLVs from P to END; returns its value and length, or NULL. */
static const unsigned char *find_tlv(const unsigned char *p, const unsigned char *end,
                                     unsigned type, size_t *len)
{
    while (p + 3 <= end) {
        size_t l = u16(p + 1);
        assert_true(p + 3 + l <= end);
        if (p[0] == type) {
            *len = l;
            return p + 3;
        }
        p += 3 + l;
    }
    return NULL;
}

static void assert_tlv(const unsigned char *p, const unsigned char *end, unsigned type,
                       const char *expected)
{
    size_t len = 0;
    const unsigned char *value = find_tlv(p, end, type, &len);
    if (value == NULL)
        fail_msg("TLV 0x%02x missing", type);
    assert_int_equal(len, strlen(expected));
    assert_memory_equal(value, expected, len);
}

static const struct proxy_header_tls full = {
    "TLSv1.3", "TLS_AES_256_GCM_SHA384", "alice", SHA, "alice.smith",
};

/* Checks the TLVs after the address block at TLVS (to END) against FULL. */
static void assert_tls_tlvs(const unsigned char *tlvs, const unsigned char *end)
{
    size_t len = 0;
    const unsigned char *ssl = find_tlv(tlvs, end, PROXY_HEADER_TLV_SSL, &len);
    assert_non_null(ssl);
    assert_int_equal(ssl[0], PROXY_HEADER_CLIENT_SSL | PROXY_HEADER_CLIENT_CERT_CONN |
                                 PROXY_HEADER_CLIENT_CERT_SESS);
    assert_memory_equal(ssl + 1, "\0\0\0\0", 4);
    assert_tlv(ssl + 5, ssl + len, PROXY_HEADER_SUBTLV_SSL_VERSION, "TLSv1.3");
    assert_tlv(ssl + 5, ssl + len, PROXY_HEADER_SUBTLV_SSL_CIPHER, "TLS_AES_256_GCM_SHA384");
    assert_tlv(ssl + 5, ssl + len, PROXY_HEADER_SUBTLV_SSL_CN, "alice");
    assert_tlv(tlvs, end, PROXY_HEADER_TLV_CERT_SHA256, SHA);
    assert_tlv(tlvs, end, PROXY_HEADER_TLV_USER, "alice.smith");
}

static void test_ipv4(void **state)
{
    (void)state;
    unsigned char out[PROXY_HEADER_MAX];
    struct sockaddr_in src = v4("192.0.2.7", 40000), dst = v4("127.0.0.1", 8443);

    size_t n = proxy_header_build((struct sockaddr *)&src, (struct sockaddr *)&dst, &full, out,
                                  sizeof(out));
    assert_true(n > 28);
    assert_memory_equal(out, SIGNATURE, 12);
    assert_int_equal(out[12], 0x21);
    assert_int_equal(out[13], 0x11);
    assert_int_equal(u16(out + 14), n - 16);
    const unsigned char addrs[12] = { 192, 0, 2, 7, 127, 0, 0, 1, 0x9c, 0x40, 0x20, 0xfb };
    assert_memory_equal(out + 16, addrs, sizeof(addrs));
    assert_tls_tlvs(out + 28, out + n);
}

static void test_ipv6_and_mapped(void **state)
{
    (void)state;
    unsigned char out[PROXY_HEADER_MAX];
    struct sockaddr_in6 src = v6("2001:db8::7", 1), dst = v6("::1", 2);

    size_t n = proxy_header_build((struct sockaddr *)&src, (struct sockaddr *)&dst, &full, out,
                                  sizeof(out));
    assert_int_equal(out[13], 0x21);
    assert_memory_equal(out + 16, &src.sin6_addr, 16);
    assert_memory_equal(out + 32, &dst.sin6_addr, 16);
    assert_int_equal(u16(out + 48), 1);
    assert_int_equal(u16(out + 50), 2);
    assert_tls_tlvs(out + 52, out + n);

    /* A v4 client on a dual-stack listener is a v4 client. */
    src = v6("::ffff:198.51.100.9", 5);
    dst = v6("::ffff:127.0.0.1", 6);
    n = proxy_header_build((struct sockaddr *)&src, (struct sockaddr *)&dst, &full, out, sizeof(out));
    assert_int_equal(out[13], 0x11);
    const unsigned char addrs[12] = { 198, 51, 100, 9, 127, 0, 0, 1, 0, 5, 0, 6 };
    assert_memory_equal(out + 16, addrs, sizeof(addrs));
    assert_tls_tlvs(out + 28, out + n);
}

static void test_unspec(void **state)
{
    (void)state;
    unsigned char out[PROXY_HEADER_MAX];
    struct sockaddr_un_like { sa_family_t family; char path[20]; } src = { AF_UNIX, "x" };

    size_t n = proxy_header_build((struct sockaddr *)&src, (struct sockaddr *)&src, &full, out,
                                  sizeof(out));
    assert_int_equal(out[13], 0x00);
    assert_int_equal(u16(out + 14), n - 16);
    assert_tls_tlvs(out + 16, out + n);
}

static void test_limits(void **state)
{
    (void)state;
    unsigned char out[PROXY_HEADER_MAX];
    struct sockaddr_in src = v4("192.0.2.7", 1), dst = v4("127.0.0.1", 2);
    char long_cn[300];
    memset(long_cn, 'a', sizeof(long_cn) - 1);
    long_cn[sizeof(long_cn) - 1] = '\0';
    struct proxy_header_tls tls = full;
    tls.cn = long_cn;
    assert_int_equal(proxy_header_build((struct sockaddr *)&src, (struct sockaddr *)&dst, &tls,
                                        out, sizeof(out)), 0);
    /* Every field at its longest still fits PROXY_HEADER_MAX. */
    long_cn[255] = '\0';
    struct proxy_header_tls longest = { long_cn, long_cn, long_cn, long_cn, long_cn };
    struct sockaddr_in6 s6 = v6("2001:db8::1", 1);
    assert_true(proxy_header_build((struct sockaddr *)&s6, (struct sockaddr *)&s6, &longest,
                                   out, sizeof(out)) > 0);
    size_t n = proxy_header_build((struct sockaddr *)&src, (struct sockaddr *)&dst, &full, out,
                                  sizeof(out));
    for (size_t cap = 0; cap < n; cap++)
        assert_int_equal(proxy_header_build((struct sockaddr *)&src, (struct sockaddr *)&dst,
                                            &full, out, cap), 0);
    /* Left out: empty or missing fields, and the certificate bits without a certificate. */
    struct proxy_header_tls bare = { "TLSv1.2", NULL, NULL, "", NULL };
    n = proxy_header_build((struct sockaddr *)&src, (struct sockaddr *)&dst, &bare, out,
                           sizeof(out));
    assert_int_equal(n, 16 + 12 + 3 + 5 + 3 + 7);
    assert_int_equal(out[28 + 3], PROXY_HEADER_CLIENT_SSL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4),
        cmocka_unit_test(test_ipv6_and_mapped),
        cmocka_unit_test(test_unspec),
        cmocka_unit_test(test_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
