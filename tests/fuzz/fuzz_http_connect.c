/* fuzz_http_connect — libFuzzer target for the parser of an HTTP proxy's reply to
 * CONNECT (http_connect_parse), which a client tunnel reads from the proxy.
 *
 * The input is the bytes the proxy sent. Checked: a complete head has a status from
 * 100 to 599 and ends within the input and within HTTP_CONNECT_REPLY_MAX with a blank
 * line; the status line kept is printable ASCII, NUL-terminated, within its bound; a
 * refusal has a problem; more is asked for only below HTTP_CONNECT_REPLY_MAX; and
 * every prefix of a complete head asks for more or is refused, never complete with
 * another length.
 *
 *   make fuzz FUZZ_RUN=http_connect
 * tests/unit/test_fuzz_corpus.c replays the corpus in `make check` without clang. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "proto/http_connect.h"

static void check_line(const struct http_connect_reply *reply)
{
    size_t len = strnlen(reply->status_line, sizeof(reply->status_line));
    CHECK(len <= HTTP_CONNECT_STATUS_LINE_MAX);
    for (size_t i = 0; i < len; i++)
        CHECK(reply->status_line[i] >= 0x20 && reply->status_line[i] < 0x7f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_connect_reply reply;
    const char *text = (const char *)data;
    int parsed = http_connect_parse(text, size, &reply);

    CHECK(parsed >= -1 && parsed <= 1);
    check_line(&reply);
    if (parsed == 0) {
        CHECK(size < HTTP_CONNECT_REPLY_MAX);
        return 0;
    }
    if (parsed < 0) {
        CHECK(reply.problem != NULL);
        return 0;
    }
    CHECK(reply.status >= 100 && reply.status <= 599);
    CHECK(reply.head_len >= 2 && reply.head_len <= size && reply.head_len <= HTTP_CONNECT_REPLY_MAX);
    CHECK(text[reply.head_len - 1] == '\n');
    CHECK(memcmp(text, "HTTP/1.", 7) == 0);
    size_t head = reply.head_len;
    struct http_connect_reply shorter;
    CHECK(http_connect_parse(text, head - 1, &shorter) == 0);
    CHECK(http_connect_parse(text, head, &shorter) == 1 && shorter.head_len == head &&
          shorter.status == reply.status);
    return 0;
}
