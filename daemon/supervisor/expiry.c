#include "supervisor/expiry.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "core/message_ids.h"
#include "tls/tls_context.h"

static void describe_left(long long seconds, char *buf, size_t len)
{
    if (seconds < 0)
        snprintf(buf, len, "expired %lldd ago", (-seconds) / 86400);
    else if (seconds < 86400)
        snprintf(buf, len, "expires in %lldh", seconds / 3600);
    else
        snprintf(buf, len, "expires in %lldd", seconds / 86400);
}

static int check_one(const struct tunnel *tunnel, const char *kind, const char *file,
                     long long when, long long now, long long warn, char *summary, size_t len)
{
    if (when < 0 || when - now > warn)
        return 0;
    char left[48], seconds[24];
    describe_left(when - now, left, sizeof(left));
    snprintf(seconds, sizeof(seconds), "%lld", when - now);
    const struct log_field fields[] = {
        { "TUNNEL", tunnel->config->name }, { "FILE", file },
        { "KIND", kind }, { "SECONDS_LEFT", seconds },
    };
    log_event(LOG_LEVEL_WARNING, MESSAGE_ID_EXPIRY, fields, sizeof(fields) / sizeof(fields[0]),
              "[%s] %s %s %s", tunnel->config->name, kind, file, left);
    size_t used = strlen(summary);
    if (used < len)
        snprintf(summary + used, len - used, "%s%s of [%s] %s", used ? "; " : "", kind,
                 tunnel->config->name, left);
    return 1;
}

int expiry_check(const struct generation *gen, char *summary, size_t len)
{
    long long now = (long long)time(NULL);
    long long warn = (long long)gen->config->global.expiry_warning;
    int found = 0;
    summary[0] = '\0';
    for (size_t i = 0; i < gen->tunnel_count; i++) {
        const struct tunnel *tunnel = &gen->tunnels[i];
        found += check_one(tunnel, "certificate", tunnel->config->cert,
                           tls_context_cert_not_after(tunnel->ssl_ctx), now, warn, summary, len);
        if (tunnel->config->crl != NULL)
            found += check_one(tunnel, "CRL", tunnel->config->crl,
                               tls_context_crl_next_update(tunnel->ssl_ctx), now, warn, summary,
                               len);
    }
    return found;
}
