/* fuzz_status_record — libFuzzer target for the status line format `ktlstun status`
 * reads from each worker (status_record_parse).
 *
 * The input is one line (a NUL ends it, as it ends the C string the reader hands
 * over). Checked: a parsed record has a kind without blanks, at most
 * STATUS_RECORD_MAX_FIELDS fields whose keys are non-empty and hold no '=' or blank,
 * every string inside the line; status_record_get finds each key's first value; and
 * writing the record back with the writer's functions parses to the same record.
 *
 *   make fuzz FUZZ_RUN=status_record
 * tests/unit/test_fuzz_corpus.c replays the corpus in `make check` without clang. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "proto/status_record.h"

static void check_inside(const char *text, const char *line, size_t size)
{
    CHECK(text >= line && text + strlen(text) <= line + size);
}

static void check_record(const struct status_record *record, const char *line, size_t size)
{
    CHECK(record->kind != NULL && record->kind[0] != '\0' && strchr(record->kind, ' ') == NULL);
    check_inside(record->kind, line, size);
    CHECK(record->count <= STATUS_RECORD_MAX_FIELDS);
    for (size_t i = 0; i < record->count; i++) {
        const char *key = record->keys[i];
        CHECK(key[0] != '\0' && strchr(key, '=') == NULL && strchr(key, ' ') == NULL);
        check_inside(key, line, size);
        check_inside(record->values[i], line, size);
        size_t first = 0;
        while (strcmp(record->keys[first], key) != 0)
            first++;
        CHECK(status_record_get(record, key, NULL) == record->values[first]);
    }
    CHECK(status_record_get(record, "no=such key", NULL) == NULL);
}

/* The record written back the way a worker writes it, then parsed again. */
static void check_round_trip(const struct status_record *record)
{
    char *text = NULL;
    size_t len = 0;
    FILE *out = open_memstream(&text, &len);
    CHECK(out != NULL);
    status_record_begin(out, record->kind);
    for (size_t i = 0; i < record->count; i++)
        status_record_text(out, record->keys[i], record->values[i]);
    status_record_end(out);
    CHECK(fclose(out) == 0);
    CHECK(len > 0 && text[len - 1] == '\n');
    text[len - 1] = '\0';

    struct status_record again;
    CHECK(status_record_parse(text, &again) == 0);
    CHECK(strcmp(again.kind, record->kind) == 0 && again.count == record->count);
    for (size_t i = 0; i < record->count; i++) {
        CHECK(strcmp(again.keys[i], record->keys[i]) == 0);
        CHECK(strcmp(again.values[i], record->values[i]) == 0);
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line = malloc(size + 1);
    CHECK(line != NULL);
    memcpy(line, data, size);
    line[size] = '\0';
    struct status_record record;
    if (status_record_parse(line, &record) == 0) {
        check_record(&record, line, size);
        check_round_trip(&record);
    }
    free(line);
    return 0;
}
