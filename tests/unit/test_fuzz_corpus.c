/* A fuzz target's corpus (tests/fuzz/corpus/NAME), replayed through the target itself
 * in every `make check`, with or without clang. The Makefile builds this file once per
 * target in tests/fuzz/ (build/tests/test_fuzz_NAME, FUZZ_NAME and FUZZ_SOURCE set):
 * each corpus file, its prefixes (all of a small file), deterministic mutations
 * of them, and the inputs the target generates itself when it has a generator
 * (FUZZ_REPLAY_GENERATE). The target aborts when its parser breaks a promise, which
 * fails this test; so does a corpus that is missing or nearly empty. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* The Makefile names the target; built bare (an editor, clang-tidy), the login frames. */
#ifndef FUZZ_NAME
#define FUZZ_NAME "auth_frame"
#define FUZZ_SOURCE "../fuzz/fuzz_auth_frame.c"
#endif

#define FUZZ_REPLAY 1
/* The target's source itself, so the replay runs exactly the checks libFuzzer runs. */
// NOLINTNEXTLINE(bugprone-suspicious-include)
#include FUZZ_SOURCE

#define MIN_CORPUS_FILES 20
#define CORPUS_FILE_MAX (1 << 20)
#define MUTATIONS_PER_FILE 32

struct input {
    unsigned char *data;
    size_t len;
};

static struct input *corpus;
static size_t corpus_count;

/* tests/unit/THIS.c → tests/fuzz/corpus/NAME, unless KTLSTUN_FUZZ_CORPORA names
 * the folder that holds the corpora. */
static void corpus_dir(char *buf, size_t len)
{
    const char *env = getenv("KTLSTUN_FUZZ_CORPORA");
    if (env != NULL) {
        snprintf(buf, len, "%s/%s", env, FUZZ_NAME);
        return;
    }
    snprintf(buf, len, "%s", __FILE__);
    char *unit = strstr(buf, "unit/");
    assert_non_null(unit);
    snprintf(unit, len - (size_t)(unit - buf), "fuzz/corpus/%s", FUZZ_NAME);
}

static void read_input(const char *path, struct input *input)
{
    FILE *file = fopen(path, "rb");
    assert_non_null(file);
    input->data = malloc(CORPUS_FILE_MAX);
    assert_non_null(input->data);
    input->len = fread(input->data, 1, CORPUS_FILE_MAX, file);
    assert_int_equal(ferror(file), 0);
    fclose(file);
}

static int load_corpus(void **state)
{
    (void)state;
    char dir_path[4096], path[8192];
    corpus_dir(dir_path, sizeof(dir_path));
    DIR *dir = opendir(dir_path);
    if (dir == NULL) {
        fprintf(stderr, "no fuzz corpus at %s (run from the source tree or set "
                "KTLSTUN_FUZZ_CORPORA)\n", dir_path);
        return -1;
    }
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        struct input *grown = realloc(corpus, (corpus_count + 1) * sizeof(*grown));
        if (grown == NULL)
            break;
        corpus = grown;
        snprintf(path, sizeof(path), "%s/%s", dir_path, entry->d_name);
        read_input(path, &corpus[corpus_count++]);
    }
    closedir(dir);
    if (corpus_count < MIN_CORPUS_FILES) {
        fprintf(stderr, "the fuzz corpus at %s holds %zu files, fewer than %d\n", dir_path,
                corpus_count, MIN_CORPUS_FILES);
        return -1;
    }
    return 0;
}

static int free_corpus(void **state)
{
    (void)state;
    for (size_t i = 0; i < corpus_count; i++)
        free(corpus[i].data);
    free(corpus);
    corpus = NULL;
    corpus_count = 0;
    return 0;
}

/* A heap copy of exactly LEN bytes, so ASan sees a read past the input. */
static void run(const unsigned char *data, size_t len)
{
    unsigned char *copy = malloc(len > 0 ? len : 1);
    assert_non_null(copy);
    if (len > 0)
        memcpy(copy, data, len);
    LLVMFuzzerTestOneInput(copy, len);
    free(copy);
}

static void test_corpus_files(void **state)
{
    (void)state;
    for (size_t i = 0; i < corpus_count; i++)
        run(corpus[i].data, corpus[i].len);
}

