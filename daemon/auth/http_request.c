#include "auth/http_request.h"

#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>

#include "core/text.h"

/* RFC 9110 tchar. */
static int is_token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int equals_nocase(const unsigned char *text, size_t len, const char *word)
{
    return len == strlen(word) && strncasecmp((const char *)text, word, len) == 0;
}

/* Returns the length of the header block (up to and including the empty line), 0
 * when it has not ended yet, or (size_t)-1 on a NUL, a bare CR or a bare LF. */
static size_t header_end(const unsigned char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (buf[i] == '\0')
            return (size_t)-1;
        if (buf[i] == '\n')
            return (size_t)-1;
        if (buf[i] != '\r')
            continue;
        if (i + 1 == len)
            return 0;
        if (buf[i + 1] != '\n')
            return (size_t)-1;
        if (i + 3 < len && buf[i + 2] == '\r' && buf[i + 3] == '\n')
            return i + 4;
        if (i + 2 < len && buf[i + 2] == '\r' && i + 3 == len)
            return 0;
        i++;
    }
    return 0;
}

static enum http_parse_status parse_request_line(const unsigned char *line, size_t len,
                                                 struct http_request *req, int *http10)
{
    const unsigned char *sp1 = memchr(line, ' ', len);
    if (sp1 == NULL || sp1 == line)
        return HTTP_PARSE_BAD;
    size_t method_len = (size_t)(sp1 - line);
    for (size_t i = 0; i < method_len; i++)
        if (!is_token_char(line[i]))
            return HTTP_PARSE_BAD;
    const unsigned char *target = sp1 + 1;
    const unsigned char *sp2 = memchr(target, ' ', len - method_len - 1);
    if (sp2 == NULL || sp2 == target)
        return HTTP_PARSE_BAD;
    size_t target_len = (size_t)(sp2 - target);
    if (target[0] != '/')
        return HTTP_PARSE_BAD;
    if (target_len > HTTP_REQUEST_TARGET_MAX)
        return HTTP_PARSE_TOO_LARGE;
    for (size_t i = 0; i < target_len; i++)
        if (target[i] <= 0x20 || target[i] >= 0x7f)
            return HTTP_PARSE_BAD;
    const unsigned char *version = sp2 + 1;
    size_t version_len = len - (size_t)(version - line);
    if (equals_nocase(version, version_len, "HTTP/1.1") && memcmp(version, "HTTP", 4) == 0)
        *http10 = 0;
    else if (equals_nocase(version, version_len, "HTTP/1.0") && memcmp(version, "HTTP", 4) == 0)
        *http10 = 1;
    else
        return HTTP_PARSE_BAD;
    if (method_len == 3 && memcmp(line, "GET", 3) == 0)
        req->method = HTTP_METHOD_GET;
    else if (method_len == 4 && memcmp(line, "HEAD", 4) == 0)
        req->method = HTTP_METHOD_HEAD;
    else if (method_len == 4 && memcmp(line, "POST", 4) == 0)
        req->method = HTTP_METHOD_POST;
    else
        req->method = HTTP_METHOD_OTHER;
    req->target = (const char *)target;
    req->target_len = target_len;
    return HTTP_PARSE_OK;
}

/* Content-Length: digits only, one value (a repeated header must agree). */
static enum http_parse_status parse_length(const unsigned char *value, size_t len, long *length)
{
    size_t number = 0;
    if (len == 0 || len > 9)
        return len == 0 ? HTTP_PARSE_BAD : HTTP_PARSE_TOO_LARGE;
    for (size_t i = 0; i < len; i++) {
        if (value[i] < '0' || value[i] > '9')
            return HTTP_PARSE_BAD;
        number = number * 10 + (size_t)(value[i] - '0');
    }
    if (*length >= 0 && (size_t)*length != number)
        return HTTP_PARSE_BAD;
    if (number > HTTP_REQUEST_BODY_MAX)
        return HTTP_PARSE_TOO_LARGE;
    *length = (long)number;
    return HTTP_PARSE_OK;
}

static enum http_parse_status parse_header(const unsigned char *line, size_t len,
                                           struct http_request *req, int *close, long *length)
{
    const unsigned char *colon = memchr(line, ':', len);
    if (colon == NULL || colon == line)
        return HTTP_PARSE_BAD;
    size_t name_len = (size_t)(colon - line);
    for (size_t i = 0; i < name_len; i++)
        if (!is_token_char(line[i]))
            return HTTP_PARSE_BAD;
    const unsigned char *value = colon + 1;
    size_t value_len = len - name_len - 1;
    while (value_len > 0 && (value[0] == ' ' || value[0] == '\t'))
        value++, value_len--;
    while (value_len > 0 && (value[value_len - 1] == ' ' || value[value_len - 1] == '\t'))
        value_len--;
    for (size_t i = 0; i < value_len; i++)
        if ((value[i] < 0x20 && value[i] != '\t') || value[i] == 0x7f)
            return HTTP_PARSE_BAD;
    if (equals_nocase(line, name_len, "Content-Length"))
        return parse_length(value, value_len, length);
    if (equals_nocase(line, name_len, "Transfer-Encoding"))
        return HTTP_PARSE_BAD;
    if (equals_nocase(line, name_len, "Connection")) {
        if (equals_nocase(value, value_len, "close"))
            *close = 1;
    } else if (equals_nocase(line, name_len, "Content-Type")) {
        static const char form[] = "application/x-www-form-urlencoded";
        size_t form_len = sizeof(form) - 1;
        req->form = value_len >= form_len && strncasecmp((const char *)value, form, form_len) == 0 &&
                    (value_len == form_len || value[form_len] == ';' || value[form_len] == ' ');
    }
    return HTTP_PARSE_OK;
}

