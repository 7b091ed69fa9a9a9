#include "worker/conn_preamble.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>

#include "config/user_map.h"
#include "core/address.h"
#include "core/limits.h"
#include "core/utc_time.h"
#include "proto/http_connect.h"
#include "proto/proxy_header.h"
#include "worker/conn_state.h"

#define OUT_MAX (PROXY_HEADER_MAX > HTTP_CONNECT_REQUEST_MAX ? PROXY_HEADER_MAX \
                                                             : HTTP_CONNECT_REQUEST_MAX)

struct conn_preamble {
    unsigned char out[OUT_MAX];     /* the header or the request (credentials: wiped) */
    size_t out_len, sent;
    int http_connect;               /* a CONNECT whose reply is read after it */
    size_t reply_len;
    char reply[HTTP_CONNECT_REPLY_MAX];
};

const struct address *conn_preamble_dial(const struct tunnel_config *tunnel,
                                         const struct sockaddr_storage **addr, socklen_t *len,
                                         const char **what)
{
    if (tunnel->mode == TUNNEL_MODE_CLIENT && tunnel->proxy.enabled) {
        *addr = &tunnel->proxy.addr;
        *len = tunnel->proxy.addr_len;
        *what = "proxy";
        return &tunnel->proxy.address;
    }
    *addr = &tunnel->target_addr;
    *len = tunnel->target_addr_len;
    *what = "target";
    return &tunnel->target;
}

int conn_preamble_started(const struct conn *c)
{
    return c->preamble != NULL;
}

static int wanted(const struct tunnel_config *t)
{
    if (t->mode == TUNNEL_MODE_SERVER)
        return t->proxy_protocol == PROXY_PROTOCOL_V2;
    return t->proxy.enabled;
}

/* The user the PROXY header names: the second factor's user_map user, else the CN. */
static const char *mapped_user(const struct conn *c, char *user)
{
    const struct tunnel_config *t = c->tunnel->config;
    const struct identity *id = c->peer.identity;
    char identity[LIMIT_IDENTITY + 1], why[200];

    if (id == NULL)
        return NULL;
    if (t->second_factor == SECOND_FACTOR_PAM && t->user_map != NULL)
        return user_map_lookup(t->user_map, id, identity, user, why, sizeof(why)) == 1 ? user
                                                                                      : NULL;
    return id->cn;
}

static int build_proxy_header(struct conn *c, struct conn_preamble *p, char *reason, size_t len)
{
    struct sockaddr_storage source, destination;
    socklen_t source_len = sizeof(source), destination_len = sizeof(destination);
    char user[LIMIT_USER_NAME + 1];
    const struct identity *id = c->peer.identity;

    if (getpeername(c->tls_fd, (struct sockaddr *)&source, &source_len) < 0 ||
        getsockname(c->tls_fd, (struct sockaddr *)&destination, &destination_len) < 0) {
        snprintf(reason, len, "cannot read the client's address for the PROXY header: %s",
                 strerror(errno));
        return -1;
    }
    const struct proxy_header_tls tls = {
        .version = c->tls_version,
        .cipher = c->cipher,
        .cn = id != NULL ? id->cn : NULL,
        .cert_sha256 = id != NULL ? id->sha256 : NULL,
        .user = mapped_user(c, user),
    };
    p->out_len = proxy_header_build((struct sockaddr *)&source, (struct sockaddr *)&destination,
                                    &tls, p->out, sizeof(p->out));
    if (p->out_len == 0) {
        snprintf(reason, len, "cannot build the PROXY header: a certificate name is longer "
                              "than 255 bytes");
        return -1;
    }
    return 0;
}

static int build_connect(const struct tunnel_config *t, struct conn_preamble *p, char *reason,
                         size_t len)
{
    p->http_connect = 1;
    p->out_len = http_connect_request(t->target.host, t->target.port, t->proxy.basic,
                                      (char *)p->out, sizeof(p->out));
    if (p->out_len == 0) {
        snprintf(reason, len, "cannot write a CONNECT request for target %s", t->target.host);
        return -1;
    }
    return 0;
}

/* Sends what is left of P->out on FD. Returns 1 when all is sent, 0 on EAGAIN, -1
 * with errno. */
