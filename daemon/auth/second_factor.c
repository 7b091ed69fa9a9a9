#include "auth/second_factor.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "proto/auth_protocol.h"
#include "core/event_loop.h"
#include "core/log.h"
#include "auth/pam_link.h"
#include "tls/tls_alert.h"

static struct grants *shared_grants;
static int refused_index = -1;
static int web_login_index = -1;

#define WEB_LOGIN_ALPN "http/1.1"

void second_factor_describe_grants(FILE *out)
{
    if (shared_grants != NULL)
        grants_describe(shared_grants, event_loop_now_ms(), out);
}

void second_factor_use_grants(struct grants *grants)
{
    shared_grants = grants;
}

/* Returns 1 when the ALPN list IN (INLEN bytes) offers WANTED, with *OUT pointing at
 * it inside IN. */
static int offers(const unsigned char *in, unsigned int inlen, const char *wanted,
                  const unsigned char **out)
{
    const size_t wanted_len = strlen(wanted);
    for (unsigned int i = 0; i < inlen;) {
        unsigned int len = in[i];
        if (i + 1 + len > inlen)
            break;
        if (len == wanted_len && memcmp(in + i + 1, wanted, wanted_len) == 0) {
            *out = in + i + 1;
            return 1;
        }
        i += 1 + len;
    }
    return 0;
}

/* Picks the login protocol when the client offers it; anything else (curl's h2 and
 * http/1.1, or no ALPN at all) is a data connection and gets no ALPN answer. With
 * browser_login (ARG not NULL), a client offering http/1.1 gets it: the certificate
 * comes after ALPN is settled, so this cannot wait for the grant, and a browser
 * without an ALPN answer speaks HTTP/1.1 all the same. */
static int select_protocol(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                           const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    if (offers(in, inlen, AUTH_PROTOCOL_ALPN, out)) {
        *outlen = (unsigned char)strlen(AUTH_PROTOCOL_ALPN);
        return SSL_TLSEXT_ERR_OK;
    }
    if (arg != NULL && offers(in, inlen, WEB_LOGIN_ALPN, out)) {
        *outlen = (unsigned char)strlen(WEB_LOGIN_ALPN);
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK;
}

int second_factor_prepare_ctx(SSL_CTX *ctx, const struct tunnel_config *tunnel)
{
    if (tunnel->mode != TUNNEL_MODE_SERVER || tunnel->second_factor != SECOND_FACTOR_PAM)
        return 0;
    if ((refused_index < 0 &&
         (refused_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL)) < 0) ||
        (web_login_index < 0 &&
         (web_login_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL)) < 0)) {
        log_error("[%s] cannot reserve an OpenSSL ex_data slot", tunnel->name);
        return -1;
    }
    /* Any non-NULL pointer says "browser_login"; the tunnel may go before the CTX. */
    SSL_CTX_set_alpn_select_cb(ctx, select_protocol, tunnel->browser_login ? (void *)ctx : NULL);
    /* One-time passwords arrive as application data on the login channel: OpenSSL
     * wipes its copy of what it decrypted once we have read it. */
    SSL_CTX_set_options(ctx, SSL_OP_CLEANSE_PLAINTEXT);
    return tls_alert_prepare_ctx(ctx);
}

static int negotiated(const SSL *ssl, const char *wanted)
{
    const unsigned char *protocol = NULL;
    unsigned int len = 0;
    SSL_get0_alpn_selected(ssl, &protocol, &len);
    return protocol != NULL && len == strlen(wanted) && memcmp(protocol, wanted, len) == 0;
}

int second_factor_is_web_login(const SSL *ssl)
{
    return web_login_index >= 0 && SSL_get_ex_data(ssl, web_login_index) != NULL;
}

int second_factor_is_login(const SSL *ssl)
{
    return negotiated(ssl, AUTH_PROTOCOL_ALPN) || second_factor_is_web_login(ssl);
}

char *second_factor_peer_address(int fd, char *buf, size_t len)
{
    struct sockaddr_storage ss = { 0 };
    socklen_t sslen = sizeof(ss);
    snprintf(buf, len, "local");
    if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &sslen) < 0)
        return buf;
    if (ss.ss_family == AF_INET) {
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, buf, (socklen_t)len);
    } else if (ss.ss_family == AF_INET6) {
        const struct in6_addr *a6 = &((struct sockaddr_in6 *)&ss)->sin6_addr;
        /* An IPv4 client on a dual-stack socket is that IPv4 address, for grants,
         * locks and fail2ban alike. */
        if (IN6_IS_ADDR_V4MAPPED(a6))
            inet_ntop(AF_INET, &a6->s6_addr[12], buf, (socklen_t)len);
        else
            inet_ntop(AF_INET6, a6, buf, (socklen_t)len);
    }
    return buf;
}