/* Every prefix of a file up to PREFIX_ALL bytes long; of a longer one, those that cut
 * into its first and last PREFIX_EDGE bytes (headers, the last line) and PREFIX_SPREAD
 * more in between, so a few large files cannot make the replay slow. */
#define PREFIX_ALL ((size_t)512)
#define PREFIX_EDGE ((size_t)256)
#define PREFIX_SPREAD ((size_t)64)

static void test_every_prefix_of_the_corpus(void **state)
{
    (void)state;
    for (size_t i = 0; i < corpus_count; i++) {
        size_t len = corpus[i].len;
        size_t step = len > PREFIX_ALL ? (len - 2 * PREFIX_EDGE) / PREFIX_SPREAD + 1 : 1;
        for (size_t cut = 0; cut < len; cut++) {
            if (len > PREFIX_ALL && cut >= PREFIX_EDGE && cut < len - PREFIX_EDGE &&
                (cut - PREFIX_EDGE) % step != 0)
                continue;
            run(corpus[i].data, cut);
        }
    }
}

/* xorshift64: the same inputs on every run. */
static uint64_t next_random(uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

/* Writes a variant of A into OUT (CAP bytes): a few bytes flipped or replaced by ones
 * parsers care about, a range deleted or repeated, or the tail taken from B. */
static size_t mutate(uint64_t *x, const struct input *a, const struct input *b,
                     unsigned char *out, size_t cap)
{
    static const unsigned char special[] = { 0, 0xff, 0x80, 0x7f, '\n', '\r', ' ', '\t', '=',
                                             '%', '#', ';', ':', '[', ']', '"', '\\', '0', '9' };
    size_t len = a->len < cap ? a->len : cap;
    memcpy(out, a->data, len);
    unsigned rounds = 1 + (unsigned)(next_random(x) % 4);
    for (unsigned round = 0; round < rounds; round++) {
        uint64_t r = next_random(x);
        size_t pos = len > 0 ? (size_t)((r >> 8) % len) : 0;
        size_t span = 1 + (size_t)((r >> 40) % 16);
        if (span > len - pos)
            span = len - pos;
        switch (r % 5) {
        case 0:
            if (len > 0)
                out[pos] ^= (unsigned char)(1u << ((r >> 4) % 8));
            break;
        case 1:
            if (len > 0)
                out[pos] = special[(r >> 32) % sizeof(special)];
            break;
        case 2:
            memmove(out + pos, out + pos + span, len - pos - span);
            len -= span;
            break;
        case 3:
            if (len + span <= cap) {
                memmove(out + pos + span, out + pos, len - pos);
                len += span;
            }
            break;
        default: {
            size_t from = b->len > 0 ? (size_t)((r >> 16) % b->len) : 0;
            size_t tail = b->len - from < cap - pos ? b->len - from : cap - pos;
            memcpy(out + pos, b->data + from, tail);
            len = pos + tail;
            break;
        }
        }
    }
    return len;
}

static void test_mutated_corpus(void **state)
{
    (void)state;
    uint64_t x = 0x2545f4914f6cdd1dull;
    unsigned char *buf = malloc(8192);
    assert_non_null(buf);
    for (size_t i = 0; i < corpus_count; i++) {
        for (int n = 0; n < MUTATIONS_PER_FILE; n++) {
            const struct input *other = &corpus[next_random(&x) % corpus_count];
            run(buf, mutate(&x, &corpus[i], other, buf, 8192));
        }
    }
    free(buf);
}

#ifdef FUZZ_REPLAY_GENERATE
static void test_generated_inputs(void **state)
{
    (void)state;
    uint64_t x = 0x9e3779b97f4a7c15ull;
    unsigned char *buf = malloc(16384);
    assert_non_null(buf);
    for (int round = 0; round < 4000; round++)
        run(buf, FUZZ_REPLAY_GENERATE(&x, buf, 16384));
    free(buf);
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_files),
        cmocka_unit_test(test_every_prefix_of_the_corpus),
        cmocka_unit_test(test_mutated_corpus),
#ifdef FUZZ_REPLAY_GENERATE
        cmocka_unit_test(test_generated_inputs),
#endif
    };
    return cmocka_run_group_tests_name(FUZZ_NAME, tests, load_corpus, free_corpus);
}
