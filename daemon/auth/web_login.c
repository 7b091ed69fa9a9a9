#include "auth/web_login.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include "auth/http_request.h"
#include "auth/login_io.h"
#include "auth/second_factor.h"
#include "auth/web_page.h"
#include "config/user_map.h"
#include "core/event_loop.h"
#include "core/log.h"
#include "core/text.h"
#include "core/utc_time.h"
#include "proto/login_log.h"

#define OUT_BUFFER (WEB_PAGE_BODY_MAX + 4096)
#define NOTES_MAX 700
#define ERROR_MAX 800
#define CSRF_BYTES 32
#define MAX_REQUESTS 32
#define HELPER_MARGIN_S 15
#define CLOSING_GRACE_MS 2000

enum phase {
    PHASE_WAIT_REQUEST,   /* no attempt yet: waiting for the first page request */
    PHASE_WAIT_HELPER,    /* PAM is working; a request waits for its response */
    PHASE_WAIT_ANSWER,    /* a prompt's form went out: waiting for its POST */
    PHASE_CLOSING,        /* the last response is queued: flush, then end */
};

struct web_login {
    struct pam_link *link;
    const struct tunnel_config *tunnel;
    SSL *ssl;
    const struct identity *id;
    void (*wake)(void *);
    void *wake_arg;
    enum phase phase;
    uint64_t deadline_ms;
    int give_up;
    int head;             /* the request waiting for a response is a HEAD */
    int close_after;      /* it asked for "Connection: close" */
    uint32_t request_id;
    unsigned attempts, messages, requests;
    int mapped;
    int echo_off;
    char identity[LIMIT_IDENTITY + 1];
    char user[LIMIT_USER_NAME + 1];
    char unmapped[400];
    char sha256[65];
    char source[LIMIT_SOURCE_ADDRESS + 1];
    char csrf[2 * CSRF_BYTES + 1];
    char next[HTTP_REQUEST_TARGET_MAX + 1];
    char prompt[AUTH_TEXT_MAX + 1];
    char notes[NOTES_MAX];
    char error[ERROR_MAX];
    size_t in_len;
    unsigned char in[HTTP_REQUEST_MAX];
    size_t out_len, out_sent;
    char out[OUT_BUFFER];
    char end_reason[600];
};

static void set_deadline(struct web_login *pg, uint64_t seconds)
{
    pg->deadline_ms = event_loop_now_ms() + seconds * 1000u;
}

/* Takes the response of LEN bytes written at the end of the output (0: it did not
 * fit, which the pages are sized never to do), ending the page after it when CLOSE. */
static void respond(struct web_login *pg, size_t len, int close)
{
    if (len == 0) {
        pg->give_up = 1;
        snprintf(pg->end_reason, sizeof(pg->end_reason), "login: the client does not read");
        return;
    }
    pg->out_len += len;
    if (close || pg->close_after) {
        pg->phase = PHASE_CLOSING;
        pg->deadline_ms = event_loop_now_ms() + CLOSING_GRACE_MS;
    }
}

static size_t out_room(const struct web_login *pg)
{
    return sizeof(pg->out) - pg->out_len;
}

/* The last response: a page with STATUS, TITLE and TEXT; REASON ends the page. */
static void finish(struct web_login *pg, int status, const char *title, const char *text,
                   const char *reason)
{
    size_t len = web_page_message(pg->out + pg->out_len, out_room(pg), status, title, text,
                                  pg->next[0] != '\0' ? pg->next : "/", 1);
    if (!pg->give_up)
        snprintf(pg->end_reason, sizeof(pg->end_reason), "%s", reason);
    pg->close_after = 1;
    respond(pg, len, 1);
}

static void protocol_error(struct web_login *pg, int status, const char *what)
{
    char reason[300];
    snprintf(reason, sizeof(reason), "login: protocol error: %s", what);
    finish(pg, status, web_page_reason(status), what, reason);
}

static void forget_request(struct web_login *pg, int cancel)
{
    pam_link_unregister(pg->link, pg->request_id, cancel);
    pg->request_id = 0;
}

