/* The frame parser's fuzz corpus (tests/fuzz/corpus/auth_frame), replayed through
 * the fuzz target itself in every `make check`, with or without clang: each file,
 * every prefix of each file, and a few thousand deterministic pseudo-random inputs.
 * The target aborts when the parser breaks a promise, which fails this test. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "../fuzz/fuzz_auth_frame.c"

#define CORPUS_SUBDIR "fuzz/corpus/auth_frame"
#define MIN_CORPUS_FILES 20

/* tests/unit/THIS.c → tests/fuzz/corpus/auth_frame, unless KTLSTUN_FUZZ_CORPUS says. */
static void corpus_dir(char *buf, size_t len)
{
    const char *env = getenv("KTLSTUN_FUZZ_CORPUS");
    if (env != NULL) {
        snprintf(buf, len, "%s", env);
        return;
    }
    snprintf(buf, len, "%s", __FILE__);
    char *unit = strstr(buf, "unit/");
    assert_non_null(unit);
    snprintf(unit, len - (size_t)(unit - buf), "%s", CORPUS_SUBDIR);
}

static unsigned char *read_file(const char *path, size_t *len)
{
    FILE *file = fopen(path, "rb");
    assert_non_null(file);
    unsigned char *data = malloc(1 << 20);
    assert_non_null(data);
    *len = fread(data, 1, 1 << 20, file);
    assert_int_equal(ferror(file), 0);
    fclose(file);
    return data;
}

static void replay_corpus(int prefixes)
{
    char dir_path[4096], path[8192];
    corpus_dir(dir_path, sizeof(dir_path));
    DIR *dir = opendir(dir_path);
    if (dir == NULL)
        fail_msg("no fuzz corpus at %s (run from the source tree or set KTLSTUN_FUZZ_CORPUS)",
                 dir_path);
    unsigned files = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir_path, entry->d_name);
        size_t len;
        unsigned char *data = read_file(path, &len);
        if (prefixes) {
            for (size_t cut = 0; cut <= len; cut++)
                LLVMFuzzerTestOneInput(data, cut);
        } else {
            LLVMFuzzerTestOneInput(data, len);
        }
        free(data);
        files++;
    }
    closedir(dir);
    assert_true(files >= MIN_CORPUS_FILES);
}

static void test_corpus_files(void **state)
{
    (void)state;
    replay_corpus(0);
}

static void test_every_prefix_of_the_corpus(void **state)
{
    (void)state;
    replay_corpus(1);
}

/* Frames built from random bytes with headers that are often valid, so the parser's
 * deeper paths run too. xorshift: the same inputs on every run. */
static void test_pseudo_random_streams(void **state)
{
    (void)state;
    static const unsigned char types[] = { 0x01, 0x02, 0x11, 0x12, 0x13, 0x14, 0x20, 0x00, 0xff };
    uint64_t x = 0x9e3779b97f4a7c15ull;
    unsigned char buf[3 * AUTH_FRAME_MAX];
    for (int round = 0; round < 4000; round++) {
        size_t len = 0;
        while (len + AUTH_FRAME_HEADER_LEN < sizeof(buf)) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            size_t payload = (size_t)(x % 40 == 0 ? (x >> 8) % 1100 : (x >> 8) % 24);
            if (len + AUTH_FRAME_HEADER_LEN + payload > sizeof(buf))
                break;
            buf[len] = types[(x >> 20) % sizeof(types)];
            buf[len + 1] = (unsigned char)(payload >> 8);
            buf[len + 2] = (unsigned char)payload;
            for (size_t i = 0; i < payload; i++) {
                x ^= x << 13, x ^= x >> 7, x ^= x << 17;
                buf[len + AUTH_FRAME_HEADER_LEN + i] = (unsigned char)(x % 7 == 0 ? x >> 24 : 'a' + x % 26);
            }
            len += AUTH_FRAME_HEADER_LEN + payload;
            if (x % 5 == 0)
                break;
        }
        LLVMFuzzerTestOneInput(buf, len);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_corpus_files),
        cmocka_unit_test(test_every_prefix_of_the_corpus),
        cmocka_unit_test(test_pseudo_random_streams),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
