#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proto/http_connect.h"

static void test_request(void **state)
{
    (void)state;
    char out[HTTP_CONNECT_REQUEST_MAX];
    size_t n = http_connect_request("server.example", 443, NULL, out, sizeof(out));
    assert_string_equal(out, "CONNECT server.example:443 HTTP/1.1\r\nHost: server.example:443\r\n\r\n");
    assert_int_equal(n, strlen(out));
    n = http_connect_request("2001:db8::1", 8443, "dXNlcjpwYXNz", out, sizeof(out));
    assert_string_equal(out, "CONNECT [2001:db8::1]:8443 HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n"
                             "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n");
    assert_int_equal(n, strlen(out));
    /* Nothing that would split or bend the request line. */
    assert_int_equal(http_connect_request("a b", 1, NULL, out, sizeof(out)), 0);
    assert_int_equal(http_connect_request("a\r\nX: y", 1, NULL, out, sizeof(out)), 0);
    assert_int_equal(http_connect_request("", 1, NULL, out, sizeof(out)), 0);
    assert_int_equal(http_connect_request("host", 1, "ab\r\n", out, sizeof(out)), 0);
    assert_int_equal(http_connect_request("server.example", 443, NULL, out, 20), 0);
}

static int parse(const char *text, struct http_connect_reply *reply)
{
    return http_connect_parse(text, strlen(text), reply);
}

static void test_replies(void **state)
{
    (void)state;
    struct http_connect_reply r;
    const char *ok = "HTTP/1.1 200 Connection established\r\nProxy-agent: x\r\n\r\n\x16\x03";
    assert_int_equal(parse(ok, &r), 1);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.head_len, strlen(ok) - 2);
    assert_string_equal(r.status_line, "HTTP/1.1 200 Connection established");

    assert_int_equal(parse("HTTP/1.0 407 Proxy Authentication Required\n\n", &r), 1);
    assert_int_equal(r.status, 407);
    assert_int_equal(parse("HTTP/1.1 403\r\n\r\n", &r), 1);
    assert_int_equal(r.status, 403);
    assert_string_equal(r.status_line, "HTTP/1.1 403");

    /* Not yet complete: every prefix of a good reply asks for more. */
    for (size_t i = 0; i < strlen(ok) - 2; i++)
        assert_int_equal(http_connect_parse(ok, i, &r), 0);
}

/* Writes TEXT at AT without its NUL: inside a buffer that goes on. */
static void place(char *at, const char *text)
{
    for (; *text != '\0'; text++)
        *at++ = *text;
}

static void test_refused(void **state)
{
    (void)state;
    struct http_connect_reply r;
    assert_int_equal(parse("SSH-2.0-OpenSSH\r\n\r\n", &r), -1);
    assert_string_equal(r.problem, "not an HTTP reply");
    assert_string_equal(r.status_line, "SSH-2.0-OpenSSH");
    assert_int_equal(parse("HTTP/1.1 20 OK\r\n\r\n", &r), -1);
    assert_int_equal(parse("HTTP/1.1 2000 OK\r\n\r\n", &r), -1);
    assert_int_equal(parse("HTTP/1.1 099 x\r\n\r\n", &r), -1);
    assert_int_equal(parse("HTTP/1.1 403 \x1b[31mred\x01\r\n\r\n", &r), 1);
    assert_string_equal(r.status_line, "HTTP/1.1 403 ?[31mred?");

    static char big[HTTP_CONNECT_REPLY_MAX + 10];
    memset(big, 'a', sizeof(big));
    place(big, "HTTP/1.1 200 OK\r\n");
    assert_int_equal(http_connect_parse(big, HTTP_CONNECT_REPLY_MAX - 1, &r), 0);
    assert_int_equal(http_connect_parse(big, sizeof(big), &r), -1);
    assert_string_equal(r.problem, "reply headers too long");
    assert_string_equal(r.status_line, "HTTP/1.1 200 OK");
    /* The blank line past the limit does not count. */
    place(big + HTTP_CONNECT_REPLY_MAX, "\r\n\r\n");
    assert_int_equal(http_connect_parse(big, sizeof(big), &r), -1);
}

static void test_judge(void **state)
{
    (void)state;
    struct http_connect_reply r;
    char reason[300];
    const char *ok = "HTTP/1.1 200 OK\r\n\r\n";
    assert_int_equal(parse(ok, &r), 1);
    assert_int_equal(http_connect_judge(&r, strlen(ok), "p:1", "h", 443, NULL, reason,
                                        sizeof(reason)), 1);
    assert_int_equal(http_connect_judge(&r, strlen(ok) + 1, "p:1", "h", 443, NULL, reason,
                                        sizeof(reason)), 0);
    assert_string_equal(reason, "proxy p:1 sent data past its reply to CONNECT");
    assert_int_equal(parse("HTTP/1.1 204 Fine\r\n\r\n", &r), 1);
    assert_int_equal(http_connect_judge(&r, r.head_len, "p:1", "h", 443, NULL, reason,
                                        sizeof(reason)), 1);
    for (unsigned status = 401; status <= 407; status += 6) {
        char text[64];
        snprintf(text, sizeof(text), "HTTP/1.1 %u No\r\n\r\n", status);
        assert_int_equal(parse(text, &r), 1);
        assert_int_equal(http_connect_judge(&r, r.head_len, "p:1", "h", 443, NULL, reason,
                                            sizeof(reason)), 0);
        assert_string_equal(reason, "proxy p:1: proxy authentication required (set proxy_credentials)");
        assert_int_equal(http_connect_judge(&r, r.head_len, "p:1", "h", 443, "/c", reason,
                                            sizeof(reason)), 0);
        assert_string_equal(reason, "proxy p:1 refused the credentials in /c");
    }
    assert_int_equal(parse("HTTP/1.1 100 Continue\r\n\r\n", &r), 1);
    assert_int_equal(http_connect_judge(&r, r.head_len, "p:1", "h", 443, NULL, reason,
                                        sizeof(reason)), 0);
    assert_string_equal(reason, "proxy p:1 refused CONNECT to h:443: \"HTTP/1.1 100 Continue\"");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request),
        cmocka_unit_test(test_replies),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_judge),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