static void show_form(struct web_login *pg)
{
    const struct web_page_form form = {
        .tunnel = pg->tunnel->name, .identity = pg->identity, .notes = pg->notes,
        .error = pg->error, .prompt = pg->prompt, .echo_off = pg->echo_off, .csrf = pg->csrf,
    };
    respond(pg, web_page_form(pg->out + pg->out_len, out_room(pg), &form, pg->head), 0);
}

static void deliver(void *arg, const struct helper_msg *msg);

/* Begins a PAM attempt; its first prompt or result answers the waiting request. */
static void begin_attempt(struct web_login *pg)
{
    struct helper_msg msg;
    if (++pg->attempts > AUTH_MAX_ATTEMPTS) {
        finish(pg, 403, "Too many attempts", "Too many attempts on this connection: start "
               "again to try once more.", "login: protocol error: too many attempts on one "
               "connection");
        return;
    }
    if (!pg->mapped) {
        char reason[500];
        snprintf(reason, sizeof(reason), "login refused: %s", pg->unmapped);
        login_log_failure(pg->tunnel->name, pg->identity, "", pg->source, 0,
                          (unsigned)pg->tunnel->max_failures, pg->unmapped);
        finish(pg, 403, "Unknown certificate", pg->unmapped, reason);
        return;
    }
    pg->request_id = pam_link_register(pg->link, deliver, pg);
    helper_msg_init(&msg, HELPER_MSG_BEGIN, pg->request_id);
    snprintf(msg.tunnel, sizeof(msg.tunnel), "%s", pg->tunnel->name);
    memcpy(msg.identity, pg->identity, sizeof(msg.identity));
    memcpy(msg.user, pg->user, sizeof(msg.user));
    memcpy(msg.sha256, pg->sha256, sizeof(msg.sha256));
    memcpy(msg.source, pg->source, sizeof(msg.source));
    if (pg->request_id == 0 || pam_link_send(pg->link, &msg) < 0) {
        forget_request(pg, 0);
        finish(pg, 503, "Login unavailable", "The login service is not available.",
               "login: the PAM helper is not available");
        return;
    }
    pg->messages = 0;
    pg->phase = PHASE_WAIT_HELPER;
    set_deadline(pg, pg->tunnel->pam_timeout + HELPER_MARGIN_S);
}

static void on_result(struct web_login *pg, const struct helper_msg *msg)
{
    char text[AUTH_TEXT_MAX + 200], when[32];
    enum auth_result status = (enum auth_result)msg->style;
    forget_request(pg, 0);
    snprintf(text, sizeof(text), "%s", msg->text);
    if ((status == AUTH_RESULT_DENIED || status == AUTH_RESULT_TIMEOUT) && msg->failures > 0)
        snprintf(text, sizeof(text), "%.400s; %u more failed attempt%s lock%s this identity",
                 msg->text, msg->failures, msg->failures == 1 ? "" : "s",
                 msg->failures == 1 ? "s" : "");
    if ((status == AUTH_RESULT_DENIED || status == AUTH_RESULT_TIMEOUT) &&
        pg->attempts < AUTH_MAX_ATTEMPTS) {
        /* The failure is shown above the next attempt's first prompt. */
        snprintf(pg->error, sizeof(pg->error), "Login failed: %s.", text);
        begin_attempt(pg);
        return;
    }
    switch (status) {
    case AUTH_RESULT_GRANTED:
        snprintf(pg->end_reason, sizeof(pg->end_reason), "login of \"%s\" as %s granted until %s",
                 pg->identity, pg->user, utc_time_format(msg->value, when, sizeof(when)));
        pg->close_after = 1;
        respond(pg, web_page_redirect(pg->out + pg->out_len, out_room(pg),
                                      pg->next[0] != '\0' ? pg->next : "/"), 1);
        return;
    case AUTH_RESULT_LOCKED: {
        char page[1024], reason[600];
        utc_time_format(msg->value, when, sizeof(when));
        snprintf(page, sizeof(page), "Locked: %s. Try again after %s, or ask an administrator "
                 "to run `ktlstun unlock` for you.", text, when);
        snprintf(reason, sizeof(reason), "login of \"%s\" refused: locked until %s",
                 pg->identity, when);
        finish(pg, 403, "Locked", page, reason);
        return;
    }
    default: {
        char page[1024], reason[700];
        snprintf(page, sizeof(page), "%s%s.",
                 status == AUTH_RESULT_DENIED || status == AUTH_RESULT_TIMEOUT
                     ? "Login failed, and this connection has no attempt left: "
                     : "The login was refused: ", text);
        snprintf(reason, sizeof(reason), "login of \"%s\" failed: %.250s", pg->identity,
                 msg->text);
        finish(pg, status == AUTH_RESULT_UNAVAILABLE ? 503 : 403, "Login failed", page, reason);
        return;
    }
    }
}

