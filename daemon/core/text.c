#include "core/text.h"

#include <string.h>

int text_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

long text_hex_decode(const char *hex, size_t hex_len, unsigned char *out, size_t out_cap)
{
    if (hex_len == 0 || hex_len % 2 != 0 || hex_len / 2 > out_cap)
        return -1;
    for (size_t i = 0; i < hex_len / 2; i++) {
        int high = text_hex_digit(hex[2 * i]);
        int low = text_hex_digit(hex[2 * i + 1]);
        if (high < 0 || low < 0)
            return -1;
        out[i] = (unsigned char)(high << 4 | low);
    }
    return (long)(hex_len / 2);
}

int text_hex_decode_fingerprint(const char *text, unsigned char *out, size_t len)
{
    size_t digits = 0;
    int high = -1;

    for (const char *cursor = text; *cursor != '\0'; cursor++) {
        if (*cursor == ':')
            continue;
        int value = text_hex_digit(*cursor);
        if (value < 0 || digits == 2 * len)
            return -1;
        if (digits % 2 == 0)
            high = value;
        else
            out[digits / 2] = (unsigned char)(high << 4 | value);
        digits++;
    }
    return digits == 2 * len ? 0 : -1;
}

void text_hex_encode(const unsigned char *bytes, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * len] = '\0';
}

const char *text_log_quote(const char *text, char *buf, size_t len)
{
    size_t out = 0;
    for (const char *p = text ? text : ""; *p != '\0' && out + 3 < len; p++) {
        char c = *p;
        if (c == '"' || c == '\\')
            buf[out++] = '\\';
        if (c == '\n' || c == '\r')
            c = ' ';
        buf[out++] = c;
    }
    buf[out] = '\0';
    return buf;
}

void text_json_string(FILE *out, const char *text)
{
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)text; *p != '\0'; p++) {
        if (*p == '"' || *p == '\\')
            fprintf(out, "\\%c", *p);
        else if (*p < 0x20)
            fprintf(out, "\\u%04x", *p);
        else
            fputc(*p, out);
    }
    fputc('"', out);
}

int text_copy(char *out, size_t cap, const char *text)
{
    size_t len = strlen(text);
    if (len >= cap)
        return -1;
    memcpy(out, text, len + 1);
    return 0;
}
