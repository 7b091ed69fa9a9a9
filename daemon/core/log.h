/* log — the daemon's one logger: stderr (foreground), the journal with structured
 * fields (under systemd), or syslog (detached).
 *
 * Every message is one line. Secrets never reach this module. */
#ifndef KTLSTUN_LOG_H
#define KTLSTUN_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum log_level { LOG_LEVEL_ERROR = 3, LOG_LEVEL_WARNING = 4, LOG_LEVEL_NOTICE = 5,
                 LOG_LEVEL_INFO = 6, LOG_LEVEL_DEBUG = 7 };

/* Sets the program name shown in each line and the lowest level that is written. */
void log_init(const char *program, enum log_level level);

/* Writes bare messages to stderr, without "program[pid]: level: " (what `-t` and
 * check-config print, so every problem reads FILE:LINE: ...). */
void log_use_plain_stderr(void);

/* Sends lines to syslog (daemon facility) instead of stderr: for a detached daemon. */
void log_use_syslog(void);

/* While ON, lines sent to syslog are written to stderr too (a detached daemon's
 * start-up, for the command that started it). */
void log_mirror_to_stderr(int on);

/* Sends lines to the journal, with fields, when stderr is the journal's stream
 * (JOURNAL_STREAM names it, as systemd sets it). Returns 1 when it does. */
int log_use_journal_if_connected(void);

/* A journal field of a log_event: NAME (upper case) and VALUE. */
struct log_field {
    const char *name;
    const char *value;
};

/* Writes one line at LEVEL like log_msg and, in the journal, also MESSAGE_ID (a
 * 32-hex-digit id, or NULL) and the COUNT FIELDS. */
void log_event(enum log_level level, const char *message_id, const struct log_field *fields,
               size_t count, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Changes the level (after a reload). */
void log_set_level(enum log_level level);

/* Parses "error|warning|notice|info|debug"; returns 0 and sets *level, or -1. */
int log_level_parse(const char *text, enum log_level *level);

/* Writes one line at LEVEL. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes one line at LEVEL ending with ": " and the reasons on OpenSSL's error queue
 * (which it empties). */
void log_openssl(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Returns the reason of OpenSSL's last error (a static string), or FALLBACK when its
 * queue holds none ("no reason given" for NULL), and empties the queue: for the end of
 * a message built elsewhere. */
const char *log_openssl_reason(const char *fallback);

#define log_error(...)   log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_notice(...)  log_msg(LOG_LEVEL_NOTICE, __VA_ARGS__)
#define log_info(...)    log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)   log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
