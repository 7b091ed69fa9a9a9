#include "worker/refusal_notice.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "core/event_loop.h"
#include "core/identity.h"
#include "core/log.h"
#include "core/log_limited.h"
#include "core/utc_time.h"
#include "tls/first_record.h"
#include "tls/refusal_words.h"
#include "worker/conn_limit.h"

/* Made on a client tunnel's first refusal: most never see one. */
static struct log_limit *limits[CONN_LIMIT_TUNNEL_SLOTS];

/* "CN=alice": the name the server's allow rules would need, from the tunnel's own
 * certificate. */
static void own_name(const struct tunnel *tunnel, char *buf, size_t len)
{
    X509 *cert = SSL_CTX_get0_certificate(tunnel->ssl_ctx);
    char cn[LIMIT_IDENTITY + 1];
    buf[0] = '\0';
    if (cert == NULL)
        return;
    if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof(cn)) > 0)
        snprintf(buf, len, "CN=%s", cn);
    else
        identity_format_name(X509_get_subject_name(cert), buf, len);
}

/* Words for what ended a client tunnel's connection, when it is a refusal. Returns 1
 * after writing them into BUF, 2 when they say the server speaks no TLS. */
static int client_words(const struct tunnel *tunnel, SSL *ssl, const struct tls_peer *peer,
                        int refused, uint64_t from_server, const char *reason, char *buf,
                        size_t len)
{
    unsigned char head[8];
    size_t seen;
    int alert = refusal_words_alert_in(reason);
    if (refused && peer->refusal[0] != '\0' && ssl != NULL) {
        refusal_words_server_certificate((int)SSL_get_verify_result(ssl), peer->refusal, buf, len);
        return 1;
    }
    if (alert >= 0) {
        char who[LIMIT_IDENTITY + 8];
        own_name(tunnel, who, sizeof(who));
        return refusal_words_server_alert(alert, tunnel->config->name, who, from_server > 0, buf, len);
    }
    if (refused && ssl != NULL && (seen = first_record_head(ssl, head, sizeof(head))) > 0)
        return refusal_words_not_tls(head, seen, buf, len) ? 2 : 0;
    return 0;
}

static void warn(const struct tunnel *tunnel, const char *words)
{
    char line[LIMIT_TUNNEL_NAME + STATS_REFUSAL_WORDS + 8];
    snprintf(line, sizeof(line), "[%s] %s", tunnel->config->name, words);
    if (log_limited_admit(&limits[tunnel->limit_slot], event_loop_now_ms(), line))
        log_warning("%s", line);
}

/* A server tunnel's own refusals: its verdict on the certificate (chain, allow rules,
 * second factor), a missing certificate, kTLS required. Not a peer that went away or
 * timed out, nor the peer's alert: those are no refusal this tunnel gave. */
static int server_refused(const struct tls_peer *peer, const char *reason)
{
    enum stats_refusal kind = stats_classify_refusal(reason);
    return peer->refusal[0] != '\0' || kind == STATS_REFUSAL_NO_CLIENT_CERT ||
           kind == STATS_REFUSAL_KTLS_REQUIRED;
}

const char *refusal_notice_conn_end(struct stats *stats, const struct tunnel *tunnel, SSL *ssl,
                                    const struct tls_peer *peer, int refused, uint64_t from_server,
                                    const char *reason)
{
    /* A worker ends one connection at a time; the caller logs this before the next. */
    static char not_tls[STATS_REFUSAL_WORDS];
    struct stats_last_refusal last;
    memset(&last, 0, sizeof(last));
    if (reason == NULL)
        return reason;
    if (tunnel->config->mode == TUNNEL_MODE_CLIENT) {
        int found = client_words(tunnel, ssl, peer, refused, from_server, reason, last.words,
                                 sizeof(last.words));
        if (found == 0)
            return reason;
        warn(tunnel, last.words);
        if (found == 2) {
            snprintf(not_tls, sizeof(not_tls), "%s", last.words);
            reason = not_tls;
        }
    } else {
        if (!refused || !server_refused(peer, reason))
            return reason;
        snprintf(last.words, sizeof(last.words), "%s", reason);
        if (peer->identity != NULL)
            snprintf(last.identity, sizeof(last.identity), "%s", peer->identity->subject);
    }
    last.at = utc_time_now();
    if (stats != NULL)
        stats_note_last_refusal(stats, tunnel->limit_slot, &last);
    return reason;
}

void refusal_notice_flush(uint64_t now_ms)
{
    for (int t = 0; t < CONN_LIMIT_TUNNEL_SLOTS; t++)
        log_limited_flush(limits[t], now_ms);
}
