/* fuzz_http_request — libFuzzer target for the browser login page's HTTP request
 * parser (http_request_parse) and its form decoder.
 *
 * Beyond "does not crash" it checks what the parser promises: a request never claims
 * more bytes than it was given or than the limits allow, its target and body stay
 * inside it, the target is origin-form without blanks or control bytes, a request
 * parsed whole parses the same from a longer buffer, and decoded form values hold no
 * NUL and fit.
 *
 *   make fuzz FUZZ_RUN=http_request
 * tests/unit/test_fuzz_corpus.c replays the corpus in `make check` without clang. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "auth/http_request.h"

static void check_form(const unsigned char *body, size_t len)
{
    static const char *const names[] = { "csrf", "answer", "next", "" };
    char out[64];
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t used = 0;
        int found = http_request_form_field(body, len, names[i], out, sizeof(out), &used);
        CHECK(found >= -1 && found <= 1);
        if (found == 1) {
            CHECK(used < sizeof(out));
            CHECK(strlen(out) == used);
        } else if (found == -1) {
            CHECK(out[0] == '\0');
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t offset = 0;
    while (offset < size) {
        struct http_request req;
        size_t used = 0;
        enum http_parse_status status = http_request_parse(data + offset, size - offset, &req, &used);
        CHECK(status >= HTTP_PARSE_OK && status <= HTTP_PARSE_TOO_LARGE);
        CHECK(http_request_parse_error(status) != NULL);
        if (status != HTTP_PARSE_OK)
            break;
        CHECK(used > 0 && used <= size - offset && used <= HTTP_REQUEST_MAX);
        CHECK(req.target >= (const char *)data + offset && req.target_len > 0 &&
              req.target_len <= HTTP_REQUEST_TARGET_MAX);
        CHECK(req.target[0] == '/');
        for (size_t i = 0; i < req.target_len; i++)
            CHECK((unsigned char)req.target[i] > 0x20 && (unsigned char)req.target[i] < 0x7f);
        CHECK(req.body_len <= HTTP_REQUEST_BODY_MAX);
        CHECK(req.body + req.body_len == data + offset + used);
        CHECK(http_request_local_path(req.target, req.target_len) <= 1);
        /* The same request is found again in exactly its own bytes. */
        struct http_request again;
        size_t again_used = 0;
        CHECK(http_request_parse(data + offset, used, &again, &again_used) == HTTP_PARSE_OK);
        CHECK(again_used == used && again.target_len == req.target_len &&
              again.body_len == req.body_len && again.method == req.method);
        check_form(req.body, req.body_len);
        offset += used;
    }
    check_form(data, size < HTTP_REQUEST_BODY_MAX ? size : HTTP_REQUEST_BODY_MAX);
    return 0;
}
