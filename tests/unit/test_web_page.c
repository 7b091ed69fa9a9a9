#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "auth/web_page.h"

static const struct web_page_form sample = {
    .tunnel = "web", .identity = "alice", .notes = "", .error = "",
    .prompt = "One-time password: ", .echo_off = 1,
    .csrf = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff",
};

static void test_form_headers(void **state)
{
    char out[16384];
    (void)state;
    size_t len = web_page_form(out, sizeof(out), &sample, 0);
    assert_true(len > 0 && len < sizeof(out));
    out[len] = '\0';
    assert_memory_equal(out, "HTTP/1.1 200 OK\r\n", 17);
    assert_non_null(strstr(out, "\r\nContent-Security-Policy: default-src 'none'; style-src 'sha256-"));
    assert_non_null(strstr(out, "; form-action 'self'; frame-ancestors 'none'; base-uri 'none'\r\n"));
    assert_non_null(strstr(out, "\r\nX-Frame-Options: DENY\r\n"));
    assert_non_null(strstr(out, "\r\nCache-Control: no-store\r\n"));
    assert_non_null(strstr(out, "\r\nReferrer-Policy: no-referrer\r\n"));
    assert_non_null(strstr(out, "name=\"csrf\" value=\"00112233"));
    assert_non_null(strstr(out, "type=\"password\" autocomplete=\"one-time-code\""));
    assert_null(strstr(out, "<script"));
    /* Content-Length is the body's. */
    const char *body = strstr(out, "\r\n\r\n") + 4;
    char expected[128];
    snprintf(expected, sizeof(expected), "Content-Length: %zu\r\n", strlen(body));
    assert_non_null(strstr(out, expected));
    /* The CSP's hash is the inline style's. */
    const char *style = strstr(body, "<style>") + 7;
    size_t style_len = (size_t)(strstr(style, "</style>") - style);
    unsigned char digest[32], b64[48];
    unsigned int digest_len = 0;
    assert_int_equal(EVP_Digest(style, style_len, digest, &digest_len, EVP_sha256(), NULL), 1);
    EVP_EncodeBlock(b64, digest, (int)digest_len);
    snprintf(expected, sizeof(expected), "style-src 'sha256-%s'", (const char *)b64);
    assert_non_null(strstr(out, expected));
    /* HEAD: the same headers, no body. */
    char head[4096];
    size_t head_len = web_page_form(head, sizeof(head), &sample, 1);
    assert_int_equal(head_len, (size_t)(body - out));
    assert_memory_equal(head, out, head_len);
}

static void test_escaped(void **state)
{
    char out[16384];
    (void)state;
    struct web_page_form form = sample;
    form.prompt = "<script>alert(1)</script> & \"x\" 'y'\x01";
    form.identity = "<b>eve</b>";
    form.error = "Login failed: <img src=x>";
    form.notes = "line one\nline <two>";
    form.echo_off = 0;
    size_t len = web_page_form(out, sizeof(out), &form, 0);
    assert_true(len > 0);
    out[len] = '\0';
    assert_null(strstr(out, "<script>"));
    assert_null(strstr(out, "<b>"));
    assert_null(strstr(out, "<img"));
    assert_non_null(strstr(out, "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &quot;x&quot; &#39;y&#39; "));
    assert_non_null(strstr(out, "line one\nline &lt;two&gt;"));
    assert_non_null(strstr(out, "type=\"text\" autocomplete=\"off\""));
}

/* The largest texts web_login passes, each byte escaped to 5 or 6, still fit. */
static void test_worst_case_fits(void **state)
{
    static char notes[700], error[800], prompt[513], out[WEB_PAGE_BODY_MAX + 4096];
    (void)state;
    memset(notes, '\'', sizeof(notes) - 1);
    memset(error, '"', sizeof(error) - 1);
    memset(prompt, '&', sizeof(prompt) - 1);
    struct web_page_form form = sample;
    form.notes = notes, form.error = error, form.prompt = prompt;
    assert_true(web_page_form(out, sizeof(out), &form, 0) > 0);
}

static void test_message_and_redirect(void **state)
{
    char out[8192];
    (void)state;
    size_t len = web_page_message(out, sizeof(out), 403, "Locked", "Locked <now>", "/app/?a=1&b=2", 1);
    assert_true(len > 0);
    out[len] = '\0';
    assert_memory_equal(out, "HTTP/1.1 403 Forbidden\r\n", 24);
    assert_non_null(strstr(out, "\r\nConnection: close\r\n"));
    assert_non_null(strstr(out, "Locked &lt;now&gt;"));
    assert_non_null(strstr(out, "href=\"/app/?a=1&amp;b=2\""));
    len = web_page_redirect(out, sizeof(out), "/app/");
    out[len] = '\0';
    assert_string_equal(out, "HTTP/1.1 303 See Other\r\nLocation: /app/\r\nContent-Length: 0\r\n"
                             "Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n"
                             "Connection: close\r\n\r\n");
    /* Too small: nothing, never a cut response. */
    assert_int_equal(web_page_redirect(out, 20, "/app/"), 0);
    assert_int_equal(web_page_form(out, 600, &sample, 0), 0);
    assert_string_equal(web_page_reason(405), "Method Not Allowed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_form_headers),
        cmocka_unit_test(test_escaped),
        cmocka_unit_test(test_worst_case_fits),
        cmocka_unit_test(test_message_and_redirect),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
