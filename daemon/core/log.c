#include "core/log.h"

#include <errno.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <syslog.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

static const char *log_program = "ktlstun";
static enum log_level log_threshold = LOG_LEVEL_INFO;
static int log_to_syslog;
static int log_to_journal;
static int log_plain;
static int log_mirror;

static const char *const level_names[] = {
    [LOG_LEVEL_ERROR] = "error", [LOG_LEVEL_WARNING] = "warning",
    [LOG_LEVEL_NOTICE] = "notice", [LOG_LEVEL_INFO] = "info", [LOG_LEVEL_DEBUG] = "debug",
};

void log_init(const char *program, enum log_level level)
{
    log_program = program;
    log_threshold = level;
}

void log_use_plain_stderr(void)
{
    log_plain = 1;
}

void log_use_syslog(void)
{
    openlog(log_program, LOG_PID | LOG_NDELAY, LOG_DAEMON);
    log_to_syslog = 1;
}

void log_mirror_to_stderr(int on)
{
    log_mirror = on;
}

int log_use_journal_if_connected(void)
{
    const char *stream = getenv("JOURNAL_STREAM");
    struct stat st;
    if (stream == NULL || fstat(STDERR_FILENO, &st) < 0)
        return 0;
    /* "DEVICE:INODE" of the stream systemd connected stderr to. */
    char *end;
    errno = 0;
    unsigned long long device = strtoull(stream, &end, 10);
    if (errno != 0 || end == stream || *end != ':')
        return 0;
    const char *inode_text = end + 1;
    unsigned long long inode = strtoull(inode_text, &end, 10);
    if (errno != 0 || end == inode_text || *end != '\0' || st.st_dev != device ||
        st.st_ino != inode)
        return 0;
    log_to_journal = 1;
    return 1;
}

void log_set_level(enum log_level level)
{
    log_threshold = level;
}

int log_level_parse(const char *text, enum log_level *level)
{
    for (int i = LOG_LEVEL_ERROR; i <= LOG_LEVEL_DEBUG; i++) {
        if (strcasecmp(text, level_names[i]) == 0) {
            *level = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

#define MAX_JOURNAL_FIELDS 24

static void journal_write(enum log_level level, const char *message, const char *message_id,
                          const struct log_field *fields, size_t count)
{
    struct iovec iov[MAX_JOURNAL_FIELDS + 4];
    char buffers[MAX_JOURNAL_FIELDS + 4][640];
    size_t n = 0;
    snprintf(buffers[n], sizeof(buffers[n]), "PRIORITY=%d", (int)level);
    n++;
    snprintf(buffers[n], sizeof(buffers[n]), "SYSLOG_IDENTIFIER=%s", log_program);
    n++;
    if (message_id != NULL) {
        snprintf(buffers[n], sizeof(buffers[n]), "MESSAGE_ID=%s", message_id);
        n++;
    }
    for (size_t i = 0; i < count && i < MAX_JOURNAL_FIELDS; i++, n++)
        snprintf(buffers[n], sizeof(buffers[n]), "%s=%s", fields[i].name,
                 fields[i].value ? fields[i].value : "");
    for (size_t i = 0; i < n; i++)
        iov[i] = (struct iovec){ .iov_base = buffers[i], .iov_len = strlen(buffers[i]) };
    /* MESSAGE may be longer than a field buffer. */
    char message_field[4200];
    snprintf(message_field, sizeof(message_field), "MESSAGE=%s", message);
    iov[n++] = (struct iovec){ .iov_base = message_field, .iov_len = strlen(message_field) };
    sd_journal_sendv(iov, (int)n);
}

/* One write(2) per line, so lines from several workers sharing stderr never interleave. */
static void log_write_event(enum log_level level, const char *message_id,
                            const struct log_field *fields, size_t count, const char *fmt,
                            va_list args, const char *suffix)
{
    char line[4096];
    int used = log_plain ? 0
                         : snprintf(line, sizeof(line), "%s[%d]: %s: ", log_program,
                                    (int)getpid(), level_names[level]);
    if (used < 0)
        return;
    size_t pos = (size_t)used < sizeof(line) ? (size_t)used : sizeof(line) - 1;
    size_t prefix_len = pos;
    int body = vsnprintf(line + pos, sizeof(line) - pos, fmt, args);
    if (body > 0)
        pos += (size_t)body < sizeof(line) - pos ? (size_t)body : sizeof(line) - pos - 1;
    if (suffix != NULL && pos < sizeof(line) - 1) {
        int extra = snprintf(line + pos, sizeof(line) - pos, "%s", suffix);
        if (extra > 0)
            pos += (size_t)extra < sizeof(line) - pos ? (size_t)extra : sizeof(line) - pos - 1;
    }
    for (size_t i = 0; i < pos; i++)
        if (line[i] == '\n' || line[i] == '\r')
            line[i] = ' ';
    if (log_to_syslog) {
        line[pos] = '\0';
        syslog((int)level, "%s", line + prefix_len);
        if (!log_mirror)
            return;
    }
    if (log_to_journal) {
        line[pos] = '\0';
        journal_write(level, line + prefix_len, message_id, fields, count);
        return;
    }
    if (pos >= sizeof(line) - 1)
        pos = sizeof(line) - 2;
    line[pos++] = '\n';
    ssize_t ignored = write(STDERR_FILENO, line, pos);
    (void)ignored;
}

static void log_write(enum log_level level, const char *fmt, va_list args, const char *suffix)
{
    log_write_event(level, NULL, NULL, 0, fmt, args, suffix);
}

void log_event(enum log_level level, const char *message_id, const struct log_field *fields,
               size_t count, const char *fmt, ...)
{
    if (level > log_threshold)
        return;
    va_list args;
    va_start(args, fmt);
    log_write_event(level, message_id, fields, count, fmt, args, NULL);
    va_end(args);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (level > log_threshold)
        return;
    va_list args;
    va_start(args, fmt);
    log_write(level, fmt, args, NULL);
    va_end(args);
}

const char *log_openssl_reason(const char *fallback)
{
    unsigned long code = ERR_peek_last_error();
    const char *reason = code != 0 ? ERR_reason_error_string(code) : NULL;
    ERR_clear_error();
    if (reason != NULL)
        return reason;
    return fallback != NULL ? fallback : "no reason given";
}

void log_openssl(enum log_level level, const char *fmt, ...)
{
    char reasons[1024] = "";
    size_t pos = 0;
    unsigned long code;
    while ((code = ERR_get_error()) != 0) {
        char text[256];
        ERR_error_string_n(code, text, sizeof(text));
        const char *reason = ERR_reason_error_string(code);
        int n = snprintf(reasons + pos, sizeof(reasons) - pos, "%s%s", pos ? "; " : ": ",
                         reason ? reason : text);
        if (n > 0 && (size_t)n < sizeof(reasons) - pos)
            pos += (size_t)n;
    }
    if (level > log_threshold)
        return;
    va_list args;
    va_start(args, fmt);
    log_write(level, fmt, args, reasons);
    va_end(args);
}
