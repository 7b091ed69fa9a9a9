#include "cli/proxy_dial.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>

#include "core/address.h"
#include "proto/http_connect.h"

int proxy_dial_connect(int fd, const struct tunnel_config *tunnel, char *reason, size_t len)
{
    char request[HTTP_CONNECT_REQUEST_MAX], proxy[300];
    char buf[HTTP_CONNECT_REPLY_MAX];
    struct http_connect_reply reply;
    size_t got = 0;
    int result = -1;

    address_format(&tunnel->proxy.address, proxy, sizeof(proxy));
    size_t n = http_connect_request(tunnel->target.host, tunnel->target.port,
                                    tunnel->proxy.basic, request, sizeof(request));
    if (n == 0) {
        snprintf(reason, len, "cannot write a CONNECT request for target %s", tunnel->target.host);
        goto out;
    }
    for (size_t sent = 0; sent < n;) {
        ssize_t w = send(fd, request + sent, n - sent, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            snprintf(reason, len, "proxy %s: cannot send the CONNECT request: %s", proxy,
                     strerror(errno));
            goto out;
        }
        sent += (size_t)w;
    }
    for (;;) {
        int parsed = http_connect_parse(buf, got, &reply);
        if (parsed < 0) {
            snprintf(reason, len, "proxy %s: bad reply to CONNECT (%s): \"%s\"", proxy,
                     reply.problem, reply.status_line);
            goto out;
        }
        if (parsed == 1)
            break;
        ssize_t r = recv(fd, buf + got, sizeof(buf) - got, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(reason, len, "proxy %s: reading its reply to CONNECT: %s", proxy,
                     errno == EAGAIN ? "timed out" : strerror(errno));
            goto out;
        }
        if (r == 0) {
            snprintf(reason, len, "proxy %s closed the connection before its reply to CONNECT",
                     proxy);
            goto out;
        }
        got += (size_t)r;
    }
    if (http_connect_judge(&reply, got, proxy, tunnel->target.host, tunnel->target.port,
                           tunnel->proxy.basic != NULL ? tunnel->proxy.credentials : NULL, reason,
                           len))
        result = 0;
out:
    OPENSSL_cleanse(request, sizeof(request));
    return result;
}