static int send_rest(int fd, struct conn_preamble *p)
{
    while (p->sent < p->out_len) {
        ssize_t n = send(fd, p->out + p->sent, p->out_len - p->sent, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
        p->sent += (size_t)n;
    }
    /* The request carried the credentials: they need not stay in this buffer. */
    OPENSSL_cleanse(p->out, sizeof(p->out));
    return 1;
}

/* Reads the proxy's reply to CONNECT. Returns 1 on a 2xx, 0 while it is incomplete,
 * -1 with the reason in REASON. */
static int read_reply(int fd, const struct tunnel_config *t, struct conn_preamble *p,
                      char *reason, size_t len)
{
    char proxy[300];
    struct http_connect_reply reply;
    int ended = 0;

    address_format(&t->proxy.address, proxy, sizeof(proxy));
    while (p->reply_len < sizeof(p->reply)) {
        ssize_t n = recv(fd, p->reply + p->reply_len, sizeof(p->reply) - p->reply_len, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (n < 0) {
            snprintf(reason, len, "proxy %s: reading its reply to CONNECT: %s", proxy,
                     strerror(errno));
            return -1;
        }
        if (n == 0) {
            ended = 1;
            break;
        }
        p->reply_len += (size_t)n;
    }
    int parsed = http_connect_parse(p->reply, p->reply_len, &reply);
    if (parsed == 0 && !ended)
        return 0;
    if (parsed == 0) {
        snprintf(reason, len, "proxy %s closed the connection before its reply to CONNECT",
                 proxy);
        return -1;
    }
    if (parsed < 0) {
        snprintf(reason, len, "proxy %s: bad reply to CONNECT (%s): \"%s\"", proxy,
                 reply.problem, reply.status_line);
        return -1;
    }
    if (!http_connect_judge(&reply, p->reply_len, proxy, t->target.host, t->target.port,
                            t->proxy.basic != NULL ? t->proxy.credentials : NULL, reason, len))
        return -1;
    return 1;
}

/* The proxy's refusal is this client tunnel's last one, for `ktlstun status`. */
static void note_refusal(const struct conn *c, const char *reason)
{
    struct stats_last_refusal last;
    memset(&last, 0, sizeof(last));
    snprintf(last.words, sizeof(last.words), "%s", reason);
    last.at = utc_time_now();
    if (c->host->stats != NULL)
        stats_note_last_refusal(c->host->stats, c->tunnel->limit_slot, &last);
}

int conn_preamble_step(struct conn *c, enum stats_result *result, char *reason, size_t len)
{
    const struct tunnel_config *t = c->tunnel->config;
    int server = t->mode == TUNNEL_MODE_SERVER;
    int fd = server ? c->plain_fd : c->tls_fd;
    struct conn_preamble *p = c->preamble;
    const struct sockaddr_storage *unused_addr;
    socklen_t unused_len;
    const char *what;
    char where[300];

    *result = STATS_RESULT_ERROR;
    if (!wanted(t))
        return 1;
    if (p == NULL) {
        if ((p = calloc(1, sizeof(*p))) == NULL) {
            snprintf(reason, len, "out of memory");
            return -1;
        }
        c->preamble = p;
        if ((server ? build_proxy_header(c, p, reason, len) : build_connect(t, p, reason, len)) < 0)
            return -1;
    }
    int sent = send_rest(fd, p);
    if (sent < 0) {
        address_format(conn_preamble_dial(t, &unused_addr, &unused_len, &what), where,
                       sizeof(where));
        snprintf(reason, len, "%s %s: cannot send the %s: %s", what, where,
                 server ? "PROXY header" : "CONNECT request", strerror(errno));
        *result = STATS_RESULT_TARGET_UNREACHABLE;
        return -1;
    }
    if (sent == 0)
        return 0;
    if (p->http_connect) {
        int replied = read_reply(fd, t, p, reason, len);
        if (replied < 0) {
            *result = STATS_RESULT_TARGET_UNREACHABLE;
            note_refusal(c, reason);
        }
        if (replied != 1)
            return replied;
    }
    conn_preamble_free(c);
    return 1;
}

const char *conn_preamble_stage(const struct conn *c)
{
    const struct tunnel_config *t = c->tunnel->config;
    if (t->mode != TUNNEL_MODE_CLIENT || !t->proxy.enabled)
        return "target connect";
    return c->preamble != NULL ? "the proxy's reply to CONNECT" : "proxy connect";
}

void conn_preamble_free(struct conn *c)
{
    if (c->preamble != NULL)
        OPENSSL_clear_free(c->preamble, sizeof(*c->preamble));
    c->preamble = NULL;
}