/* Adds an info or error message of PAM to the notes shown above the next prompt. */
static void add_note(struct web_login *pg, const struct helper_msg *msg)
{
    size_t used = strlen(pg->notes);
    snprintf(pg->notes + used, sizeof(pg->notes) - used, "%s%.*s", used > 0 ? "\n" : "",
             (int)msg->text_len, msg->text);
}

static void on_prompt(struct web_login *pg, const struct helper_msg *msg)
{
    if (++pg->messages > AUTH_MAX_MESSAGES) {
        forget_request(pg, 1);
        finish(pg, 503, "Login failed", "PAM asked too many questions.",
               "login: PAM asked too many questions");
        return;
    }
    if (msg->style != AUTH_FRAME_PROMPT_ECHO_OFF && msg->style != AUTH_FRAME_PROMPT_ECHO_ON) {
        add_note(pg, msg);
        return;
    }
    snprintf(pg->prompt, sizeof(pg->prompt), "%.*s", (int)msg->text_len, msg->text);
    pg->echo_off = msg->style == AUTH_FRAME_PROMPT_ECHO_OFF;
    pg->phase = PHASE_WAIT_ANSWER;
    set_deadline(pg, AUTH_ANSWER_TIMEOUT_S);
    show_form(pg);
    pg->notes[0] = pg->error[0] = '\0';
}

static void deliver(void *arg, const struct helper_msg *msg)
{
    struct web_login *pg = arg;
    if (pg->phase != PHASE_WAIT_HELPER || msg->id != pg->request_id)
        return;
    if (msg->type == HELPER_MSG_RESULT)
        on_result(pg, msg);
    else if (msg->type == HELPER_MSG_PROMPT)
        on_prompt(pg, msg);
    pg->wake(pg->wake_arg);
}

/* A GET: the current form, or a new attempt; a certificate that holds a grant by now
 * (a connection opened before its login) is sent to a new connection. */
static void on_get(struct web_login *pg, const struct http_request *req)
{
    char target[HTTP_REQUEST_TARGET_MAX + 1], reason[300];
    uint64_t until;
    int local = http_request_local_path(req->target, req->target_len);
    snprintf(target, sizeof(target), "%.*s", (int)req->target_len, req->target);
    if (second_factor_grant_holds(pg->tunnel, pg->id, pg->source, event_loop_now_ms(), &until,
                                  reason, sizeof(reason))) {
        snprintf(pg->end_reason, sizeof(pg->end_reason), "login page: the certificate holds a "
                 "grant now; the browser was sent to a new connection");
        pg->close_after = 1;
        respond(pg, web_page_redirect(pg->out + pg->out_len, out_room(pg), local ? target : "/"),
                1);
        return;
    }
    if (strcmp(target, "/favicon.ico") == 0) {
        respond(pg, web_page_message(pg->out + pg->out_len, out_room(pg), 404, "Not found",
                                     "Log in first.", NULL, 0), 0);
        return;
    }
    if (pg->phase == PHASE_WAIT_ANSWER) {
        show_form(pg);
        return;
    }
    /* The path to go back to: never another site (an open redirect). */
    snprintf(pg->next, sizeof(pg->next), "%s",
             local && strcmp(target, WEB_PAGE_FORM_PATH) != 0 ? target : "/");
    begin_attempt(pg);
}

