/* status_record — the line format `ktlstun status` reads from each worker:
 *
 *   KIND key=value key=value ...\n      (KIND: worker, tunnel, conn; last line "end")
 *
 * Values are percent-encoded (space, '%', '=', control bytes), so a line always
 * splits on spaces. One module writes and parses it, so both ends agree. A reader
 * skips keys it does not know, so a record may gain keys (a tunnel's last_refusal_at,
 * last_refusal and last_refusal_identity, present once it has refused or been refused)
 * without breaking an older `ktlstun`. */
#ifndef KTLSTUN_STATUS_RECORD_H
#define KTLSTUN_STATUS_RECORD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define STATUS_RECORD_MAX_FIELDS 24

/* Writing: starts a record of KIND, adds fields, ends the line. */
void status_record_begin(FILE *out, const char *kind);
void status_record_text(FILE *out, const char *key, const char *value);
void status_record_number(FILE *out, const char *key, uint64_t value);
void status_record_end(FILE *out);

struct status_record {
    char *kind;
    size_t count;
    char *keys[STATUS_RECORD_MAX_FIELDS];
    char *values[STATUS_RECORD_MAX_FIELDS];   /* decoded */
};

/* Parses LINE (modified in place; no trailing newline) into RECORD, whose strings
 * point into LINE. Returns 0, or -1 when the line is malformed. */
int status_record_parse(char *line, struct status_record *record);

/* Returns the value of KEY in RECORD, or DEFAULT_VALUE. */
const char *status_record_get(const struct status_record *record, const char *key,
                              const char *default_value);

#endif
