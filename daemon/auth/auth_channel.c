#include "auth/auth_channel.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

#include "proto/login_log.h"
#include "proto/auth_protocol.h"
#include "core/event_loop.h"
#include "core/log.h"
#include "core/utc_time.h"
#include "config/user_map.h"
#include "auth/login_io.h"

#define OUT_BUFFER 8192
#define IN_BUFFER (2 * AUTH_FRAME_MAX)
#define HELPER_MARGIN_S 15
#define CLOSING_GRACE_MS 2000

enum phase {
    PHASE_WAIT_START,     /* waiting for the client to begin an attempt */
    PHASE_WAIT_HELPER,    /* PAM is working: waiting for a prompt or the result */
    PHASE_WAIT_ANSWER,    /* a prompt went out: waiting for the client's answer */
    PHASE_CLOSING,        /* the last frame is queued: flush, then end */
};

struct auth_channel {
    struct pam_link *link;
    const struct tunnel_config *tunnel;
    SSL *ssl;
    void (*wake)(void *);
    void *wake_arg;
    enum phase phase;
    uint64_t deadline_ms;
    int give_up;
    uint32_t request_id;
    unsigned attempts;
    unsigned messages;
    int mapped;
    char identity[LIMIT_IDENTITY + 1];
    char user[LIMIT_USER_NAME + 1];
    char unmapped[400];
    char sha256[65];
    char source[LIMIT_SOURCE_ADDRESS + 1];
    size_t in_len;
    unsigned char in[IN_BUFFER];
    size_t out_len, out_sent;
    unsigned char out[OUT_BUFFER];
    char end_reason[600];
};

static void set_deadline(struct auth_channel *ch, uint64_t seconds)
{
    ch->deadline_ms = event_loop_now_ms() + seconds * 1000u;
}

/* Queues a whole frame, or ends the channel when it does not fit (a client that
 * does not read). */
static void queue(struct auth_channel *ch, const unsigned char *frame, size_t len)
{
    if (len == 0 || ch->out_len + len > sizeof(ch->out)) {
        ch->phase = PHASE_CLOSING;
        ch->give_up = 1;
        snprintf(ch->end_reason, sizeof(ch->end_reason), "login: the client does not read");
        return;
    }
    memcpy(ch->out + ch->out_len, frame, len);
    ch->out_len += len;
}

/* Queues the final RESULT and ends the channel once it is flushed. */
static void finish(struct auth_channel *ch, enum auth_result status, uint64_t value,
                   const char *text, const char *reason)
{
    unsigned char frame[AUTH_FRAME_MAX];
    size_t len = auth_protocol_encode_result(status, value, 0, text, frame, sizeof(frame));
    queue(ch, frame, len);
    if (!ch->give_up)
        snprintf(ch->end_reason, sizeof(ch->end_reason), "%s", reason);
    ch->phase = PHASE_CLOSING;
    ch->deadline_ms = event_loop_now_ms() + CLOSING_GRACE_MS;
}

static void protocol_error(struct auth_channel *ch, const char *what)
{
    char reason[300];
    snprintf(reason, sizeof(reason), "login: protocol error: %s", what);
    finish(ch, AUTH_RESULT_PROTOCOL_ERROR, 0, what, reason);
}

static void forget_request(struct auth_channel *ch, int cancel)
{
    pam_link_unregister(ch->link, ch->request_id, cancel);
    ch->request_id = 0;
}

static void on_result(struct auth_channel *ch, const struct helper_msg *msg)
{
    unsigned char frame[AUTH_FRAME_MAX];
    char text[AUTH_TEXT_MAX + 1], when[32];
    enum auth_result status = (enum auth_result)msg->style;
    unsigned left = AUTH_MAX_ATTEMPTS - ch->attempts;
    forget_request(ch, 0);

    snprintf(text, sizeof(text), "%s", msg->text);
    if ((status == AUTH_RESULT_DENIED || status == AUTH_RESULT_TIMEOUT) && msg->failures > 0)
        snprintf(text, sizeof(text), "%.400s; %u more failed attempt%s lock%s this identity",
                 msg->text, msg->failures, msg->failures == 1 ? "" : "s",
                 msg->failures == 1 ? "s" : "");
    int retry = (status == AUTH_RESULT_DENIED || status == AUTH_RESULT_TIMEOUT) && left > 0;
    size_t len = auth_protocol_encode_result(status, (uint64_t)msg->value, retry ? left : 0,
                                             text, frame, sizeof(frame));
    queue(ch, frame, len);
    if (retry) {
        ch->phase = PHASE_WAIT_START;
        ch->messages = 0;
        set_deadline(ch, ch->tunnel->handshake_timeout);
        return;
    }
    switch (status) {
    case AUTH_RESULT_GRANTED:
        snprintf(ch->end_reason, sizeof(ch->end_reason), "login of \"%s\" as %s granted until %s",
                 ch->identity, ch->user, utc_time_format(msg->value, when, sizeof(when)));
        break;
    case AUTH_RESULT_LOCKED:
        snprintf(ch->end_reason, sizeof(ch->end_reason), "login of \"%s\" refused: locked until %s",
                 ch->identity, utc_time_format(msg->value, when, sizeof(when)));
        break;
    default:
        snprintf(ch->end_reason, sizeof(ch->end_reason), "login of \"%s\" failed: %.250s",
                 ch->identity, msg->text);
        break;
    }
    ch->phase = PHASE_CLOSING;
    ch->deadline_ms = event_loop_now_ms() + CLOSING_GRACE_MS;
}