static void on_post(struct web_login *pg, const struct http_request *req)
{
    char token[sizeof(pg->csrf)], answer[AUTH_TEXT_MAX + 1];
    size_t token_len = 0, answer_len = 0;
    struct helper_msg msg;
    int found = req->form ? http_request_form_field(req->body, req->body_len, "csrf", token,
                                                    sizeof(token), &token_len)
                          : -1;
    if (pg->phase != PHASE_WAIT_ANSWER || found != 1 || token_len != sizeof(pg->csrf) - 1 ||
        CRYPTO_memcmp(token, pg->csrf, token_len) != 0) {
        finish(pg, 403, "Form expired", "This login form is not valid any more (it expired, or "
               "came from another page): start again.",
               "login: protocol error: the login form's CSRF token did not match");
        return;
    }
    found = http_request_form_field(req->body, req->body_len, "answer", answer, sizeof(answer),
                                    &answer_len);
    if (found < 0) {
        protocol_error(pg, 400, "the answer is not a valid form field");
        return;
    }
    helper_msg_init(&msg, HELPER_MSG_ANSWER, pg->request_id);
    helper_msg_set_text(&msg, answer, answer_len);
    OPENSSL_cleanse(answer, sizeof(answer));
    int sent = pam_link_send(pg->link, &msg);
    helper_msg_wipe(&msg);
    if (sent < 0) {
        forget_request(pg, 0);
        finish(pg, 503, "Login unavailable", "The login service is not available.",
               "login: the PAM helper is not available");
        return;
    }
    pg->phase = PHASE_WAIT_HELPER;
    set_deadline(pg, pg->tunnel->pam_timeout + HELPER_MARGIN_S);
}

static void on_request(struct web_login *pg, const struct http_request *req)
{
    pg->head = req->method == HTTP_METHOD_HEAD;
    pg->close_after = !req->keep_alive;
    if (++pg->requests > MAX_REQUESTS)
        protocol_error(pg, 400, "too many requests on one connection");
    else if (req->method == HTTP_METHOD_GET || req->method == HTTP_METHOD_HEAD)
        on_get(pg, req);
    else if (req->method == HTTP_METHOD_POST)
        on_post(pg, req);
    else
        protocol_error(pg, 405, "only GET and POST reach the login page");
}

/* Handles the whole requests in the input, one at a time: none while a response is
 * owed. Consumed bytes are wiped. */
static void handle_input(struct web_login *pg)
{
    size_t offset = 0;
    while ((pg->phase == PHASE_WAIT_REQUEST || pg->phase == PHASE_WAIT_ANSWER) && !pg->give_up &&
           offset < pg->in_len) {
        struct http_request req;
        size_t consumed = 0;
        enum http_parse_status status =
            http_request_parse(pg->in + offset, pg->in_len - offset, &req, &consumed);
        if (status == HTTP_PARSE_NEED_MORE)
            break;
        if (status != HTTP_PARSE_OK) {
            protocol_error(pg, status == HTTP_PARSE_TOO_LARGE ? 413 : 400,
                           http_request_parse_error(status));
            break;
        }
        on_request(pg, &req);
        offset += consumed;
    }
    if (pg->phase == PHASE_CLOSING)
        offset = pg->in_len;
    login_io_consume(pg->in, &pg->in_len, offset);
}

/* Returns 1 when the output is flushed, 0 while waiting, -1 when the client is gone. */
static int flush(struct web_login *pg)
{
    return login_io_flush(pg->ssl, pg->out, &pg->out_len, &pg->out_sent);
}

/* Returns 1 on input read (or none pending), -1 when the client closed or failed. */
static int read_input(struct web_login *pg)
{
    while (pg->phase != PHASE_CLOSING && !pg->give_up) {
        if (pg->in_len == sizeof(pg->in)) {
            /* A whole request always fits; a full buffer waits for its turn. */
            if (pg->phase != PHASE_WAIT_HELPER)
                protocol_error(pg, 413, http_request_parse_error(HTTP_PARSE_TOO_LARGE));
            return 1;
        }
        int n = login_io_read(pg->ssl, pg->in, sizeof(pg->in), &pg->in_len);
        if (n <= 0)
            return n < 0 ? -1 : 1;
        handle_input(pg);
    }
    return 1;
}

