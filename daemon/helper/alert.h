/* alert — what the PAM helper tells the world about locks.
 *
 * Every lock raises one alert, three ways:
 *   - a journal entry (MESSAGE_ID_LOGIN_LOCKED / MESSAGE_ID_HANDSHAKE_FAILURES) with
 *     TUNNEL, IDENTITY, USER, SOURCE_ADDRESS, FAILURES, LOCKED_UNTIL, LOCK_KIND
 *     (identity, user, source or handshake) and LOCK_LEVEL fields;
 *   - the same event as one warning line fail2ban matches
 *     (etc/fail2ban/filter.d/ktlstun.conf), "second-factor lock: ... source=ADDR ...";
 *   - the tunnel's alert_command, executed directly (no shell) with the details in
 *     KTLSTUN_* environment variables, in its own process group; alert_commands
 *     reaps it and kills it at its deadline.
 * Failures, successes and unlocks are logged at lower priority by login_log.
 * No function here ever sees a one-time password. */
#ifndef KTLSTUN_ALERT_H
#define KTLSTUN_ALERT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "core/string_list.h"

#define ALERT_COMMAND_TIMEOUT_S 30
#define ALERT_ENV_ENTRY_LEN 1600

enum alert_kind {
    ALERT_IDENTITY_LOCKED,     /* too many failed logins of one identity */
    ALERT_USER_LOCKED,         /* too many failed logins of one user's certificates */
    ALERT_SOURCE_LOCKED,       /* too many failed logins from one address */
    ALERT_HANDSHAKE_FAILURES,  /* too many refused handshakes from one address */
};

struct alert_event {
    enum alert_kind kind;
    const char *tunnel;
    const char *identity;      /* "" for handshake failures */
    const char *user;          /* "" for handshake failures */
    const char *source;        /* an address, without port */
    unsigned failures;
    unsigned level;            /* 1 for a first lock, 2 for the next, ... */
    int64_t until;             /* end of the lock (seconds since the epoch) */
};

/* Writes the one-line text of EVENT into BUF ("second-factor lock: tunnel=..."), the
 * line fail2ban matches. Returns BUF. */
char *alert_format(const struct alert_event *event, char *buf, size_t len);

/* Logs EVENT at warning level with its MESSAGE_ID and journal fields. */
void alert_log(const struct alert_event *event);

/* Fills ENV (at most MAX entries of ALERT_ENV_ENTRY_LEN bytes each, "NAME=value") with the
 * environment alert_command gets. Returns the number of entries. */
size_t alert_environment(const struct alert_event *event, char (*env)[ALERT_ENV_ENTRY_LEN], size_t max);

/* Starts COMMAND (argv; COMMAND->items[0] is an absolute path) for EVENT in a new
 * process group with a clean environment, stdin on /dev/null. Returns its pid, or -1
 * after logging. */
pid_t alert_run_command(const struct string_list *command, const struct alert_event *event);

#endif
