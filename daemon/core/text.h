/* text — small codecs every process shares: hex for fingerprints, pins and keylog
 * secrets; the quoting of log values; JSON strings. */
#ifndef KTLSTUN_TEXT_H
#define KTLSTUN_TEXT_H

#include <stddef.h>
#include <stdio.h>

/* Returns the value of the hex digit C (either case), or -1. Not isxdigit(): a locale
 * must not change what a pin, a keylog line or an escape means. */
int text_hex_digit(char c);

/* Decodes exactly HEX_LEN hex digits (either case, no separators) at HEX into OUT,
 * which holds OUT_CAP bytes. Returns the number of bytes written (HEX_LEN / 2), or -1
 * when HEX_LEN is 0 or odd, the bytes do not fit, or a character is not a hex digit
 * (OUT may then hold part of the result). */
long text_hex_decode(const char *hex, size_t hex_len, unsigned char *out, size_t out_cap);

/* Decodes TEXT, exactly 2 * LEN hex digits in either case with any colons between
 * them ("AB:CD:…", as openssl prints fingerprints), into the LEN bytes at OUT.
 * Returns 0, or -1 when TEXT is anything else (OUT may then hold part of it). */
int text_hex_decode_fingerprint(const char *text, unsigned char *out, size_t len);

/* Writes the LEN bytes at BYTES as 2 * LEN lowercase hex digits and a NUL into OUT,
 * which the caller sizes 2 * LEN + 1. */
void text_hex_encode(const unsigned char *bytes, size_t len, char *out);

/* Copies TEXT (NULL is "") into BUF (LEN bytes, NUL-terminated) for use inside double
 * quotes in a log line: '"' and '\\' get a backslash, CR and LF become spaces, so the
 * value stays on one line and unambiguous; a value that does not fit is cut. Returns
 * BUF. */
const char *text_log_quote(const char *text, char *buf, size_t len);

/* Copies TEXT whole into OUT (CAP bytes, NUL-terminated). Returns 0, or -1 with OUT
 * untouched when TEXT does not fit: a name cut short would name something else. */
int text_copy(char *out, size_t cap, const char *text);

/* Writes TEXT to OUT as a JSON string, quotes included: '"' and '\\' escaped, control
 * bytes as \u00XX, every other byte as it is. */
void text_json_string(FILE *out, const char *text);

#endif
