/* login_log — the log lines of second-factor logins: a failure (written by a worker
 * for a certificate that maps to no user, by the PAM helper for everything else), a
 * success and an administrator's unlock (PAM helper). fail2ban and journal queries
 * read them, so both processes write them through here.
 *
 * Each line goes to the journal with its own MESSAGE_ID and fields. No function here
 * ever sees a one-time password. */
#ifndef KTLSTUN_LOGIN_LOG_H
#define KTLSTUN_LOGIN_LOG_H

#include <stddef.h>
#include <stdint.h>

/* A login failed (REASON: "wrong code", "timed out", ...). FAILURES counting now out of
 * MAX (0 when not counted). Notice level, MESSAGE_ID_LOGIN_FAILED. */
void login_log_failure(const char *tunnel, const char *identity, const char *user,
                       const char *source, unsigned failures, unsigned max, const char *reason);

/* A login succeeded; the grant lasts until GRANT_UNTIL (seconds since the epoch).
 * Info level, MESSAGE_ID_LOGIN_SUCCEEDED. */
void login_log_success(const char *tunnel, const char *identity, const char *user,
                       const char *source, int64_t grant_until);

/* KEY's locks (LIFTED of them) were lifted by an administrator. Notice level,
 * MESSAGE_ID_LOGIN_UNLOCKED. */
void login_log_unlock(const char *key, int lifted);

#endif
