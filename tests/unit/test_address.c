#include <arpa/inet.h>
#include <netinet/in.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include <cmocka.h>

#include "core/address.h"

/* Set when main() moved us into a private network namespace: a name lookup there can
 * only fail, and never leaves the machine. */
static int isolated_network;

static void assert_parses_inet(const char *text, const char *host, uint16_t port)
{
    struct address addr;
    const char *reason = NULL;

    if (address_parse(text, &addr, &reason) != 0)
        fail_msg("'%s' rejected: %s", text, reason);
    assert_int_equal(addr.kind, ADDRESS_INET);
    assert_string_equal(addr.host, host);
    assert_int_equal(addr.port, port);
}

static void assert_rejected(const char *text, const char *expected_reason)
{
    struct address addr;
    const char *reason = NULL;

    memset(&addr, 0x5a, sizeof(addr));
    if (address_parse(text, &addr, &reason) == 0)
        fail_msg("'%s' accepted", text);
    assert_non_null(reason);
    if (strcmp(reason, expected_reason) != 0)
        fail_msg("'%s': reason '%s', expected '%s'", text, reason, expected_reason);
    assert_int_equal((unsigned char)addr.host[0], 0x5a);   /* untouched on error */
}

static void test_parse_ipv4_and_names(void **state)
{
    (void)state;
    assert_parses_inet("127.0.0.1:8080", "127.0.0.1", 8080);
    assert_parses_inet("0.0.0.0:443", "0.0.0.0", 443);
    assert_parses_inet("*:443", "*", 443);
    assert_parses_inet("backend.example.com:1", "backend.example.com", 1);
    assert_parses_inet("intranet-web_01:65535", "intranet-web_01", 65535);
}

static void test_parse_ipv6(void **state)
{
    (void)state;
    assert_parses_inet("[::1]:443", "::1", 443);
    assert_parses_inet("[::]:8443", "::", 8443);
    assert_parses_inet("[2001:db8::10]:22", "2001:db8::10", 22);
    assert_parses_inet("[fe80::1%eth0]:80", "fe80::1%eth0", 80);
    assert_parses_inet("[::ffff:192.0.2.1]:80", "::ffff:192.0.2.1", 80);
}

static void test_parse_unix(void **state)
{
    struct address addr;
    const char *reason = NULL;
    (void)state;

    assert_int_equal(address_parse("unix:/run/app.sock", &addr, &reason), 0);
    assert_int_equal(addr.kind, ADDRESS_UNIX);
    assert_string_equal(addr.path, "/run/app.sock");

    char longest[5 + 107 + 1];
    memcpy(longest, "unix:/", 6);
    memset(longest + 6, 'p', 106);
    longest[5 + 107] = '\0';
    assert_int_equal(address_parse(longest, &addr, &reason), 0);
    assert_int_equal(strlen(addr.path), 107);
}

static void test_parse_systemd(void **state)
{
    struct address addr;
    const char *reason = NULL;
    char shown[300], err[200];
    struct sockaddr_storage ss;
    socklen_t sslen;
    (void)state;

    assert_int_equal(address_parse("systemd:web-tls", &addr, &reason), 0);
    assert_int_equal(addr.kind, ADDRESS_SYSTEMD);
    assert_string_equal(addr.fd_name, "web-tls");
    assert_string_equal(address_format(&addr, shown, sizeof(shown)), "systemd:web-tls");
    assert_int_equal(address_resolve(&addr, &ss, &sslen, err, sizeof(err)), -1);

    assert_int_equal(address_parse("systemd:", &addr, &reason), -1);
    assert_string_equal(reason, "missing socket name after systemd:");
    assert_int_equal(address_parse("systemd:a:b", &addr, &reason), -1);
    assert_int_equal(address_parse("systemd:a b", &addr, &reason), -1);
    assert_string_equal(reason, "systemd socket names are printable ASCII without ':' or blanks");
    char longest[8 + 256 + 1];
    memcpy(longest, "systemd:", 8);
    memset(longest + 8, 'n', 256);
    longest[8 + 256] = '\0';
    assert_int_equal(address_parse(longest, &addr, &reason), -1);
    longest[8 + 255] = '\0';
    assert_int_equal(address_parse(longest, &addr, &reason), 0);
}

