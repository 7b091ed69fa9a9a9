#include "proto/login_log.h"

#include <stdio.h>

#include "core/log.h"
#include "core/message_ids.h"
#include "core/utc_time.h"
#include "core/text.h"

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
              "reason=\"%s\"", tunnel, text_log_quote(identity, q_identity, sizeof(q_identity)),
              user[0] ? user : "-", source, count,
              text_log_quote(reason, q_reason, sizeof(q_reason)));
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
              tunnel, text_log_quote(identity, q_identity, sizeof(q_identity)), user, source,
              until);
}

void login_log_unlock(const char *key, int lifted)
{
    char q_key[600], count[16];
    snprintf(count, sizeof(count), "%d", lifted);
    const struct log_field fields[] = { { "IDENTITY", key }, { "LOCKS_LIFTED", count } };
    log_event(LOG_LEVEL_NOTICE, MESSAGE_ID_LOGIN_UNLOCKED, fields,
              sizeof(fields) / sizeof(fields[0]), "second-factor unlock: key=\"%s\" locks_lifted=%d",
              text_log_quote(key, q_key, sizeof(q_key)), lifted);
}
