#include "worker/conn_end.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "core/event_loop.h"
#include "core/log.h"
#include "core/log_limited.h"
#include "ktls/tls_record.h"
#include "worker/conn_limit.h"

enum warning_kind { WARNING_TARGET_UNREACHABLE, WARNING_SERVER_ABORTED, WARNING_KIND_COUNT };

/* Made on a tunnel's first warning of each kind: most never see one. */
static struct log_limit *limits[WARNING_KIND_COUNT][CONN_LIMIT_TUNNEL_SLOTS];

int conn_end_is_abort(enum stats_result result)
{
    return result == STATS_RESULT_ERROR || result == STATS_RESULT_TARGET_UNREACHABLE;
}

/* Arms (RESET 1) or disarms (0) SO_LINGER {1,0} on FD; -1 is ignored. While armed, a
 * close of FD, ours or the kernel's when the worker dies, resets the connection. */
static void linger_reset(int fd, int reset)
{
    struct linger linger = { reset, 0 };
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof(linger));
}

void conn_end_arm(int tls_fd, int plain_fd)
{
    linger_reset(tls_fd, 1);
    linger_reset(plain_fd, 1);
}

void conn_end_close(const struct conn_end_sockets *s, enum stats_result result)
{
    int abort = conn_end_is_abort(result) && !s->clean_close;
    unsigned char alert = s->alert;
    /* An application whose tunnel never carried its stream learns it from a reset; so
     * does one whose stream the daemon cut (access withdrawn, lifetime reached, the
     * daemon stopping past its drain): a FIN would pass off what it got so far as the
     * whole stream. */
    linger_reset(s->plain_fd, abort || result == STATS_RESULT_REFUSED ||
                                  result == STATS_RESULT_WITHDRAWN ||
                                  result == STATS_RESULT_MAX_LIFETIME ||
                                  result == STATS_RESULT_SHUTDOWN);
    /* Before the handshake's end, OpenSSL's own alert says it; a reset could lose it. */
    linger_reset(s->tls_fd, abort && s->handshake_done);
    /* internal_error: the tunnel could not carry the stream to its end (its other side
     * reset, its target could not be reached). */
    if (abort && s->handshake_done && alert == 0)
        alert = TLS_ALERT_INTERNAL_ERROR;
    if (s->ssl != NULL && s->handshake_done && !s->close_notify_sent && alert == 0) {
        /* Best effort: tell the TLS peer we are done rather than just vanishing. */
        SSL_shutdown(s->ssl);
        ERR_clear_error();
    }
    /* libssl sends no alert of our choosing after the handshake: userspace aborts bare. */
    if (s->offloaded && alert != 0)
        relay_splice_abort(s->splice, s->tls_fd, alert);
    else if (s->offloaded)
        relay_splice_close_notify(s->splice);
    if (s->tls_fd >= 0)
        close(s->tls_fd);
    if (s->plain_fd >= 0)
        close(s->plain_fd);
}

/* Logs LINE at warning unless too many of KIND on TUNNEL came before it lately. */
static void warn_limited(enum warning_kind kind, const struct tunnel *tunnel, const char *line)
{
    if (log_limited_admit(&limits[kind][tunnel->limit_slot], event_loop_now_ms(), line))
        log_warning("%s", line);
}

void conn_end_target_unreachable(const struct tunnel *tunnel, const char *peer_address,
                                 const char *reason)
{
    char line[LOG_LIMIT_TEXT];
    snprintf(line, sizeof(line), "tunnel=%s peer=%s: %s", tunnel->config->name, peer_address, reason);
    warn_limited(WARNING_TARGET_UNREACHABLE, tunnel, line);
}

const char *conn_end_relay_failed(const struct tunnel *tunnel, const char *peer_address,
                                  const struct relay_end *end, const char *reason, char *out,
                                  size_t len)
{
    int server = tunnel->config->mode == TUNNEL_MODE_SERVER;
    char how[80];
    switch (end->abort) {
    case RELAY_ABORT_LOCAL:
    case RELAY_ABORT_NONE:
        return reason;
    case RELAY_ABORT_PLAIN_RESET:
        snprintf(out, len, "%s reset the connection", server ? "target" : "application");
        return out;
    case RELAY_ABORT_TLS_RESET:
        snprintf(how, sizeof(how), "reset");
        break;
    case RELAY_ABORT_TLS_ALERT:
        /* A client's refusal or withdrawn access: refusal_notice says it in words. */
        if (!server && end->peer_alert != TLS_ALERT_INTERNAL_ERROR)
            return reason;
        snprintf(how, sizeof(how), "alert %s", SSL_alert_desc_string_long(end->peer_alert));
        break;
    case RELAY_ABORT_TLS_TRUNCATED:
        snprintf(how, sizeof(how), "FIN without close_notify");
        break;
    }
    if (server)
        return reason;
    /* What a ktlstun server tunnel sends when its target fails it; other alerts (a
     * withdrawn access, a certificate) speak for themselves. */
    int target = end->abort == RELAY_ABORT_TLS_RESET ||
                 (end->abort == RELAY_ABORT_TLS_ALERT && end->peer_alert == TLS_ALERT_INTERNAL_ERROR);
    snprintf(out, len, "the server ended the tunnel abnormally (%s)%s", how,
             target ? ": it may not reach its target" : "");
    char line[LOG_LIMIT_TEXT];
    snprintf(line, sizeof(line), "tunnel=%s peer=%s: %s", tunnel->config->name, peer_address, out);
    warn_limited(WARNING_SERVER_ABORTED, tunnel, line);
    return out;
}

void conn_end_flush(uint64_t now_ms)
{
    for (int k = 0; k < WARNING_KIND_COUNT; k++)
        for (int t = 0; t < CONN_LIMIT_TUNNEL_SLOTS; t++)
            log_limited_flush(limits[k][t], now_ms);
}
