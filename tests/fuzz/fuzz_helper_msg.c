/* fuzz_helper_msg — libFuzzer target for the messages between workers, the PAM helper
 * and its per-login children (helper_msg_valid, helper_msg_recv, helper_msg_set_text).
 *
 * The input is one datagram of any size. Checked: the validator reads nothing past
 * the length it is given, accepts only what it promises (right size, known type,
 * strings terminated, text as long as TEXT_LEN says, the fields of its type filled
 * in); a datagram through a SOCK_SEQPACKET pair is received whole or refused and
 * wiped; any text helper_msg_set_text takes makes a valid message.
 *
 *   make fuzz FUZZ_RUN=helper_msg
 * tests/unit/test_fuzz_corpus.c replays the corpus in `make check` without clang. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz_check.h"
#include "proto/helper_msg.h"

#define TERMINATED(field) (memchr((field), '\0', sizeof(field)) != NULL)

static void check_valid(const struct helper_msg *msg)
{
    CHECK(TERMINATED(msg->tunnel) && TERMINATED(msg->identity) && TERMINATED(msg->user) &&
          TERMINATED(msg->sha256) && TERMINATED(msg->source));
    CHECK(msg->text_len <= AUTH_TEXT_MAX && strlen(msg->text) == msg->text_len);
    switch (msg->type) {
    case HELPER_MSG_BEGIN:
        CHECK(msg->id != 0 && msg->tunnel[0] && msg->identity[0] && msg->user[0] &&
              msg->source[0] && strlen(msg->sha256) == LIMIT_SHA256_HEX);
        break;
    case HELPER_MSG_HANDSHAKE_FAILURE:
        CHECK(msg->tunnel[0] && msg->source[0]);
        break;
    case HELPER_MSG_PROMPT:
        CHECK(msg->style == AUTH_FRAME_PROMPT_ECHO_OFF || msg->style == AUTH_FRAME_PROMPT_ECHO_ON ||
              msg->style == AUTH_FRAME_INFO || msg->style == AUTH_FRAME_ERROR);
        break;
    case HELPER_MSG_RESULT:
        CHECK(msg->style <= AUTH_RESULT_LAST);
        break;
    case HELPER_MSG_DISCONNECT:
        CHECK(msg->identity[0]);
        break;
    default:
        CHECK(msg->type == HELPER_MSG_ANSWER || msg->type == HELPER_MSG_CANCEL ||
              msg->type == HELPER_MSG_RECHECK);
        break;
    }
}

static int same_bytes(const void *a, const void *b, size_t len)
{
    return memcmp(a, b, len) == 0;
}

/* The datagram as the processes exchange it. */
static void check_recv(const uint8_t *data, size_t size, int valid)
{
    static int pair[2] = { -1, -1 };
    if (pair[0] < 0)
        CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, pair) == 0);
    if (send(pair[0], data, size, MSG_NOSIGNAL) != (ssize_t)size)
        return;     /* larger than the socket takes: nothing to receive */
    struct helper_msg msg;
    memset(&msg, 0x5a, sizeof(msg));
    errno = 0;
    int got = helper_msg_recv(pair[1], &msg);
    if (size == 0) {
        /* An empty datagram reads as the end of the stream. */
        CHECK(got == 0);
    } else if (valid) {
        CHECK(got == 1 && same_bytes(&msg, data, sizeof(msg)));
        check_valid(&msg);
    } else {
        static const struct helper_msg wiped;
        CHECK(got == -1 && errno == EBADMSG && same_bytes(&msg, &wiped, sizeof(msg)));
    }
}

static void check_set_text(const uint8_t *data, size_t size)
{
    struct helper_msg msg;
    helper_msg_init(&msg, HELPER_MSG_PROMPT, 1);
    msg.style = AUTH_FRAME_INFO;
    helper_msg_set_text(&msg, data, size);
    size_t kept = size < AUTH_TEXT_MAX ? size : AUTH_TEXT_MAX;
    CHECK(msg.text_len == strnlen((const char *)data, kept));
    CHECK(memcmp(msg.text, data, msg.text_len) == 0);
    CHECK(helper_msg_valid(&msg, sizeof(msg)) == 1);
    helper_msg_wipe(&msg);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exactly SIZE bytes: a validator that looked past the length would read past them. */
    struct helper_msg *msg = malloc(size > 0 ? size : 1);
    CHECK(msg != NULL);
    if (size > 0)
        memcpy(msg, data, size);
    int valid = helper_msg_valid(msg, size);
    CHECK(valid == 0 || valid == 1);
    if (valid) {
        CHECK(size == sizeof(*msg));
        check_valid(msg);
    }
    free(msg);
    check_recv(data, size, valid);
    check_set_text(data, size);
    return 0;
}
