/* http_connect — the HTTP/1.1 CONNECT exchange a client tunnel has with an HTTP proxy
 * on the way to its server: the request, and the parser of the proxy's reply head
 * (untrusted: fuzzed by tests/fuzz/fuzz_http_connect.c). Pure: no I/O. */
#ifndef KTLSTUN_HTTP_CONNECT_H
#define KTLSTUN_HTTP_CONNECT_H

#include <stddef.h>
#include <stdint.h>

/* The longest reply head (status line and headers) read from a proxy. */
#define HTTP_CONNECT_REPLY_MAX 8192
/* Room for a request to any HOST (255 bytes) with credentials of up to 512 bytes. */
#define HTTP_CONNECT_REQUEST_MAX 1280
/* The status line as kept for a log line, cut and made printable. */
#define HTTP_CONNECT_STATUS_LINE_MAX 120

/* Writes into OUT (CAP bytes) "CONNECT HOST:PORT HTTP/1.1" with Host and, when BASIC
 * (base64 of user:password) is not NULL, Proxy-Authorization: Basic. An IPv6 HOST is
 * bracketed. Returns the request's length, or 0 when it does not fit or HOST holds a
 * character that has no place in a request line. */
size_t http_connect_request(const char *host, uint16_t port, const char *basic, char *out,
                            size_t cap);

struct http_connect_reply {
    unsigned status;                /* 100..599                                        */
    size_t head_len;                /* bytes of the head, its blank line included      */
    /* the status line, printable ASCII only (others as '?'), cut to fit */
    char status_line[HTTP_CONNECT_STATUS_LINE_MAX + 1];
    const char *problem;            /* static: why the head is not HTTP (-1)           */
};

/* Parses the LEN bytes at DATA, the start of a proxy's reply. Returns 1 when the head
 * is complete (REPLY filled; bytes past head_len are the server's), 0 when more bytes
 * are needed (never once LEN reaches HTTP_CONNECT_REPLY_MAX), -1 when it is not an
 * HTTP/1.x reply or its head is too long (REPLY->problem says which; status_line
 * holds what came, as far as it is a line). */
int http_connect_parse(const char *data, size_t len, struct http_connect_reply *reply);

/* Judges REPLY, complete (http_connect_parse returned 1), from the proxy named PROXY
 * to a CONNECT to HOST:PORT, RECEIVED bytes read in all; CREDENTIALS names the file
 * whose credentials the request carried, NULL when it carried none. Returns 1 for a
 * 2xx with nothing past its head; else 0 with the reason a user can act on in REASON
 * (LEN bytes): authentication wanted (407, or 401 as some proxies send), credentials
 * refused, another status (its line quoted), or bytes before the handshake. */
int http_connect_judge(const struct http_connect_reply *reply, size_t received,
                       const char *proxy, const char *host, unsigned port,
                       const char *credentials, char *reason, size_t len);

#endif
