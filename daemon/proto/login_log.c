#include "proto/login_log.h"

#include <stdio.h>

#include "core/log.h"
#include "core/message_ids.h"
#include "core/utc_time.h"

/* Quoted log values: one line, and a '"' or '\' inside cannot end the value early. */
const char *login_log_quote(const char *text, char *buf, size_t len)
{
    size_t out = 0;
    for (const char *p = text ? text : ""; *p != '\0' && out + 3 < len; p++) {
        if (*p == '"' || *p == '\\')
            buf[out++] = '\\';
        buf[out++] = (*p == '\n' || *p == '\r') ? ' ' : *p;
    }
    buf[out] = '\0';
    return buf;
}

void login_log_failure(const char *tunnel, const char *identity, const char *user,
                       const char *source, unsigned failures, unsigned max, const char *reason)
{
    char q_identity[600], q_reason[600], count[32];
    if (failures > 0)
        snprintf(count, sizeof(count), "%u/%u", failures, max);
    else
        snprintf(count, sizeof(count), "-");
    const struct log_field fields[] = {
        { "TUNNEL", tunnel }, { "IDENTITY", identity }, { "USER", user },
        { "SOURCE_ADDRESS", source }, { "FAILURES", count }, { "REASON", reason },
    };
    log_event(LOG_LEVEL_NOTICE, MESSAGE_ID_LOGIN_FAILED, fields, sizeof(fields) / sizeof(fields[0]),
              "second-factor failure: tunnel=%s identity=\"%s\" user=%s source=%s failures=%s "
              "reason=\"%s\"", tunnel, login_log_quote(identity, q_identity, sizeof(q_identity)),
              user[0] ? user : "-", source, count,
              login_log_quote(reason, q_reason, sizeof(q_reason)));
}

void login_log_success(const char *tunnel, const char *identity, const char *user,
                       const char *source, int64_t grant_until)
{
    char q_identity[600], until[32];
    utc_time_format(grant_until, until, sizeof(until));
    const struct log_field fields[] = {
        { "TUNNEL", tunnel }, { "IDENTITY", identity }, { "USER", user },
        { "SOURCE_ADDRESS", source }, { "GRANT_UNTIL", until },
    };
    log_event(LOG_LEVEL_INFO, MESSAGE_ID_LOGIN_SUCCEEDED, fields,
              sizeof(fields) / sizeof(fields[0]),
              "second-factor success: tunnel=%s identity=\"%s\" user=%s source=%s grant_until=%s",
              tunnel, login_log_quote(identity, q_identity, sizeof(q_identity)), user, source,
              until);
}

void login_log_unlock(const char *key, int lifted)
{
    char q_key[600], count[16];
    snprintf(count, sizeof(count), "%d", lifted);
    const struct log_field fields[] = { { "IDENTITY", key }, { "LOCKS_LIFTED", count } };
    log_event(LOG_LEVEL_NOTICE, MESSAGE_ID_LOGIN_UNLOCKED, fields,
              sizeof(fields) / sizeof(fields[0]), "second-factor unlock: key=\"%s\" locks_lifted=%d",
              login_log_quote(key, q_key, sizeof(q_key)), lifted);
}
