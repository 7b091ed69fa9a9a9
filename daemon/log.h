/* log — the daemon's one logger: stderr (foreground) or syslog-priority lines.
 *
 * Every message is one line. Secrets never reach this module. */
#ifndef KTLSTUN_LOG_H
#define KTLSTUN_LOG_H

#include <stdarg.h>

enum log_level { LOG_LEVEL_ERROR = 3, LOG_LEVEL_WARNING = 4, LOG_LEVEL_NOTICE = 5,
                 LOG_LEVEL_INFO = 6, LOG_LEVEL_DEBUG = 7 };

/* Sets the program name shown in each line and the lowest level that is written. */
void log_init(const char *program, enum log_level level);

/* Sends lines to syslog (daemon facility) instead of stderr: for a detached daemon. */
void log_use_syslog(void);

/* Changes the level (after a reload). */
void log_set_level(enum log_level level);

/* Parses "error|warning|notice|info|debug"; returns 0 and sets *level, or -1. */
int log_level_parse(const char *text, enum log_level *level);

/* Writes one line at LEVEL. */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes one line at LEVEL ending with ": " and the reasons on OpenSSL's error queue
 * (which it empties). */
void log_openssl(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...)   log_msg(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_LEVEL_WARNING, __VA_ARGS__)
#define log_notice(...)  log_msg(LOG_LEVEL_NOTICE, __VA_ARGS__)
#define log_info(...)    log_msg(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...)   log_msg(LOG_LEVEL_DEBUG, __VA_ARGS__)

#endif
