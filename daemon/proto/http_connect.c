#include "proto/http_connect.h"

#include <stdio.h>
#include <string.h>

static int host_char_ok(char c)
{
    return c > 0x20 && c < 0x7f && c != '/' && c != '@' && c != '[' && c != ']';
}

size_t http_connect_request(const char *host, uint16_t port, const char *basic, char *out,
                            size_t cap)
{
    char authority[300];
    int n;

    for (const char *c = host; *c != '\0'; c++)
        if (!host_char_ok(*c))
            return 0;
    if (host[0] == '\0' || strlen(host) > 255)
        return 0;
    n = snprintf(authority, sizeof(authority), strchr(host, ':') != NULL ? "[%s]:%u" : "%s:%u",
                 host, (unsigned)port);
    if (n < 0 || (size_t)n >= sizeof(authority))
        return 0;
    for (const char *c = basic; c != NULL && *c != '\0'; c++)
        if (!host_char_ok(*c) && *c != '/')
            return 0;
    n = snprintf(out, cap, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n%s%s%s\r\n", authority, authority,
                 basic != NULL ? "Proxy-Authorization: Basic " : "",
                 basic != NULL ? basic : "", basic != NULL ? "\r\n" : "");
    if (n < 0 || (size_t)n >= cap)
        return 0;
    return (size_t)n;
}

static int digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Copies the first line of DATA (LEN bytes) into REPLY's status_line. */
static void keep_status_line(const char *data, size_t len, struct http_connect_reply *reply)
{
    size_t i = 0;
    for (; i < len && i < HTTP_CONNECT_STATUS_LINE_MAX && data[i] != '\r' && data[i] != '\n'; i++) {
        char c = data[i];
        if (c < 0x20 || c >= 0x7f)
            c = '?';
        reply->status_line[i] = c;
    }
    reply->status_line[i] = '\0';
}

/* Returns the length of the head in DATA (through its blank line), or 0 if it has
 * none yet. A bare LF ends a line as well as CRLF. */
static size_t head_end(const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\n')
            continue;
        if (i + 1 < len && data[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && data[i + 1] == '\r' && data[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

int http_connect_parse(const char *data, size_t len, struct http_connect_reply *reply)
{
    static const char version[] = "HTTP/1.";
    const size_t vlen = sizeof(version) - 1;

    memset(reply, 0, sizeof(*reply));
    size_t compare = len < vlen ? len : vlen;
    if (memcmp(data, version, compare) != 0) {
        keep_status_line(data, len, reply);
        reply->problem = "not an HTTP reply";
        return -1;
    }
    size_t end = head_end(data, len < HTTP_CONNECT_REPLY_MAX ? len : HTTP_CONNECT_REPLY_MAX);
    if (end == 0) {
        if (len < HTTP_CONNECT_REPLY_MAX)
            return 0;
        keep_status_line(data, len, reply);
        reply->problem = "reply headers too long";
        return -1;
    }
    keep_status_line(data, end, reply);
    /* "HTTP/1.x SSS" and then a space or the line's end. */
    if (end < vlen + 6 || !digit(data[vlen]) || data[vlen + 1] != ' ' ||
        !digit(data[vlen + 2]) || !digit(data[vlen + 3]) || !digit(data[vlen + 4]) ||
        (data[vlen + 5] != ' ' && data[vlen + 5] != '\r' && data[vlen + 5] != '\n')) {
        reply->problem = "not an HTTP status line";
        return -1;
    }
    unsigned status = (unsigned)(data[vlen + 2] - '0') * 100 + (unsigned)(data[vlen + 3] - '0') * 10 +
                      (unsigned)(data[vlen + 4] - '0');
    if (status < 100 || status > 599) {
        reply->problem = "not an HTTP status";
        return -1;
    }
    reply->status = status;
    reply->head_len = end;
    return 1;
}

int http_connect_judge(const struct http_connect_reply *reply, size_t received,
                       const char *proxy, const char *host, unsigned port,
                       const char *credentials, char *reason, size_t len)
{
    /* Some proxies (tinyproxy) answer wrong credentials with 401: a CONNECT reaches no
     * origin server that could ask for its own. */
    int auth = reply->status == 407 || reply->status == 401;
    if (auth && credentials == NULL) {
        snprintf(reason, len, "proxy %s: proxy authentication required (set proxy_credentials)",
                 proxy);
        return 0;
    }
    if (auth) {
        snprintf(reason, len, "proxy %s refused the credentials in %s", proxy, credentials);
        return 0;
    }
    if (reply->status < 200 || reply->status > 299) {
        snprintf(reason, len, "proxy %s refused CONNECT to %s:%u: \"%s\"", proxy, host, port,
                 reply->status_line);
        return 0;
    }
    /* The server speaks only after our ClientHello: bytes past the reply are not its. */
    if (received > reply->head_len) {
        snprintf(reason, len, "proxy %s sent data past its reply to CONNECT", proxy);
        return 0;
    }
    return 1;
}
