/* fuzz_tun_request — libFuzzer target for the messages of a worker's link with the
 * supervisor for network tunnels (tun_request_decode): hub, attach and configure
 * requests, releases, replies and end orders.
 *
 * Beyond "does not crash" it checks what the decoder promises: what decodes passes the
 * check and re-encodes to exactly its bytes, fits TUN_REQUEST_MAX_LEN, and no shorter
 * cut of it decodes as the same message.
 *
 *   make fuzz FUZZ_RUN=tun_request
 * tests/unit/test_fuzz_corpus.c replays the corpus in `make check` without clang. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "proto/tun_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tun_message msg, cut;
    const char *reason = NULL;
    int rc = tun_request_decode(data, size, &msg, &reason);
    CHECK(reason != NULL);
    if (rc != 0)
        return 0;
    CHECK(tun_request_check(&msg, &reason) == 0);
    CHECK(size <= TUN_REQUEST_MAX_LEN);
    unsigned char out[TUN_REQUEST_MAX_LEN];
    CHECK(tun_request_encode(&msg, out, sizeof(out)) == size);
    CHECK(memcmp(out, data, size) == 0);
    /* Nothing follows a whole message (a CONFIG payload's entries fix its length
     * too): no prefix of it is one. */
    CHECK(tun_request_decode(data, size - 1, &cut, NULL) != 0);
    return 0;
}
