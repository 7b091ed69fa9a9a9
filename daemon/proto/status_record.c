#include "proto/status_record.h"

#include <string.h>

#include "core/text.h"

static int needs_escape(unsigned char c)
{
    return c <= ' ' || c == '%' || c == '=' || c == 0x7f;
}

static void write_escaped(FILE *out, const char *value)
{
    for (const unsigned char *p = (const unsigned char *)value; *p != '\0'; p++) {
        if (needs_escape(*p))
            fprintf(out, "%%%02X", *p);
        else
            fputc(*p, out);
    }
}

void status_record_begin(FILE *out, const char *kind)
{
    fputs(kind, out);
}

void status_record_text(FILE *out, const char *key, const char *value)
{
    fprintf(out, " %s=", key);
    write_escaped(out, value != NULL ? value : "");
}

void status_record_number(FILE *out, const char *key, uint64_t value)
{
    fprintf(out, " %s=%llu", key, (unsigned long long)value);
}

void status_record_end(FILE *out)
{
    fputc('\n', out);
}

/* Decodes %XX in place. Returns -1 on a broken escape. */
static int decode(char *text)
{
    char *out = text;
    for (char *in = text; *in != '\0'; in++) {
        if (*in != '%') {
            *out++ = *in;
            continue;
        }
        int high = text_hex_digit(in[1]), low = high < 0 ? -1 : text_hex_digit(in[2]);
        if (low < 0)
            return -1;
        *out++ = (char)(high * 16 + low);
        in += 2;
    }
    *out = '\0';
    return 0;
}

int status_record_parse(char *line, struct status_record *record)
{
    memset(record, 0, sizeof(*record));
    char *saveptr = NULL;
    record->kind = strtok_r(line, " ", &saveptr);
    if (record->kind == NULL)
        return -1;
    char *field;
    while ((field = strtok_r(NULL, " ", &saveptr)) != NULL) {
        char *equals = strchr(field, '=');
        if (equals == NULL || equals == field || record->count == STATUS_RECORD_MAX_FIELDS)
            return -1;
        *equals = '\0';
        if (decode(equals + 1) < 0)
            return -1;
        record->keys[record->count] = field;
        record->values[record->count] = equals + 1;
        record->count++;
    }
    return 0;
}

const char *status_record_get(const struct status_record *record, const char *key,
                              const char *default_value)
{
    for (size_t i = 0; i < record->count; i++)
        if (strcmp(record->keys[i], key) == 0)
            return record->values[i];
    return default_value;
}
