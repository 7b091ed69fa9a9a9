#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/http_request.h"

static enum http_parse_status parse(const char *text, struct http_request *req, size_t *used)
{
    return http_request_parse((const unsigned char *)text, strlen(text), req, used);
}

static void test_get(void **state)
{
    struct http_request req;
    size_t used = 0;
    (void)state;
    const char *text = "GET /app/?x=1 HTTP/1.1\r\nHost: gw\r\nAccept: */*\r\n\r\nGET /next";
    assert_int_equal(parse(text, &req, &used), HTTP_PARSE_OK);
    assert_int_equal(req.method, HTTP_METHOD_GET);
    assert_int_equal(req.target_len, strlen("/app/?x=1"));
    assert_memory_equal(req.target, "/app/?x=1", req.target_len);
    assert_int_equal(req.keep_alive, 1);
    assert_int_equal(req.body_len, 0);
    /* One request at a time: what follows is the next one's. */
    assert_int_equal(used, strlen(text) - strlen("GET /next"));

    assert_int_equal(parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", &req, &used),
                     HTTP_PARSE_OK);
    assert_int_equal(req.keep_alive, 0);
    assert_int_equal(parse("GET / HTTP/1.0\r\n\r\n", &req, &used), HTTP_PARSE_OK);
    assert_int_equal(req.keep_alive, 0);
    assert_int_equal(parse("DELETE / HTTP/1.1\r\n\r\n", &req, &used), HTTP_PARSE_OK);
    assert_int_equal(req.method, HTTP_METHOD_OTHER);
}

static void test_post(void **state)
{
    struct http_request req;
    size_t used = 0;
    (void)state;
    const char *text = "POST /login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded; "
                       "charset=UTF-8\r\ncontent-length: 11\r\n\r\na=1&otp=123";
    assert_int_equal(parse(text, &req, &used), HTTP_PARSE_OK);
    assert_int_equal(req.method, HTTP_METHOD_POST);
    assert_int_equal(req.form, 1);
    assert_int_equal(req.body_len, 11);
    assert_int_equal(used, strlen(text));
    /* The body is not all there yet. */
    assert_int_equal(http_request_parse((const unsigned char *)text, strlen(text) - 1, &req, &used),
                     HTTP_PARSE_NEED_MORE);
    assert_int_equal(parse("POST / HTTP/1.1\r\nContent-Type: text/plain\r\n\r\n", &req, &used),
                     HTTP_PARSE_OK);
    assert_int_equal(req.form, 0);
}

static void test_need_more(void **state)
{
    struct http_request req;
    size_t used = 0;
    (void)state;
    static const char *const partial[] = { "", "GET", "GET / HTTP/1.1\r", "GET / HTTP/1.1\r\n",
                                           "GET / HTTP/1.1\r\nHost: a\r\n\r" };
    for (size_t i = 0; i < sizeof(partial) / sizeof(partial[0]); i++)
        assert_int_equal(parse(partial[i], &req, &used), HTTP_PARSE_NEED_MORE);
}

static void test_refused(void **state)
{
    struct http_request req;
    size_t used = 0;
    (void)state;
    static const char *const bad[] = {
        "GET / HTTP/1.1\nHost: a\n\n",                      /* bare LF */
        "GET / HTTP/1.1\rHost: a\r\n\r\n",                   /* bare CR */
        "GET http://evil/ HTTP/1.1\r\n\r\n",                 /* absolute form */
        "GET / HTTP/2.0\r\n\r\n",
        "GET  / HTTP/1.1\r\n\r\n",
        "GET /a b HTTP/1.1\r\n\r\n",
        "GET / HTTP/1.1\r\nHost a\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
        "GET / HTTP/1.1\r\nBad Name: a\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 1x\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
        "POST / HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n",
        "\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(bad[i], &req, &used), HTTP_PARSE_BAD);
    }
    static const unsigned char nul[] = "GET /\0 HTTP/1.1\r\n\r\n";
    assert_int_equal(http_request_parse(nul, sizeof(nul) - 1, &req, &used), HTTP_PARSE_BAD);
    assert_int_equal(parse("POST / HTTP/1.1\r\nContent-Length: 2049\r\n\r\n", &req, &used),
                     HTTP_PARSE_TOO_LARGE);
    /* A header block that never ends is cut at the limit. */
    char big[HTTP_REQUEST_HEADER_MAX + 64];
    int n = snprintf(big, sizeof(big), "GET / HTTP/1.1\r\nX: ");
    memset(big + n, 'a', sizeof(big) - (size_t)n - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(parse(big, &req, &used), HTTP_PARSE_TOO_LARGE);
    assert_string_equal(http_request_parse_error(HTTP_PARSE_BAD), "malformed HTTP request");
}

static void test_form_field(void **state)
{
    static const char body[] = "csrf=ab12&otp=12+3%2F4&empty=&flag&bad=%zz&nul=a%00b";
    const unsigned char *b = (const unsigned char *)body;
    char out[16];
    size_t len = 99;
    (void)state;
    assert_int_equal(http_request_form_field(b, strlen(body), "otp", out, sizeof(out), &len), 1);
    assert_string_equal(out, "12 3/4");
    assert_int_equal(len, 6);
    assert_int_equal(http_request_form_field(b, strlen(body), "csrf", out, sizeof(out), &len), 1);
    assert_string_equal(out, "ab12");
    assert_int_equal(http_request_form_field(b, strlen(body), "empty", out, sizeof(out), &len), 1);
    assert_int_equal(len, 0);
    assert_int_equal(http_request_form_field(b, strlen(body), "flag", out, sizeof(out), &len), 1);
    assert_int_equal(http_request_form_field(b, strlen(body), "none", out, sizeof(out), &len), 0);
    assert_int_equal(http_request_form_field(b, strlen(body), "bad", out, sizeof(out), &len), -1);
    assert_int_equal(http_request_form_field(b, strlen(body), "nul", out, sizeof(out), &len), -1);
    /* Too long for OUT. */
    assert_int_equal(http_request_form_field(b, strlen(body), "otp", out, 4, &len), -1);
    assert_int_equal(out[0], '\0');
}

static void test_local_path(void **state)
{
    (void)state;
    static const char *const good[] = { "/", "/app/page?x=1#y", "/a//b" };
    static const char *const bad[] = { "", "//evil.example/", "/\\evil", "http://evil/",
                                       "evil", "/a b", "/a\\b" };
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        assert_int_equal(http_request_local_path(good[i], strlen(good[i])), 1);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(http_request_local_path(bad[i], strlen(bad[i])), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get),        cmocka_unit_test(test_post),
        cmocka_unit_test(test_need_more),  cmocka_unit_test(test_refused),
        cmocka_unit_test(test_form_field), cmocka_unit_test(test_local_path),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