static void on_prompt(struct auth_channel *ch, const struct helper_msg *msg)
{
    unsigned char frame[AUTH_FRAME_MAX];
    if (++ch->messages > AUTH_MAX_MESSAGES) {
        forget_request(ch, 1);
        finish(ch, AUTH_RESULT_UNAVAILABLE, 0, "PAM asked too many questions",
               "login: PAM asked too many questions");
        return;
    }
    size_t len = auth_protocol_encode((enum auth_frame_type)msg->style, msg->text, msg->text_len,
                                      frame, sizeof(frame));
    queue(ch, frame, len);
    if (msg->style == AUTH_FRAME_PROMPT_ECHO_OFF || msg->style == AUTH_FRAME_PROMPT_ECHO_ON) {
        ch->phase = PHASE_WAIT_ANSWER;
        set_deadline(ch, AUTH_ANSWER_TIMEOUT_S);
    }
}

static void deliver(void *arg, const struct helper_msg *msg)
{
    struct auth_channel *ch = arg;
    if (ch->phase != PHASE_WAIT_HELPER || msg->id != ch->request_id)
        return;
    if (msg->type == HELPER_MSG_RESULT)
        on_result(ch, msg);
    else if (msg->type == HELPER_MSG_PROMPT)
        on_prompt(ch, msg);
    ch->wake(ch->wake_arg);
}

static void begin_attempt(struct auth_channel *ch)
{
    struct helper_msg msg;
    if (ch->phase != PHASE_WAIT_START) {
        protocol_error(ch, "START while an attempt is running");
        return;
    }
    if (++ch->attempts > AUTH_MAX_ATTEMPTS) {
        protocol_error(ch, "too many attempts on one connection");
        return;
    }
    if (!ch->mapped) {
        char reason[500];
        snprintf(reason, sizeof(reason), "login refused: %s", ch->unmapped);
        login_log_failure(ch->tunnel->name, ch->identity, "", ch->source, 0,
                          (unsigned)ch->tunnel->max_failures, ch->unmapped);
        finish(ch, AUTH_RESULT_UNMAPPED, 0, ch->unmapped, reason);
        return;
    }
    ch->request_id = pam_link_register(ch->link, deliver, ch);
    helper_msg_init(&msg, HELPER_MSG_BEGIN, ch->request_id);
    snprintf(msg.tunnel, sizeof(msg.tunnel), "%s", ch->tunnel->name);
    memcpy(msg.identity, ch->identity, sizeof(msg.identity));
    memcpy(msg.user, ch->user, sizeof(msg.user));
    memcpy(msg.sha256, ch->sha256, sizeof(msg.sha256));
    memcpy(msg.source, ch->source, sizeof(msg.source));
    if (ch->request_id == 0 || pam_link_send(ch->link, &msg) < 0) {
        forget_request(ch, 0);
        finish(ch, AUTH_RESULT_UNAVAILABLE, 0, "the login service is not available",
               "login: the PAM helper is not available");
        return;
    }
    ch->messages = 0;
    ch->phase = PHASE_WAIT_HELPER;
    set_deadline(ch, ch->tunnel->pam_timeout + HELPER_MARGIN_S);
}

static void pass_answer(struct auth_channel *ch, const struct auth_frame *frame)
{
    struct helper_msg msg;
    if (ch->phase != PHASE_WAIT_ANSWER) {
        protocol_error(ch, "ANSWER without a prompt");
        return;
    }
    helper_msg_init(&msg, HELPER_MSG_ANSWER, ch->request_id);
    helper_msg_set_text(&msg, frame->text, frame->text_len);
    int sent = pam_link_send(ch->link, &msg);
    helper_msg_wipe(&msg);
    if (sent < 0) {
        forget_request(ch, 0);
        finish(ch, AUTH_RESULT_UNAVAILABLE, 0, "the login service is not available",
               "login: the PAM helper is not available");
        return;
    }
    ch->phase = PHASE_WAIT_HELPER;
    set_deadline(ch, ch->tunnel->pam_timeout + HELPER_MARGIN_S);
}

