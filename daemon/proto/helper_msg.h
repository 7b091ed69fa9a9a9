/* helper_msg — the one fixed-size message workers, the PAM helper and its per-login
 * children exchange over SOCK_SEQPACKET socketpairs.
 *
 * Every message is exactly sizeof(struct helper_msg) bytes; a receiver drops the
 * peer on anything else. Strings are NUL-terminated inside their arrays; TEXT holds
 * TEXT_LEN bytes (prompts and answers, which may contain any byte but NUL). The
 * sender wipes a message that carried an answer.
 *
 *   worker → helper   BEGIN (id, tunnel, identity, user, sha256, source)
 *                     ANSWER (id, text)     CANCEL (id)
 *                     HANDSHAKE_FAILURE (tunnel, source, text = reason)
 *   helper → worker   PROMPT (id, style = AUTH_FRAME_PROMPT_* / INFO / ERROR, text)
 *                     RESULT (id, style = enum auth_result, value, failures, text)
 *                     DISCONNECT (identity = a key as `ktlstun disconnect` takes it: another
 *                     gateway's disconnect, through the shared state store)
 *                     RECHECK (no fields: an administrator revoked grants, so check the
 *                     live connections against the grants table now, not at the next
 *                     sweep)
 *   helper → child    ANSWER (text)
 *   child → helper    PROMPT (style, text)    RESULT (style = enum auth_result, text) */
#ifndef KTLSTUN_HELPER_MSG_H
#define KTLSTUN_HELPER_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "proto/auth_protocol.h"
#include "core/limits.h"

enum helper_msg_type {
    HELPER_MSG_BEGIN = 1,
    HELPER_MSG_ANSWER = 2,
    HELPER_MSG_CANCEL = 3,
    HELPER_MSG_HANDSHAKE_FAILURE = 4,
    HELPER_MSG_PROMPT = 5,
    HELPER_MSG_RESULT = 6,
    HELPER_MSG_DISCONNECT = 7,
    HELPER_MSG_RECHECK = 8,
};

struct helper_msg {
    uint32_t type;
    uint32_t id;
    uint32_t style;
    uint32_t text_len;
    int64_t value;
    uint32_t failures;
    char tunnel[LIMIT_TUNNEL_NAME + 1];
    char identity[LIMIT_IDENTITY + 1];
    char user[LIMIT_USER_NAME + 1];
    char sha256[LIMIT_SHA256_HEX + 1];
    char source[LIMIT_SOURCE_ADDRESS + 1];
    char text[AUTH_TEXT_MAX + 1];
};

/* Returns 1 when MSG (as received, LEN bytes) is well-formed: right size, known type,
 * every string terminated, TEXT_LEN in range and TEXT terminated there, the fields
 * its type needs non-empty, STYLE valid for its type. */
int helper_msg_valid(const struct helper_msg *msg, size_t len);

/* Zeroes MSG and sets TYPE and ID. */
void helper_msg_init(struct helper_msg *msg, enum helper_msg_type type, uint32_t id);

/* Sets MSG's text to LEN bytes at TEXT (cut at AUTH_TEXT_MAX). */
void helper_msg_set_text(struct helper_msg *msg, const void *text, size_t len);

/* Sends MSG on FD (whole message or nothing, never blocking when FD is
 * non-blocking). Returns 0, or -1 with errno set. */
int helper_msg_send(int fd, const struct helper_msg *msg);

/* Receives one message from FD into MSG. Returns 1 for a valid message, 0 at end of
 * stream, -1 with errno (EAGAIN: nothing yet; EBADMSG: malformed, MSG wiped). */
int helper_msg_recv(int fd, struct helper_msg *msg);

/* Wipes MSG (OPENSSL_cleanse): for messages that carried an answer. */
void helper_msg_wipe(struct helper_msg *msg);

#endif
