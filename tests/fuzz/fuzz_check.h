/* fuzz_check — what every libFuzzer target here shares: the entry point's prototype
 * (libFuzzer calls it; -Wmissing-prototypes wants one) and CHECK, which turns a
 * broken promise of the module under test into a crash the fuzzer reports, in the
 * clang build and in the corpus replay alike (assert would vanish under NDEBUG). */
#ifndef KTLSTUN_FUZZ_CHECK_H
#define KTLSTUN_FUZZ_CHECK_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(condition)         \
    do {                         \
        if (!(condition))        \
            abort();             \
    } while (0)

#endif