/* Handles every whole frame in the input buffer; consumed bytes are wiped. */
static void handle_input(struct auth_channel *ch)
{
    size_t offset = 0;
    while (ch->phase != PHASE_CLOSING && offset < ch->in_len) {
        struct auth_frame frame;
        size_t consumed = 0;
        enum auth_parse_status status = auth_protocol_parse(ch->in + offset, ch->in_len - offset,
                                                            AUTH_FROM_CLIENT, &frame, &consumed);
        if (status == AUTH_PARSE_NEED_MORE)
            break;
        if (status != AUTH_PARSE_OK) {
            protocol_error(ch, auth_protocol_parse_error(status));
            break;
        }
        if (frame.type == AUTH_FRAME_START)
            begin_attempt(ch);
        else
            pass_answer(ch, &frame);
        offset += consumed;
    }
    if (ch->phase == PHASE_CLOSING)
        offset = ch->in_len;
    login_io_consume(ch->in, &ch->in_len, offset);
}

/* Returns 1 when the output is flushed, 0 while waiting, -1 when the client is gone. */
static int flush(struct auth_channel *ch)
{
    return login_io_flush(ch->ssl, ch->out, &ch->out_len, &ch->out_sent);
}

/* Returns 1 on input read (or none pending), -1 when the client closed or failed. */
static int read_input(struct auth_channel *ch)
{
    while (ch->phase != PHASE_CLOSING) {
        if (ch->in_len == sizeof(ch->in)) {
            /* A whole frame always fits; a full buffer means one too large. */
            protocol_error(ch, auth_protocol_parse_error(AUTH_PARSE_TOO_LARGE));
            return 1;
        }
        int n = login_io_read(ch->ssl, ch->in, sizeof(ch->in), &ch->in_len);
        if (n <= 0)
            return n < 0 ? -1 : 1;
        handle_input(ch);
    }
    return 1;
}

const char *auth_channel_step(struct auth_channel *ch)
{
    if (ch->give_up)
        return ch->end_reason;
    int flushed = flush(ch);
    if (flushed < 0) {
        if (ch->phase != PHASE_CLOSING)
            snprintf(ch->end_reason, sizeof(ch->end_reason), "login: the client went away");
        return ch->end_reason;
    }
    if (ch->phase == PHASE_CLOSING)
        return flushed ? ch->end_reason : NULL;
    if (read_input(ch) < 0) {
        snprintf(ch->end_reason, sizeof(ch->end_reason), "login: the client closed the channel%s",
                 ch->phase == PHASE_WAIT_START ? "" : " in the middle of an attempt");
        return ch->end_reason;
    }
    /* Handling input may have queued frames (a result, an error). */
    flushed = flush(ch);
    if (flushed < 0)
        return ch->end_reason[0] != '\0' ? ch->end_reason : "login: the client went away";
    return ch->phase == PHASE_CLOSING && flushed ? ch->end_reason : NULL;
}

uint64_t auth_channel_deadline_ms(const struct auth_channel *ch)
{
    return ch->deadline_ms;
}

void auth_channel_time_out(struct auth_channel *ch)
{
    if (ch->phase == PHASE_CLOSING) {
        ch->give_up = 1;
        if (ch->end_reason[0] == '\0')
            snprintf(ch->end_reason, sizeof(ch->end_reason), "login: the client does not read");
        return;
    }
    const char *what = ch->phase == PHASE_WAIT_START    ? "no login attempt began in time"
                       : ch->phase == PHASE_WAIT_ANSWER ? "no answer came in time"
                                                        : "the login service did not answer in time";
    if (ch->request_id != 0)
        forget_request(ch, 1);
    char reason[200];
    snprintf(reason, sizeof(reason), "login: %s", what);
    finish(ch, AUTH_RESULT_PROTOCOL_ERROR, 0, what, reason);
}

struct auth_channel *auth_channel_start(struct pam_link *link, const struct tunnel_config *tunnel,
                                        SSL *ssl, const struct identity *id, const char *source,
                                        void (*wake)(void *), void *wake_arg)
{
    struct auth_channel *ch = calloc(1, sizeof(*ch));
    if (ch == NULL) {
        log_error("[%s] login channel: out of memory", tunnel->name);
        return NULL;
    }
    ch->link = link;
    ch->tunnel = tunnel;
    ch->ssl = ssl;
    ch->wake = wake;
    ch->wake_arg = wake_arg;
    ch->phase = PHASE_WAIT_START;
    set_deadline(ch, ch->tunnel->handshake_timeout);
    snprintf(ch->sha256, sizeof(ch->sha256), "%s", id->sha256);
    snprintf(ch->source, sizeof(ch->source), "%s", source);
    if (tunnel->user_map != NULL)
        ch->mapped = user_map_lookup(tunnel->user_map, id, ch->identity, ch->user, ch->unmapped,
                                     sizeof(ch->unmapped));
    else
        snprintf(ch->unmapped, sizeof(ch->unmapped), "no user_map configured");
    if (!ch->mapped)
        snprintf(ch->identity, sizeof(ch->identity), "%s", id->cn != NULL ? id->cn : id->subject);
    return ch;
}

void auth_channel_free(struct auth_channel *ch)
{
    if (ch == NULL)
        return;
    if (ch->request_id != 0)
        forget_request(ch, 1);
    OPENSSL_clear_free(ch, sizeof(*ch));
}