int second_factor_admit(SSL *ssl, const struct tunnel_config *tunnel, const struct identity *id,
                        char *refusal, size_t refusal_len)
{
    if (tunnel->mode != TUNNEL_MODE_SERVER || tunnel->second_factor != SECOND_FACTOR_PAM)
        return 1;
    /* ALPN was settled with the ClientHello, before the certificate came. */
    if (negotiated(ssl, AUTH_PROTOCOL_ALPN))
        return 1;
    char source[LIMIT_SOURCE_ADDRESS + 1];
    second_factor_peer_address(SSL_get_fd(ssl), source, sizeof(source));
    const char *who = id->cn != NULL ? id->cn : id->subject;
    if (shared_grants == NULL) {
        snprintf(refusal, refusal_len, "second factor required but the login service is not "
                 "running (see the daemon's errors at start)");
    } else if (grants_check(shared_grants, tunnel->name, id->sha256,
                            tunnel->bind_grant_to_address ? source : NULL, event_loop_now_ms(),
                            NULL)) {
        return 1;
    } else if (tunnel->bind_grant_to_address &&
               grants_check(shared_grants, tunnel->name, id->sha256, NULL, event_loop_now_ms(),
                            NULL)) {
        snprintf(refusal, refusal_len, "second factor: the login of %s (sha256 %.16s…) was made "
                 "from another address (bind_grant_to_address = yes): run `ktlstun login "
                 "TUNNEL` again from %s", who, id->sha256, source);
    } else {
        snprintf(refusal, refusal_len, "second factor: no live login for %s (sha256 %.16s…): run "
                 "`ktlstun login TUNNEL` on the client (TUNNEL: its client tunnel for this "
                 "server), then connect again", who, id->sha256);
    }
    /* A browser without a grant gets the login page instead, never the target. */
    if (shared_grants != NULL && tunnel->browser_login && negotiated(ssl, WEB_LOGIN_ALPN) &&
        web_login_index >= 0 && SSL_set_ex_data(ssl, web_login_index, (void *)1) == 1) {
        refusal[0] = '\0';
        return 1;
    }
    if (refused_index >= 0)
        SSL_set_ex_data(ssl, refused_index, (void *)1);
    /* Not access_denied (the allow rules' alert): the client should log in, not ask
     * to be allowed. */
    if (tls_alert_send(ssl, SSL_AD_INSUFFICIENT_SECURITY) < 0)
        log_debug("[%s] insufficient_security alert not possible for this session; the client "
                  "gets handshake_failure", tunnel->name);
    return 0;
}

int second_factor_grant_holds(const struct tunnel_config *tunnel, const struct identity *id,
                              const char *source, uint64_t now_ms, uint64_t *until_ms,
                              char *reason, size_t reason_len)
{
    *until_ms = UINT64_MAX;
    if (tunnel->mode != TUNNEL_MODE_SERVER || tunnel->second_factor != SECOND_FACTOR_PAM)
        return 1;
    const char *who = id->cn != NULL ? id->cn : id->subject;
    if (shared_grants != NULL &&
        grants_check(shared_grants, tunnel->name, id->sha256,
                     tunnel->bind_grant_to_address ? source : NULL, now_ms, until_ms))
        return 1;
    int moved = shared_grants != NULL && tunnel->bind_grant_to_address &&
                grants_check(shared_grants, tunnel->name, id->sha256, NULL, now_ms, NULL);
    int revoked = shared_grants != NULL && !moved &&
                  grants_revoked_by_admin(shared_grants, tunnel->name, id->sha256);
    snprintf(reason, reason_len, "second-factor grant of %s (sha256 %.16s…) %s", who, id->sha256,
             moved     ? "now belongs to a login from another address (bind_grant_to_address = yes)"
             : revoked ? "revoked by an administrator"
                       : "ended");
    return 0;
}

uint64_t second_factor_grant_withdrawals(void)
{
    return shared_grants != NULL ? grants_withdrawals(shared_grants) : 0;
}

void second_factor_handshake_failed(struct pam_link *link, const struct tunnel_config *tunnel,
                                    SSL *ssl, int ssl_error, const char *reason)
{
    if (link == NULL || tunnel->mode != TUNNEL_MODE_SERVER || tunnel->max_handshake_failures == 0)
        return;
    if (ssl_error != SSL_ERROR_SSL)
        return;
    if (ssl != NULL && refused_index >= 0 && SSL_get_ex_data(ssl, refused_index) != NULL)
        return;
    char source[LIMIT_SOURCE_ADDRESS + 1];
    second_factor_peer_address(ssl != NULL ? SSL_get_fd(ssl) : -1, source, sizeof(source));
    pam_link_report_handshake_failure(link, tunnel->name, source, reason);
}

const struct tls_gate second_factor_gate = {
    .prepare_ctx = second_factor_prepare_ctx,
    .admit = second_factor_admit,
};
