/* log_limit — keeps a line that a flood repeats from flooding the log: in each
 * window of LOG_LIMIT_WINDOW_MS the first LOG_LIMIT_BURST lines are written, the
 * rest are counted, and when the window ends one summary line stands for them:
 * the last of them with " (and N more like it in the last 10 s)".
 *
 * Pure: the caller writes the lines, keeps one struct log_limit per kind of line
 * (zeroed to start), and asks for the summary on a timer as well as before each line. */
#ifndef KTLSTUN_LOG_LIMIT_H
#define KTLSTUN_LOG_LIMIT_H

#include <stddef.h>
#include <stdint.h>

#define LOG_LIMIT_WINDOW_MS 10000
#define LOG_LIMIT_BURST 5
#define LOG_LIMIT_TEXT 400          /* bytes of a held-back line kept for the summary */

struct log_limit {
    uint64_t window_start_ms;
    unsigned written;               /* lines written in this window */
    unsigned held_back;             /* lines held back in this window */
    char last[LOG_LIMIT_TEXT];      /* the last line held back */
};

/* LINE is due at NOW_MS. Returns 1 when the caller writes it now, 0 when it is held
 * back: counted, and kept (cut to LOG_LIMIT_TEXT - 1 bytes) for the summary. */
int log_limit_admit(struct log_limit *limit, uint64_t now_ms, const char *line);

/* When the window ended by NOW_MS with lines held back, writes the summary line into
 * OUT (LEN bytes), starts afresh and returns 1; otherwise returns 0. */
int log_limit_summary(struct log_limit *limit, uint64_t now_ms, char *out, size_t len);

#endif