enum http_parse_status http_request_parse(const unsigned char *buf, size_t len,
                                          struct http_request *req, size_t *consumed)
{
    size_t scan = len < HTTP_REQUEST_HEADER_MAX ? len : HTTP_REQUEST_HEADER_MAX;
    size_t head = header_end(buf, scan);
    if (head == (size_t)-1)
        return HTTP_PARSE_BAD;
    if (head == 0)
        return len >= HTTP_REQUEST_HEADER_MAX ? HTTP_PARSE_TOO_LARGE : HTTP_PARSE_NEED_MORE;
    memset(req, 0, sizeof(*req));
    int http10 = 0, close = 0;
    long length = -1;
    /* Every line ends in CRLF (header_end saw to it); the last one is empty. */
    const unsigned char *line = buf;
    const unsigned char *end = buf + head - 2;
    int first = 1;
    while (line < end) {
        const unsigned char *cr = memchr(line, '\r', (size_t)(end - line));
        size_t line_len = (size_t)(cr - line);
        enum http_parse_status status;
        if (first)
            status = parse_request_line(line, line_len, req, &http10);
        else if (line_len == 0 || line[0] == ' ' || line[0] == '\t')
            status = HTTP_PARSE_BAD; /* obsolete line folding */
        else
            status = parse_header(line, line_len, req, &close, &length);
        if (status != HTTP_PARSE_OK)
            return status;
        first = 0;
        line = cr + 2;
    }
    if (first)
        return HTTP_PARSE_BAD;
    size_t body = length > 0 ? (size_t)length : 0;
    if (len - head < body)
        return HTTP_PARSE_NEED_MORE;
    req->keep_alive = !http10 && !close;
    req->body = buf + head;
    req->body_len = body;
    *consumed = head + body;
    return HTTP_PARSE_OK;
}

const char *http_request_parse_error(enum http_parse_status status)
{
    switch (status) {
    case HTTP_PARSE_OK:
        return "ok";
    case HTTP_PARSE_NEED_MORE:
        return "incomplete request";
    case HTTP_PARSE_BAD:
        return "malformed HTTP request";
    case HTTP_PARSE_TOO_LARGE:
        return "HTTP request too large";
    }
    return "malformed HTTP request";
}

/* Decodes LEN urlencoded bytes at IN into OUT (CAP bytes, NUL-terminated). Returns
 * the decoded length, or -1. */
static long decode_value(const unsigned char *in, size_t len, char *out, size_t cap)
{
    size_t used = 0;
    for (size_t i = 0; i < len; i++) {
        int c = in[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int high = i + 2 < len ? text_hex_digit((char)in[i + 1]) : -1;
            int low = i + 2 < len ? text_hex_digit((char)in[i + 2]) : -1;
            if (high < 0 || low < 0)
                return -1;
            c = high * 16 + low;
            i += 2;
        }
        if (c == '\0' || used + 1 >= cap)
            return -1;
        out[used++] = (char)c;
    }
    out[used] = '\0';
    return (long)used;
}

int http_request_form_field(const unsigned char *body, size_t len, const char *name, char *out,
                            size_t cap, size_t *out_len)
{
    size_t name_len = strlen(name);
    size_t i = 0;
    if (cap == 0)
        return -1;
    out[0] = '\0';
    while (i < len) {
        const unsigned char *pair = body + i;
        const unsigned char *amp = memchr(pair, '&', len - i);
        size_t pair_len = amp != NULL ? (size_t)(amp - pair) : len - i;
        const unsigned char *eq = memchr(pair, '=', pair_len);
        size_t key_len = eq != NULL ? (size_t)(eq - pair) : pair_len;
        if (key_len == name_len && memcmp(pair, name, name_len) == 0) {
            long decoded = eq == NULL ? 0
                                      : decode_value(eq + 1, pair_len - key_len - 1, out, cap);
            if (decoded < 0) {
                OPENSSL_cleanse(out, cap);
                return -1;
            }
            out[decoded] = '\0';
            *out_len = (size_t)decoded;
            return 1;
        }
        i += pair_len + 1;
    }
    return 0;
}

int http_request_local_path(const char *target, size_t len)
{
    if (len == 0 || target[0] != '/')
        return 0;
    if (len > 1 && (target[1] == '/' || target[1] == '\\'))
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)target[i];
        if (c <= 0x20 || c >= 0x7f || c == '\\')
            return 0;
    }
    return 1;
}
