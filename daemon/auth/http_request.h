/* http_request — the browser login page's HTTP/1.1 request parser, pure: no I/O, no
 * allocation, untrusted input.
 *
 * One request at a time, whole in the buffer: an origin-form target ("/…"),
 * HTTP/1.0 or 1.1, header lines ending in CRLF within HTTP_REQUEST_HEADER_MAX bytes,
 * a body given by Content-Length only (at most HTTP_REQUEST_BODY_MAX bytes; any
 * Transfer-Encoding is refused, so no chunked body and no smuggling). NUL bytes, bare
 * CR or LF, folded or malformed header lines, conflicting lengths are refused. The
 * form decoder reads application/x-www-form-urlencoded bodies. */
#ifndef KTLSTUN_HTTP_REQUEST_H
#define KTLSTUN_HTTP_REQUEST_H

#include <stddef.h>

#define HTTP_REQUEST_HEADER_MAX 4096
#define HTTP_REQUEST_BODY_MAX 2048
#define HTTP_REQUEST_MAX (HTTP_REQUEST_HEADER_MAX + HTTP_REQUEST_BODY_MAX)
#define HTTP_REQUEST_TARGET_MAX 1024

enum http_method { HTTP_METHOD_GET, HTTP_METHOD_HEAD, HTTP_METHOD_POST, HTTP_METHOD_OTHER };

enum http_parse_status {
    HTTP_PARSE_OK,
    HTTP_PARSE_NEED_MORE,   /* not a whole request yet */
    HTTP_PARSE_BAD,         /* malformed: answer 400 and close */
    HTTP_PARSE_TOO_LARGE,   /* header or body above the limits: answer 413/431 and close */
};

struct http_request {
    enum http_method method;
    const char *target;       /* into the buffer, not terminated */
    size_t target_len;
    int keep_alive;           /* HTTP/1.1 without "Connection: close" */
    int form;                 /* Content-Type application/x-www-form-urlencoded */
    const unsigned char *body;
    size_t body_len;
};

/* Parses the request at the start of BUF (LEN bytes). HTTP_PARSE_OK fills *REQ
 * (pointing into BUF) and sets *CONSUMED to the request's size, body included; any
 * other status leaves them unspecified. */
enum http_parse_status http_request_parse(const unsigned char *buf, size_t len,
                                          struct http_request *req, size_t *consumed);

/* Returns a static description of STATUS for a log or an error page. */
const char *http_request_parse_error(enum http_parse_status status);

/* Finds field NAME in the urlencoded BODY (LEN bytes) and decodes its first value
 * ('+' is a space, %XX a byte) into OUT (CAP bytes, NUL-terminated), its length in
 * *OUT_LEN. Returns 1 when found, 0 when absent, -1 when the body is malformed, the
 * value holds a NUL or does not fit (OUT is then wiped). */
int http_request_form_field(const unsigned char *body, size_t len, const char *name, char *out,
                            size_t cap, size_t *out_len);

/* Returns 1 when TARGET (LEN bytes) is a path on this server a login may send the
 * browser back to: it starts with one '/', not "//" or "/\" (which browsers read as
 * another host), and holds only printable ASCII without '\'. Otherwise 0. */
int http_request_local_path(const char *target, size_t len);

#endif