static void test_parse_errors(void **state)
{
    (void)state;
    assert_rejected("", "empty");
    assert_rejected("127.0.0.1", "missing port");
    assert_rejected("example.com", "missing port");
    assert_rejected("127.0.0.1:", "missing port");
    assert_rejected("127.0.0.1:0", "port out of range (1-65535)");
    assert_rejected("127.0.0.1:65536", "port out of range (1-65535)");
    assert_rejected("127.0.0.1:99999999999999999999", "port out of range (1-65535)");
    assert_rejected("127.0.0.1:http", "port must be a number");
    assert_rejected("127.0.0.1:+80", "port must be a number");
    assert_rejected("127.0.0.1:-1", "port must be a number");
    assert_rejected(":443", "missing host (use *:PORT for every address)");
    assert_rejected("::1:443", "IPv6 literal needs brackets");
    assert_rejected("2001:db8::1:443", "IPv6 literal needs brackets");
    assert_rejected("::1", "IPv6 literal needs brackets");
    assert_rejected("[::1]", "missing port");
    assert_rejected("[::1]:", "missing port");
    assert_rejected("[::1]443", "expected ':' and a port after ']'");
    assert_rejected("[::1:443", "missing ']' after IPv6 address");
    assert_rejected("[]:443", "missing IPv6 address between '[' and ']'");
    assert_rejected("[127.0.0.1]:443", "invalid IPv6 address in brackets");
    assert_rejected("[example.com]:443", "invalid IPv6 address in brackets");
    assert_rejected("exa mple.com:443", "invalid host name");
    assert_rejected("a*b:443", "invalid host name");
    assert_rejected("unix:", "missing unix socket path");
    assert_rejected("unix:run/app.sock", "unix socket path must be absolute");

    char too_long[5 + 108 + 1];
    memcpy(too_long, "unix:/", 6);
    memset(too_long + 6, 'p', 107);
    too_long[5 + 108] = '\0';
    assert_rejected(too_long, "unix socket path too long (at most 107 bytes)");
}

static void test_format_round_trip(void **state)
{
    static const char *const inputs[] = {
        "127.0.0.1:8080", "[::1]:443", "*:443", "unix:/run/x.sock", "host.example:22",
        "[fe80::1%eth0]:80",
    };
    (void)state;

    for (size_t i = 0; i < sizeof(inputs) / sizeof(inputs[0]); i++) {
        struct address addr;
        const char *reason;
        char shown[300];
        assert_int_equal(address_parse(inputs[i], &addr, &reason), 0);
        assert_ptr_equal(address_format(&addr, shown, sizeof(shown)), shown);
        assert_string_equal(shown, inputs[i]);
    }
}

static void resolve_and_format(const char *text, const char *expected)
{
    struct address addr;
    const char *reason;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    char err[256] = "";
    char shown[300];

    assert_int_equal(address_parse(text, &addr, &reason), 0);
    if (address_resolve(&addr, &ss, &len, err, sizeof(err)) != 0)
        fail_msg("%s: %s", text, err);
    address_format_sockaddr((struct sockaddr *)&ss, len, shown, sizeof(shown));
    assert_string_equal(shown, expected);
}

static void test_resolve_literals(void **state)
{
    (void)state;
    resolve_and_format("127.0.0.1:8080", "127.0.0.1:8080");
    resolve_and_format("[::1]:443", "[::1]:443");
    resolve_and_format("[2001:db8::10]:22", "[2001:db8::10]:22");
    resolve_and_format("localhost:80", "127.0.0.1:80");
    resolve_and_format("unix:/run/ktlstun/x.sock", "unix:/run/ktlstun/x.sock");
}

