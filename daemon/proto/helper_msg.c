#include "proto/helper_msg.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>

#include "core/seqpacket.h"

#include <openssl/crypto.h>

#define TERMINATED(field) (memchr((field), '\0', sizeof(field)) != NULL)

static int valid_prompt_style(uint32_t style)
{
    return style == AUTH_FRAME_PROMPT_ECHO_OFF || style == AUTH_FRAME_PROMPT_ECHO_ON ||
           style == AUTH_FRAME_INFO || style == AUTH_FRAME_ERROR;
}

int helper_msg_valid(const struct helper_msg *msg, size_t len)
{
    if (len != sizeof(*msg))
        return 0;
    if (!TERMINATED(msg->tunnel) || !TERMINATED(msg->identity) || !TERMINATED(msg->user) ||
        !TERMINATED(msg->sha256) || !TERMINATED(msg->source))
        return 0;
    if (msg->text_len > AUTH_TEXT_MAX || msg->text[msg->text_len] != '\0' ||
        memchr(msg->text, '\0', msg->text_len) != NULL)
        return 0;
    switch (msg->type) {
    case HELPER_MSG_BEGIN:
        return msg->tunnel[0] != '\0' && msg->identity[0] != '\0' && msg->user[0] != '\0' &&
               strlen(msg->sha256) == 64 && msg->source[0] != '\0' && msg->id != 0;
    case HELPER_MSG_ANSWER:
    case HELPER_MSG_CANCEL:
        return 1;
    case HELPER_MSG_HANDSHAKE_FAILURE:
        return msg->tunnel[0] != '\0' && msg->source[0] != '\0';
    case HELPER_MSG_PROMPT:
        return valid_prompt_style(msg->style);
    case HELPER_MSG_RESULT:
        return msg->style <= AUTH_RESULT_LAST;
    case HELPER_MSG_DISCONNECT:
        return msg->identity[0] != '\0';
    case HELPER_MSG_RECHECK:
        return 1;
    default:
        return 0;
    }
}

void helper_msg_init(struct helper_msg *msg, enum helper_msg_type type, uint32_t id)
{
    memset(msg, 0, sizeof(*msg));
    msg->type = type;
    msg->id = id;
}

void helper_msg_set_text(struct helper_msg *msg, const void *text, size_t len)
{
    if (len > AUTH_TEXT_MAX)
        len = AUTH_TEXT_MAX;
    memset(msg->text, 0, sizeof(msg->text));
    if (len > 0)
        memcpy(msg->text, text, len);
    /* A NUL inside would make the message invalid: the text ends there instead. */
    msg->text_len = (uint32_t)strnlen(msg->text, len);
}

int helper_msg_send(int fd, const struct helper_msg *msg)
{
    return seqpacket_send(fd, msg, sizeof(*msg));
}

int helper_msg_recv(int fd, struct helper_msg *msg)
{
    ssize_t got = seqpacket_recv(fd, msg, sizeof(*msg));
    if (got < 0)
        return -1;
    if (got == 0)
        return 0;
    if (!helper_msg_valid(msg, (size_t)got)) {
        helper_msg_wipe(msg);
        errno = EBADMSG;
        return -1;
    }
    return 1;
}

void helper_msg_wipe(struct helper_msg *msg)
{
    OPENSSL_cleanse(msg, sizeof(*msg));
}
