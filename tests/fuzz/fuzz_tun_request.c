/* fuzz_tun_request — libFuzzer target for the worker's request for a hub TUN device and
 * the supervisor's reply (tun_request_decode, tun_request_reply_decode).
 *
 * The input is read as a request and as a reply. Beyond "does not crash" it checks
 * what the decoders promise: what decodes passes the checks and re-encodes to exactly
 * its bytes, and a request decodes the same from every shorter cut never.
 *
 *   make fuzz FUZZ_RUN=tun_request
 * tests/unit/test_fuzz_corpus.c replays the corpus in `make check` without clang. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "proto/tun_request.h"

static void check_request(const uint8_t *data, size_t size)
{
    struct tun_request req;
    const char *reason = NULL;
    int rc = tun_request_decode(data, size, &req, &reason);
    CHECK(reason != NULL);
    if (rc != 0)
        return;
    CHECK(tun_request_check(&req, &reason) == 0);
    CHECK(size <= TUN_REQUEST_MAX_LEN);
    unsigned char out[TUN_REQUEST_MAX_LEN];
    CHECK(tun_request_encode(&req, out, sizeof(out)) == size);
    CHECK(memcmp(out, data, size) == 0);
    /* Nothing follows a whole request: no prefix of it is one too. */
    CHECK(tun_request_decode(data, size - 1, &req, NULL) != 0);
}

static void check_reply(const uint8_t *data, size_t size)
{
    struct tun_reply reply;
    const char *reason = NULL;
    int rc = tun_request_reply_decode(data, size, &reply, &reason);
    CHECK(reason != NULL);
    if (rc != 0)
        return;
    CHECK(size <= TUN_REPLY_MAX_LEN);
    CHECK(reply.refused ? reply.device[0] == '\0' && reply.reason[0] != '\0'
                        : reply.device[0] != '\0' && reply.reason[0] == '\0');
    unsigned char out[TUN_REPLY_MAX_LEN];
    CHECK(tun_request_reply_encode(&reply, out, sizeof(out)) == size);
    CHECK(memcmp(out, data, size) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_request(data, size);
    check_reply(data, size);
    return 0;
}
