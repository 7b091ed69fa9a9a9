/* text — hex between bytes and text, for fingerprints, pins and keylog secrets. */
#ifndef KTLSTUN_TEXT_H
#define KTLSTUN_TEXT_H

#include <stddef.h>

/* Decodes exactly HEX_LEN hex digits (either case, no separators) at HEX into OUT,
 * which holds OUT_CAP bytes. Returns the number of bytes written (HEX_LEN / 2), or -1
 * when HEX_LEN is 0 or odd, the bytes do not fit, or a character is not a hex digit
 * (OUT may then hold part of the result). */
long text_hex_decode(const char *hex, size_t hex_len, unsigned char *out, size_t out_cap);

/* Writes the LEN bytes at BYTES as 2 * LEN lowercase hex digits and a NUL into OUT,
 * which the caller sizes 2 * LEN + 1. */
void text_hex_encode(const unsigned char *bytes, size_t len, char *out);

#endif
