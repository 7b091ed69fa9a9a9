/* fuzz_keylog — libFuzzer target for the keylog line parser (ktls_keys_note_keylog_line):
 * "LABEL CLIENT_RANDOM_HEX SECRET_HEX" lines, as OpenSSL's keylog callback hands them
 * to a connection.
 *
 * The input is split at '\n' (each line keeps its newline, which the parser
 * tolerates) and every line goes to one connection's secrets. Checked: a line that is
 * not stored changes nothing; a stored one fills the slot its label names with a
 * secret of a length the suites use, under the client random of every earlier stored
 * line.
 *
 *   make fuzz FUZZ_RUN=keylog
 * tests/unit/test_fuzz_corpus.c replays the corpus in `make check` without clang. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "core/log.h"
#include "ktls/ktls_keys.h"

static int starts_with(const char *line, const char *label)
{
    size_t len = strlen(label);
    return strncmp(line, label, len) == 0 && line[len] == ' ';
}

static int same_bytes(const void *a, const void *b, size_t len)
{
    return memcmp(a, b, len) == 0;
}

static void check_line(struct ktls_secrets *secrets, const char *line)
{
    struct ktls_secrets before = *secrets;
    int stored = ktls_keys_note_keylog_line(secrets, line);
    CHECK(stored >= -1 && stored <= 1);
    if (stored <= 0) {
        CHECK(same_bytes(&before, secrets, sizeof(before)));
        return;
    }
    CHECK(secrets->have_client_random);
    if (before.have_client_random)
        CHECK(memcmp(before.client_random, secrets->client_random, KTLS_KEYS_RANDOM_LEN) == 0);
    const struct ktls_secret *slot;
    if (starts_with(line, "CLIENT_RANDOM")) {
        slot = &secrets->master;
        CHECK(slot->len == KTLS_KEYS_MAX_SECRET_LEN);
    } else if (starts_with(line, "CLIENT_TRAFFIC_SECRET_0")) {
        slot = &secrets->client_traffic;
    } else {
        CHECK(starts_with(line, "SERVER_TRAFFIC_SECRET_0"));
        slot = &secrets->server_traffic;
    }
    CHECK(slot->len == 32 || slot->len == 48);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Malformed lines are logged; thousands a second would drown the fuzzer's own output. */
    log_init("fuzz_keylog", (enum log_level)(LOG_LEVEL_ERROR - 1));
    struct ktls_secrets secrets;
    memset(&secrets, 0, sizeof(secrets));
    size_t start = 0;
    while (start < size) {
        const uint8_t *newline = memchr(data + start, '\n', size - start);
        size_t end = newline != NULL ? (size_t)(newline - data) + 1 : size;
        char *line = malloc(end - start + 1);
        CHECK(line != NULL);
        memcpy(line, data + start, end - start);
        line[end - start] = '\0';
        check_line(&secrets, line);
        free(line);
        start = end;
    }
    ktls_keys_wipe(&secrets);
    return 0;
}