static void test_resolve_wildcard_is_passive(void **state)
{
    struct address addr;
    const char *reason;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    char err[256];
    (void)state;

    assert_int_equal(address_parse("*:8443", &addr, &reason), 0);
    assert_int_equal(address_resolve(&addr, &ss, &len, err, sizeof(err)), 0);
    if (ss.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&ss;
        assert_int_equal(in->sin_addr.s_addr, htonl(INADDR_ANY));
        assert_int_equal(ntohs(in->sin_port), 8443);
    } else {
        assert_int_equal(ss.ss_family, AF_INET6);
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;
        assert_true(IN6_IS_ADDR_UNSPECIFIED(&in6->sin6_addr));
        assert_int_equal(ntohs(in6->sin6_port), 8443);
    }
}

static void test_resolve_unix_length(void **state)
{
    struct address addr;
    const char *reason;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    char err[256];
    (void)state;

    assert_int_equal(address_parse("unix:/tmp/s", &addr, &reason), 0);
    assert_int_equal(address_resolve(&addr, &ss, &len, err, sizeof(err)), 0);
    assert_int_equal(ss.ss_family, AF_UNIX);
    assert_int_equal(len, offsetof(struct sockaddr_un, sun_path) + strlen("/tmp/s") + 1);
    assert_string_equal(((struct sockaddr_un *)&ss)->sun_path, "/tmp/s");
}

static void test_resolve_failure(void **state)
{
    struct address addr;
    const char *reason;
    struct sockaddr_storage ss;
    socklen_t len = 0;
    char err[256] = "";
    (void)state;

    if (!isolated_network)
        skip();   /* a lookup outside a private namespace could reach a real resolver */
    assert_int_equal(address_parse("no-such-host.invalid:80", &addr, &reason), 0);
    assert_int_equal(address_resolve(&addr, &ss, &len, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "cannot resolve no-such-host.invalid: "));
}

static void test_format_sockaddr(void **state)
{
    char shown[200];
    struct sockaddr_in in = { .sin_family = AF_INET, .sin_port = htons(5) };
    struct sockaddr_in6 in6 = { .sin6_family = AF_INET6, .sin6_port = htons(5) };
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    (void)state;

    inet_pton(AF_INET, "1.2.3.4", &in.sin_addr);
    address_format_sockaddr((struct sockaddr *)&in, sizeof(in), shown, sizeof(shown));
    assert_string_equal(shown, "1.2.3.4:5");

    in6.sin6_addr = in6addr_loopback;
    address_format_sockaddr((struct sockaddr *)&in6, sizeof(in6), shown, sizeof(shown));
    assert_string_equal(shown, "[::1]:5");

    strcpy(un.sun_path, "/run/a.sock");
    address_format_sockaddr((struct sockaddr *)&un,
                            (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 12), shown,
                            sizeof(shown));
    assert_string_equal(shown, "unix:/run/a.sock");

    /* An unnamed socket (socketpair, unbound client) has only the family. */
    address_format_sockaddr((struct sockaddr *)&un, sizeof(sa_family_t), shown, sizeof(shown));
    assert_string_equal(shown, "unix");

    /* Too short for its family: never read past LEN. */
    address_format_sockaddr((struct sockaddr *)&in, 4, shown, sizeof(shown));
    assert_string_equal(shown, "unknown");

    /* Truncation keeps the string terminated. */
    address_format_sockaddr((struct sockaddr *)&in, sizeof(in), shown, 4);
    assert_string_equal(shown, "1.2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ipv4_and_names),
        cmocka_unit_test(test_parse_ipv6),
        cmocka_unit_test(test_parse_unix),
        cmocka_unit_test(test_parse_systemd),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_format_round_trip),
        cmocka_unit_test(test_resolve_literals),
        cmocka_unit_test(test_resolve_wildcard_is_passive),
        cmocka_unit_test(test_resolve_unix_length),
        cmocka_unit_test(test_resolve_failure),
        cmocka_unit_test(test_format_sockaddr),
    };
    isolated_network = unshare(CLONE_NEWNET) == 0;
    if (!isolated_network)
        fprintf(stderr, "note: no private network namespace (not root?): "
                        "name-lookup failure test skipped\n");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
