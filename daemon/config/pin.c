#include "config/pin.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "core/text.h"


static int base64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Strict base64 of exactly 32 bytes: 43 symbols and an optional '=' (HPKP's pin-sha256
 * and curl's sha256// form). */
static int decode_base64(const char *text, unsigned char digest[PIN_SHA256_LEN])
{
    size_t len = strlen(text);
    uint32_t bits = 0;
    int bit_count = 0;
    size_t out = 0;

    if (len == 44 && text[43] == '=')
        len = 43;
    if (len != 43)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int value = base64_value(text[i]);
        if (value < 0)
            return -1;
        bits = (bits << 6) | (uint32_t)value;
        bit_count += 6;
        if (bit_count >= 8) {
            bit_count -= 8;
            digest[out++] = (unsigned char)(bits >> bit_count);
            bits &= (1u << bit_count) - 1;
        }
    }
    /* 43 symbols carry 258 bits: the last 2 must be zero in a canonical encoding. */
    if (out != PIN_SHA256_LEN || bits != 0)
        return -1;
    return 0;
}

/* Colons may stand anywhere, so fingerprints copied from any tool's output work. */

int pin_decode(const char *text, unsigned char digest[PIN_SHA256_LEN])
{
    if (text_hex_decode_fingerprint(text, digest, PIN_SHA256_LEN) == 0)
        return 0;
    if (strncasecmp(text, "sha256//", 8) == 0)
        text += 8;
    return decode_base64(text, digest);
}
