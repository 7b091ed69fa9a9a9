#include "supervisor/health.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <openssl/x509.h>

#include "core/limits.h"
#include "proto/grants.h"

/* Room for all three reasons of every tunnel: a reason is never cut. */
#define HEALTH_ANSWER_MAX (LIMIT_TUNNELS * 3 * (LIMIT_TUNNEL_NAME + 96) + 64)

struct answer {
    char *text;
    size_t used;
};

static void add(struct answer *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void add(struct answer *a, const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    int n = vsnprintf(a->text + a->used, HEALTH_ANSWER_MAX - a->used, fmt, args);
    va_end(args);
    if (n > 0 && (size_t)n < HEALTH_ANSWER_MAX - a->used)
        a->used += (size_t)n;
}

char *health_render_live(const struct health_state *state, int *healthy)
{
    const char *answer = "ok\n";
    if (state->stopping)
        answer = "stopping: the daemon is shutting down\n";
    else if (state->live_workers == 0)
        answer = "no worker is serving: none is running, ready and turning its event loop\n";
    *healthy = state->stopping == 0 && state->live_workers > 0;
    return strdup(answer);
}

/* "2026-12-01 10:00:00 UTC" (as the refusal of an expired peer writes it). */
static const char *when(const ASN1_TIME *time, char *buf, size_t len)
{
    struct tm tm;
    if (time == NULL || ASN1_TIME_to_tm(time, &tm) != 1 ||
        strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(buf, len, "an unreadable date");
    return buf;
}

/* A socket that was bound but not listened on (or closed) cannot take a peer. */
static int listening(int fd)
{
    int accepting = 0;
    socklen_t len = sizeof(accepting);
    return fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &len) == 0 && accepting;
}

/* Adds to A what keeps TUNNEL from serving at NOW. */
static void tunnel_reasons(const struct health_state *state, const struct tunnel *tunnel,
                           int64_t now, struct answer *a)
{
    const char *name = tunnel->config->name;
    char date[64];
    if (config_tunnel_listens(tunnel->config) && !listening(tunnel->listen_fd))
        add(a, "tunnel %s: not listening\n", name);
    X509 *cert = tunnel->ssl_ctx != NULL ? SSL_CTX_get0_certificate(tunnel->ssl_ctx) : NULL;
    time_t at = (time_t)now;
    if (cert != NULL && X509_cmp_time(X509_get0_notAfter(cert), &at) <= 0)
        add(a, "tunnel %s: certificate expired %s\n", name,
            when(X509_get0_notAfter(cert), date, sizeof(date)));
    else if (cert != NULL && X509_cmp_time(X509_get0_notBefore(cert), &at) >= 0)
        add(a, "tunnel %s: certificate not valid before %s\n", name,
            when(X509_get0_notBefore(cert), date, sizeof(date)));
    if (tunnel->config->second_factor == SECOND_FACTOR_PAM && !state->helper_running)
        add(a, "tunnel %s: the second-factor login service (PAM helper) is down\n", name);
}

char *health_render_ready(const struct health_state *state, int64_t now, int *ready)
{
    struct answer a = { .text = malloc(HEALTH_ANSWER_MAX) };
    if (a.text == NULL)
        return NULL;
    a.text[0] = '\0';
    if (state->stopping)
        add(&a, "stopping: the daemon is shutting down\n");
    for (size_t i = 0; i < state->gen->tunnel_count; i++)
        tunnel_reasons(state, &state->gen->tunnels[i], now, &a);
    *ready = a.used == 0;
    if (a.used == 0)
        add(&a, "ok\n");
    if (state->store_state == GRANTS_STORE_UP)
        add(&a, "state store: connected to %s\n", state->store_text);
    else if (state->store_state == GRANTS_STORE_DOWN)
        add(&a, "state store: unreachable (%s); new logins are refused until it is back\n",
            state->store_text);
    return a.text;
}
