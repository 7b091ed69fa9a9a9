#include "helper/pam_transaction.h"

#include <stdlib.h>
#include <string.h>

#include <security/pam_appl.h>

#include <openssl/crypto.h>

#include "proto/auth_protocol.h"
#include "proto/helper_msg.h"

struct conversation {
    int fd;
    unsigned messages;
};

static void free_responses(struct pam_response *responses, int count)
{
    if (responses == NULL)
        return;
    for (int i = 0; i < count; i++) {
        if (responses[i].resp != NULL) {
            OPENSSL_cleanse(responses[i].resp, strlen(responses[i].resp));
            free(responses[i].resp);
        }
    }
    free(responses);
}

static int style_of(int pam_style, uint32_t *style)
{
    switch (pam_style) {
    case PAM_PROMPT_ECHO_OFF:
        *style = AUTH_FRAME_PROMPT_ECHO_OFF;
        return 0;
    case PAM_PROMPT_ECHO_ON:
        *style = AUTH_FRAME_PROMPT_ECHO_ON;
        return 0;
    case PAM_ERROR_MSG:
        *style = AUTH_FRAME_ERROR;
        return 0;
    case PAM_TEXT_INFO:
        *style = AUTH_FRAME_INFO;
        return 0;
    default:
        return -1;
    }
}

/* Relays each message to the helper and, for prompts, waits for the answer. */
static int converse(int count, const struct pam_message **messages,
                    struct pam_response **responses_out, void *data)
{
    struct conversation *conv = data;
    struct pam_response *responses = NULL;
    struct helper_msg msg;
    int result = PAM_CONV_ERR;

    *responses_out = NULL;
    if (count <= 0 || count > PAM_MAX_NUM_MSG)
        return PAM_CONV_ERR;
    responses = calloc((size_t)count, sizeof(*responses));
    if (responses == NULL)
        return PAM_BUF_ERR;
    for (int i = 0; i < count; i++) {
        uint32_t style;
        if (style_of(messages[i]->msg_style, &style) < 0 ||
            ++conv->messages > AUTH_MAX_MESSAGES)
            goto out;
        helper_msg_init(&msg, HELPER_MSG_PROMPT, 0);
        msg.style = style;
        const char *text = messages[i]->msg != NULL ? messages[i]->msg : "";
        helper_msg_set_text(&msg, text, strlen(text));
        if (helper_msg_send(conv->fd, &msg) < 0)
            goto out;
        if (style != AUTH_FRAME_PROMPT_ECHO_OFF && style != AUTH_FRAME_PROMPT_ECHO_ON)
            continue;
        int got = helper_msg_recv(conv->fd, &msg);
        if (got != 1 || msg.type != HELPER_MSG_ANSWER) {
            helper_msg_wipe(&msg);
            goto out;
        }
        responses[i].resp = strndup(msg.text, msg.text_len);
        helper_msg_wipe(&msg);
        if (responses[i].resp == NULL) {
            result = PAM_BUF_ERR;
            goto out;
        }
    }
    *responses_out = responses;
    responses = NULL;
    result = PAM_SUCCESS;
out:
    free_responses(responses, count);
    return result;
}

static enum auth_result outcome_of_auth(int rc)
{
    switch (rc) {
    case PAM_SUCCESS:
        return AUTH_RESULT_GRANTED;
    case PAM_USER_UNKNOWN:
        /* No enrolment for the user (pam_oath: no line in the users file): no code
         * could be right, so none is a guess. */
        return AUTH_RESULT_UNMAPPED;
    case PAM_AUTH_ERR:
    case PAM_MAXTRIES:
    case PAM_CRED_INSUFFICIENT:
    case PAM_PERM_DENIED:
    case PAM_IGNORE:
        return AUTH_RESULT_DENIED;
    default:
        /* PAM_AUTHINFO_UNAVAIL (a RADIUS server down), PAM_SERVICE_ERR, PAM_CONV_ERR,
         * PAM_SYSTEM_ERR, ...: the infrastructure failed, not the person. */
        return AUTH_RESULT_UNAVAILABLE;
    }
}

int pam_transaction_run(int fd, const struct pam_transaction_params *params)
{
    struct conversation conv = { .fd = fd };
    const struct pam_conv pam_conv = { .conv = converse, .appdata_ptr = &conv };
    pam_handle_t *pamh = NULL;
    struct helper_msg result;
    enum auth_result outcome;
    const char *reason;

    helper_msg_init(&result, HELPER_MSG_RESULT, 0);
    int rc = pam_start_confdir(params->service, params->user, &pam_conv, params->confdir, &pamh);
    if (rc != PAM_SUCCESS) {
        outcome = AUTH_RESULT_UNAVAILABLE;
        reason = pam_strerror(pamh, rc);
        goto send;
    }
    if ((rc = pam_set_item(pamh, PAM_RHOST, params->rhost)) != PAM_SUCCESS ||
        (rc = pam_set_item(pamh, PAM_RUSER, params->ruser)) != PAM_SUCCESS) {
        outcome = AUTH_RESULT_UNAVAILABLE;
        reason = pam_strerror(pamh, rc);
        goto end;
    }
    rc = pam_authenticate(pamh, PAM_DISALLOW_NULL_AUTHTOK);
    outcome = outcome_of_auth(rc);
    reason = pam_strerror(pamh, rc);
    if (outcome == AUTH_RESULT_GRANTED) {
        rc = pam_acct_mgmt(pamh, PAM_DISALLOW_NULL_AUTHTOK);
        if (rc != PAM_SUCCESS) {
            outcome = rc == PAM_AUTHINFO_UNAVAIL || rc == PAM_SYSTEM_ERR || rc == PAM_SERVICE_ERR
                          ? AUTH_RESULT_UNAVAILABLE
                          : AUTH_RESULT_ACCOUNT_REFUSED;
            reason = pam_strerror(pamh, rc);
        }
    }
end:
    /* pam_strerror's text is static; it outlives pam_end. */
    pam_end(pamh, rc);
send:
    result.style = outcome;
    helper_msg_set_text(&result, reason != NULL ? reason : "", reason != NULL ? strlen(reason) : 0);
    return helper_msg_send(fd, &result) == 0 ? 0 : 1;
}
