/* web_page — the HTTP responses of the browser login page, pure: each function writes
 * one whole response (status line, headers, body) into a caller's buffer.
 *
 * Every response carries a strict Content-Security-Policy (nothing but its own inline
 * style, by hash; forms post only to this origin; no framing, no base), X-Frame-Options
 * DENY, Cache-Control no-store and Referrer-Policy no-referrer. The page has no
 * script and no external asset; every text in it is HTML-escaped. */
#ifndef KTLSTUN_WEB_PAGE_H
#define KTLSTUN_WEB_PAGE_H

#include <stddef.h>

/* The largest body a page may have: every text escaped at worst (6 bytes a byte). */
#define WEB_PAGE_BODY_MAX 16384

/* Where the form posts; any POST on a login page connection is its answer. */
#define WEB_PAGE_FORM_PATH "/.ktlstun/login"

struct web_page_form {
    const char *tunnel;       /* the server tunnel's name */
    const char *identity;     /* whose certificate (the user map's identity) */
    const char *notes;        /* PAM's messages so far, lines split by '\n'; "" for none;
                                 with ERROR and PROMPT, about 2000 bytes at most */
    const char *error;        /* why the last attempt failed; "" for none */
    const char *prompt;       /* PAM's prompt */
    int echo_off;             /* a secret (password field) or not */
    const char *csrf;         /* the conversation's token */
};

/* Writes the 200 response with the form for FORM's prompt into OUT (CAP bytes);
 * with HEAD set, the headers only. Returns its length, or 0 when it does not fit. */
size_t web_page_form(char *out, size_t cap, const struct web_page_form *form, int head);

/* Writes a response with STATUS (e.g. 403 "Forbidden"), a page titled TITLE showing
 * TEXT, and a link to LINK when not NULL; CLOSE adds "Connection: close". Returns its
 * length, or 0 when it does not fit. */
size_t web_page_message(char *out, size_t cap, int status, const char *title, const char *text,
                        const char *link, int close);

/* Writes a 303 See Other to LOCATION (a local path the caller checked) with
 * "Connection: close", so that the browser's next request opens a new connection.
 * Returns its length, or 0 when it does not fit. */
size_t web_page_redirect(char *out, size_t cap, const char *location);

/* Returns the reason phrase of STATUS ("Bad Request" for 400, …). */
const char *web_page_reason(int status);

#endif
