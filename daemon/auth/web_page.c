#include "auth/web_page.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>

static const char style[] =
    "body{font:16px/1.4 system-ui,sans-serif;background:#f3f4f6;color:#111;margin:0}"
    "main{max-width:26em;margin:12vh auto;background:#fff;padding:2em;border-radius:8px;"
    "box-shadow:0 1px 4px rgba(0,0,0,.15)}"
    "h1{font-size:1.3em;margin:0 0 .8em}.who{color:#555;font-size:.9em}"
    ".note{white-space:pre-wrap;background:#eef;padding:.5em}"
    ".error{white-space:pre-wrap;background:#fde8e8;color:#8a1010;padding:.5em}"
    "label{display:block;margin:1em 0 .3em}"
    "input[name=answer]{width:100%;box-sizing:border-box;font-size:1.2em;padding:.4em}"
    "button{margin-top:1em;font-size:1em;padding:.5em 1.5em}";

/* An output buffer; FAILED once something did not fit. */
struct out {
    char *buf;
    size_t cap, len;
    int failed;
};

__attribute__((format(printf, 2, 3))) static void put(struct out *o, const char *format, ...)
{
    if (o->failed)
        return;
    va_list ap;
    va_start(ap, format);
    int n = vsnprintf(o->buf + o->len, o->cap - o->len, format, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len)
        o->failed = 1;
    else
        o->len += (size_t)n;
}

/* Appends TEXT HTML-escaped; control bytes but '\n' become spaces. */
static void put_escaped(struct out *o, const char *text)
{
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0' && !o->failed; p++) {
        switch (*p) {
        case '&': put(o, "&amp;"); break;
        case '<': put(o, "&lt;"); break;
        case '>': put(o, "&gt;"); break;
        case '"': put(o, "&quot;"); break;
        case '\'': put(o, "&#39;"); break;
        default: put(o, "%c", *p < 0x20 && *p != '\n' ? ' ' : (char)*p); break;
        }
    }
}

/* The CSP source of the inline style: 'sha256-BASE64', computed once. */
static const char *style_source(void)
{
    static char source[80];
    if (source[0] == '\0') {
        unsigned char digest[32];
        unsigned char b64[48];
        unsigned int len = 0;
        if (EVP_Digest(style, sizeof(style) - 1, digest, &len, EVP_sha256(), NULL) != 1 ||
            len != sizeof(digest))
            return "'none'";
        EVP_EncodeBlock(b64, digest, (int)len);
        snprintf(source, sizeof(source), "'sha256-%s'", (const char *)b64);
    }
    return source;
}

const char *web_page_reason(int status)
{
    switch (status) {
    case 200: return "OK";
    case 303: return "See Other";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Content Too Large";
    case 503: return "Service Unavailable";
    default: return "Error";
    }
}

static void put_headers(struct out *o, int status, size_t body_len, int close)
{
    put(o, "HTTP/1.1 %d %s\r\n", status, web_page_reason(status));
    put(o, "Content-Type: text/html; charset=utf-8\r\nContent-Length: %zu\r\n", body_len);
    put(o, "Content-Security-Policy: default-src 'none'; style-src %s; form-action 'self'; "
           "frame-ancestors 'none'; base-uri 'none'\r\n", style_source());
    put(o, "X-Frame-Options: DENY\r\nCache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n"
           "X-Content-Type-Options: nosniff\r\n");
    put(o, "Connection: %s\r\n\r\n", close ? "close" : "keep-alive");
}

static void put_top(struct out *o, const char *title)
{
    put(o, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>");
    put_escaped(o, title);
    put(o, "</title><style>%s</style></head>\n<body><main><h1>", style);
    put_escaped(o, title);
    put(o, "</h1>\n");
}

/* Writes the headers, then the body built in BODY (unless HEAD), into OUT. */
static size_t finish(char *out, size_t cap, int status, const struct out *body, int close,
                     int head)
{
    struct out o = { out, cap, 0, 0 };
    if (body->failed)
        return 0;
    put_headers(&o, status, body->len, close);
    if (!head && !o.failed) {
        if (body->len >= cap - o.len)
            return 0;
        memcpy(out + o.len, body->buf, body->len);
        o.len += body->len;
    }
    return o.failed ? 0 : o.len;
}

size_t web_page_form(char *out, size_t cap, const struct web_page_form *form, int head)
{
    char body[WEB_PAGE_BODY_MAX];
    struct out b = { body, sizeof(body), 0, 0 };
    char title[200];
    snprintf(title, sizeof(title), "Log in to %s", form->tunnel);
    put_top(&b, title);
    put(&b, "<p class=\"who\">Certificate of ");
    put_escaped(&b, form->identity);
    put(&b, "</p>\n");
    if (form->error[0] != '\0') {
        put(&b, "<p class=\"error\" id=\"error\">");
        put_escaped(&b, form->error);
        put(&b, "</p>\n");
    }
    if (form->notes[0] != '\0') {
        put(&b, "<p class=\"note\">");
        put_escaped(&b, form->notes);
        put(&b, "</p>\n");
    }
    put(&b, "<form method=\"post\" action=\"%s\">"
            "<input type=\"hidden\" name=\"csrf\" value=\"", WEB_PAGE_FORM_PATH);
    put_escaped(&b, form->csrf);
    put(&b, "\"><label for=\"answer\">");
    put_escaped(&b, form->prompt);
    put(&b, "</label><input id=\"answer\" name=\"answer\" type=\"%s\" autocomplete=\"%s\" "
            "autofocus required><button type=\"submit\" id=\"submit\">Continue</button></form>\n"
            "</main></body></html>\n",
        form->echo_off ? "password" : "text", form->echo_off ? "one-time-code" : "off");
    return finish(out, cap, 200, &b, 0, head);
}

size_t web_page_message(char *out, size_t cap, int status, const char *title, const char *text,
                        const char *link, int close)
{
    char body[WEB_PAGE_BODY_MAX];
    struct out b = { body, sizeof(body), 0, 0 };
    put_top(&b, title);
    put(&b, "<p class=\"%s\" id=\"message\">", status >= 400 ? "error" : "note");
    put_escaped(&b, text);
    put(&b, "</p>\n");
    if (link != NULL) {
        put(&b, "<p><a href=\"");
        put_escaped(&b, link);
        put(&b, "\">Start again</a></p>\n");
    }
    put(&b, "</main></body></html>\n");
    return finish(out, cap, status, &b, close, 0);
}

size_t web_page_redirect(char *out, size_t cap, const char *location)
{
    struct out o = { out, cap, 0, 0 };
    put(&o, "HTTP/1.1 303 See Other\r\nLocation: %s\r\nContent-Length: 0\r\n"
            "Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\n"
            "Connection: close\r\n\r\n", location);
    return o.failed ? 0 : o.len;
}