const char *web_login_step(struct web_login *pg)
{
    if (pg->give_up)
        return pg->end_reason;
    int flushed = flush(pg);
    if (flushed < 0) {
        if (pg->phase != PHASE_CLOSING)
            snprintf(pg->end_reason, sizeof(pg->end_reason), "login: the client went away");
        return pg->end_reason;
    }
    if (pg->phase == PHASE_CLOSING)
        return flushed ? pg->end_reason : NULL;
    /* A response owed earlier goes out before more requests are read. */
    handle_input(pg);
    if (read_input(pg) < 0) {
        snprintf(pg->end_reason, sizeof(pg->end_reason), "login: the client closed the channel%s",
                 pg->phase == PHASE_WAIT_REQUEST ? "" : " in the middle of an attempt");
        return pg->end_reason;
    }
    if (pg->give_up)
        return pg->end_reason;
    flushed = flush(pg);
    if (flushed < 0)
        return pg->end_reason[0] != '\0' ? pg->end_reason : "login: the client went away";
    return pg->phase == PHASE_CLOSING && flushed ? pg->end_reason : NULL;
}

uint64_t web_login_deadline_ms(const struct web_login *pg)
{
    return pg->deadline_ms;
}

void web_login_time_out(struct web_login *pg)
{
    char reason[200];
    if (pg->phase == PHASE_CLOSING) {
        pg->give_up = 1;
        if (pg->end_reason[0] == '\0')
            snprintf(pg->end_reason, sizeof(pg->end_reason), "login: the client does not read");
        return;
    }
    if (pg->phase != PHASE_WAIT_HELPER) {
        /* Nobody waits for a response: the connection just ends. */
        const char *what = pg->phase == PHASE_WAIT_REQUEST ? "no login attempt began in time"
                                                           : "no answer came in time";
        if (pg->request_id != 0)
            forget_request(pg, 1);
        pg->give_up = 1;
        snprintf(reason, sizeof(reason), "login: %s", what);
        snprintf(pg->end_reason, sizeof(pg->end_reason), "%s", reason);
        return;
    }
    forget_request(pg, 1);
    snprintf(reason, sizeof(reason), "login: %s", "the login service did not answer in time");
    finish(pg, 503, "Login unavailable", "The login service did not answer in time.", reason);
}

struct web_login *web_login_start(struct pam_link *link, const struct tunnel_config *tunnel,
                                  SSL *ssl, const struct identity *id, const char *source,
                                  void (*wake)(void *), void *wake_arg)
{
    unsigned char random[CSRF_BYTES];
    struct web_login *pg = calloc(1, sizeof(*pg));
    if (pg == NULL) {
        log_error("[%s] login page: out of memory", tunnel->name);
        return NULL;
    }
    if (RAND_bytes(random, sizeof(random)) != 1) {
        log_error("[%s] login page: no random bytes for the form's token", tunnel->name);
        free(pg);
        return NULL;
    }
    text_hex_encode(random, sizeof(random), pg->csrf);
    OPENSSL_cleanse(random, sizeof(random));
    pg->link = link;
    pg->tunnel = tunnel;
    pg->ssl = ssl;
    pg->id = id;
    pg->wake = wake;
    pg->wake_arg = wake_arg;
    pg->phase = PHASE_WAIT_REQUEST;
    set_deadline(pg, tunnel->handshake_timeout);
    snprintf(pg->sha256, sizeof(pg->sha256), "%s", id->sha256);
    snprintf(pg->source, sizeof(pg->source), "%s", source);
    if (tunnel->user_map != NULL)
        pg->mapped = user_map_lookup(tunnel->user_map, id, pg->identity, pg->user, pg->unmapped,
                                     sizeof(pg->unmapped));
    else
        snprintf(pg->unmapped, sizeof(pg->unmapped), "no user_map configured");
    if (!pg->mapped)
        snprintf(pg->identity, sizeof(pg->identity), "%s", id->cn != NULL ? id->cn : id->subject);
    return pg;
}

void web_login_free(struct web_login *pg)
{
    if (pg == NULL)
        return;
    if (pg->request_id != 0)
        forget_request(pg, 1);
    OPENSSL_clear_free(pg, sizeof(*pg));
}
