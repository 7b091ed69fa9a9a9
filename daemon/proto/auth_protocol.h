/* auth_protocol — the frames of the second-factor login channel (ALPN
 * "ktlstun-auth/1" on a gated tunnel's listener), both directions.
 *
 * Every frame is TYPE (1 byte), LENGTH (2 bytes, big-endian), then LENGTH bytes of
 * payload, at most AUTH_FRAME_MAX_PAYLOAD. Texts are bytes without NUL, at most
 * AUTH_TEXT_MAX; receivers show them with control characters neutralised.
 *
 *   client → server   START          empty                 begin an attempt
 *                     ANSWER         text                  answer to the last prompt
 *   server → client   PROMPT_ECHO_OFF / PROMPT_ECHO_ON     text  (an ANSWER must follow)
 *                     INFO / ERROR   text                  (no answer)
 *                     RESULT         status (1), value (8, big-endian, seconds since
 *                                    the epoch: grant expiry or lock end, else 0),
 *                                    attempts left on this connection (1), text
 *
 * The parser is pure (no I/O, no allocation) so it can be fuzzed. */
#ifndef KTLSTUN_AUTH_PROTOCOL_H
#define KTLSTUN_AUTH_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#define AUTH_PROTOCOL_ALPN "ktlstun-auth/1"
#define AUTH_FRAME_HEADER_LEN 3
#define AUTH_FRAME_MAX_PAYLOAD 1024
#define AUTH_FRAME_MAX (AUTH_FRAME_HEADER_LEN + AUTH_FRAME_MAX_PAYLOAD)
#define AUTH_TEXT_MAX 512
#define AUTH_RESULT_FIXED_LEN 10

/* Limits the server enforces (and documents). */
#define AUTH_MAX_ATTEMPTS 3          /* attempts (START) per connection */
#define AUTH_MAX_MESSAGES 8          /* prompts, infos and errors per attempt */
#define AUTH_ANSWER_TIMEOUT_S 120    /* from a prompt to its answer */

enum auth_frame_type {
    AUTH_FRAME_START = 0x01,
    AUTH_FRAME_ANSWER = 0x02,
    AUTH_FRAME_PROMPT_ECHO_OFF = 0x11,
    AUTH_FRAME_PROMPT_ECHO_ON = 0x12,
    AUTH_FRAME_INFO = 0x13,
    AUTH_FRAME_ERROR = 0x14,
    AUTH_FRAME_RESULT = 0x20,
};

enum auth_result {
    AUTH_RESULT_GRANTED = 0,         /* value: grant expiry */
    AUTH_RESULT_DENIED = 1,          /* wrong code (counted) */
    AUTH_RESULT_LOCKED = 2,          /* value: lock end; PAM did not run */
    AUTH_RESULT_UNMAPPED = 3,        /* the certificate maps to no local user */
    AUTH_RESULT_ACCOUNT_REFUSED = 4, /* right code, but pam_acct_mgmt said no */
    AUTH_RESULT_UNAVAILABLE = 5,     /* PAM or the helper failed, or is busy */
    AUTH_RESULT_TIMEOUT = 6,         /* a PAM module hung and was cut off (counted) */
    AUTH_RESULT_PROTOCOL_ERROR = 7,  /* the client broke the protocol or a limit */
};
#define AUTH_RESULT_LAST AUTH_RESULT_PROTOCOL_ERROR

enum auth_sender { AUTH_FROM_CLIENT, AUTH_FROM_SERVER };

enum auth_parse_status {
    AUTH_PARSE_OK,
    AUTH_PARSE_NEED_MORE,     /* not a whole frame yet */
    AUTH_PARSE_TOO_LARGE,     /* LENGTH above the maximum: fatal */
    AUTH_PARSE_BAD_TYPE,      /* unknown type, or one this sender never sends: fatal */
    AUTH_PARSE_BAD_PAYLOAD,   /* payload malformed for its type: fatal */
};

/* One parsed frame. TEXT points into the parsed buffer and is not NUL-terminated. */
struct auth_frame {
    enum auth_frame_type type;
    const unsigned char *text;
    size_t text_len;
    enum auth_result status;  /* RESULT only */
    uint64_t value;           /* RESULT only */
    unsigned attempts_left;   /* RESULT only */
};

/* Parses the frame at the start of BUF (LEN bytes) as sent by SENDER. On
 * AUTH_PARSE_OK fills *FRAME and sets *CONSUMED to the frame's size; any other
 * status leaves them alone. A status other than OK and NEED_MORE means the stream
 * cannot be trusted any further. */
enum auth_parse_status auth_protocol_parse(const unsigned char *buf, size_t len,
                                           enum auth_sender sender, struct auth_frame *frame,
                                           size_t *consumed);

/* Encodes a frame of TYPE (not RESULT) carrying TEXT (TEXT_LEN bytes, no NUL; NULL
 * when empty) into OUT (CAP bytes). Returns the encoded size, or 0 when TEXT is too
 * long, holds a NUL, TYPE takes no text, or CAP is too small. */
size_t auth_protocol_encode(enum auth_frame_type type, const void *text, size_t text_len,
                            unsigned char *out, size_t cap);

/* Encodes a RESULT frame. Longer texts are cut at AUTH_TEXT_MAX. Returns the size,
 * or 0 when CAP is too small. */
size_t auth_protocol_encode_result(enum auth_result status, uint64_t value,
                                   unsigned attempts_left, const char *text,
                                   unsigned char *out, size_t cap);

/* Returns a short explanation of a parse failure ("frame too large", ...). */
const char *auth_protocol_parse_error(enum auth_parse_status status);

/* Copies LEN bytes of TEXT into OUT (CAP bytes, NUL-terminated) for display or a log,
 * replacing control characters other than newline and tab (and, for one-line use,
 * newline too when ONE_LINE is set) by '?'. Returns OUT. */
char *auth_protocol_printable(const unsigned char *text, size_t len, int one_line, char *out,
                              size_t cap);

#endif
