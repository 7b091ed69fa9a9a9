/* pam_transaction — one PAM login, run in a short-lived child of the PAM helper.
 *
 * PAM modules block, sleep (fail delays), fork (pam_exec) and change process state;
 * a child per login keeps all of that away from the helper, and a module that hangs
 * is ended by killing the child. The conversation is relayed over FD as helper_msg
 * PROMPT / ANSWER messages; the outcome is one RESULT message. */
#ifndef KTLSTUN_PAM_TRANSACTION_H
#define KTLSTUN_PAM_TRANSACTION_H

struct pam_transaction_params {
    const char *service;      /* pam_service */
    const char *confdir;      /* pam_confdir, or NULL for PAM's own (/etc/pam.d) */
    const char *user;         /* the mapped local user */
    const char *rhost;        /* PAM_RHOST: the client's address */
    const char *ruser;        /* PAM_RUSER: the certificate identity */
};

/* Runs pam_start_confdir, PAM_RHOST/PAM_RUSER, pam_authenticate, pam_acct_mgmt and
 * pam_end for PARAMS, relaying the conversation over FD, and sends the RESULT
 * (GRANTED, DENIED, ACCOUNT_REFUSED, UNAVAILABLE, or UNMAPPED when PAM does not know
 * the user: no enrolment; with PAM's reason). Answers are wiped once PAM has them.
 * Returns the exit status for the child. */
int pam_transaction_run(int fd, const struct pam_transaction_params *params);

#endif
