#include "helper/login_transactions.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "proto/login_log.h"
#include "core/event_loop.h"
#include "core/log.h"
#include "core/utc_time.h"
#include "core/signals.h"
#include "helper/login_counting.h"
#include "helper/lock_policy.h"
#include "helper/pam_enrolment.h"
#include "helper/pam_transaction.h"

#define SALT_LEN 32

struct transaction {
    uint64_t link_number;
    uint32_t request_id;
    pid_t pid;
    int fd;                   /* to the PAM child; -1 once it is done */
    int awaiting_answer;
    uint64_t deadline_ms;
    unsigned messages;
    unsigned answers;
    EVP_MD_CTX *answer_hash;  /* salted SHA-256 of the answers, for "same code twice" */
    char tunnel[LIMIT_TUNNEL_NAME + 1];
    char sha256[LIMIT_SHA256_HEX + 1];
    struct login_counting_attempt attempt;   /* identity, user, source, reservations */
};

struct login_transactions {
    struct login_counting *counting;
    struct grants *grants;
    struct fleet_link *fleet;     /* the shared state store; NULL: state in files */
    login_transactions_send_fn *send;
    void *send_arg;
    size_t count;
    struct transaction *list[LOGIN_TRANSACTIONS_MAX];
    unsigned char salt[SALT_LEN];
};

static const struct tunnel_config *gated_tunnel(const struct config *config, const char *name)
{
    for (size_t i = 0; i < config->tunnel_count; i++) {
        const struct tunnel_config *t = &config->tunnels[i];
        if (strcmp(t->name, name) == 0 && t->mode == TUNNEL_MODE_SERVER)
            return t;
    }
    return NULL;
}

static void reply_result(struct login_transactions *lt, uint64_t link_number, uint32_t request_id,
                         enum auth_result result, int64_t value, unsigned failures,
                         const char *text)
{
    struct helper_msg msg;
    helper_msg_init(&msg, HELPER_MSG_RESULT, request_id);
    msg.style = result;
    msg.value = value;
    msg.failures = failures;
    helper_msg_set_text(&msg, text, strlen(text));
    lt->send(lt->send_arg, link_number, &msg);
}

static void close_transaction(struct login_transactions *lt, size_t index)
{
    struct transaction *tx = lt->list[index];
    if (tx->fd >= 0)
        close(tx->fd);
    /* A child still inside PAM has nothing more to say: end it with whatever its
     * modules started (pam_exec's commands share its process group). It is reaped
     * from SIGCHLD like every other child. */
    if (tx->pid > 0)
        kill(-tx->pid, SIGKILL);
    EVP_MD_CTX_free(tx->answer_hash);
    OPENSSL_clear_free(tx, sizeof(*tx));
    lt->list[index] = lt->list[--lt->count];
}

static int answers_digest(struct transaction *tx, unsigned char digest[LOCK_POLICY_HASH_LEN])
{
    unsigned int len = 0;
    if (tx->answers == 0 || tx->answer_hash == NULL)
        return 0;
    if (EVP_DigestFinal_ex(tx->answer_hash, digest, &len) != 1 || len != LOCK_POLICY_HASH_LEN)
        return 0;
    return 1;
}

static void send_reply(struct login_transactions *lt, const struct transaction *tx,
                       const struct login_counting_reply *reply)
{
    reply_result(lt, tx->link_number, tx->request_id, reply->result, reply->value,
                 reply->failures, reply->text);
}

static void grant(struct login_transactions *lt, const struct config *config,
                  const struct tunnel_config *t, struct transaction *tx)
{
    struct login_counting_reply refusal;
    const struct login_counting_attempt *a = &tx->attempt;
    if (login_counting_success(lt->counting, config, t, &tx->attempt, &refusal) < 0) {
        send_reply(lt, tx, &refusal);
        return;
    }
    char why[256];
    if (!fleet_link_up(lt->fleet, why, sizeof(why))) {
        /* The other gateways could not learn this grant, nor this gateway their locks. */
        log_error("[%s] second factor: the login of \"%s\" succeeded, but the shared state "
                  "store is unreachable (%s): not granted", t->name, a->identity, why);
        reply_result(lt, tx->link_number, tx->request_id, AUTH_RESULT_UNAVAILABLE, 0, 0,
                     "the login service cannot reach its shared state store; try again shortly");
        return;
    }
    uint64_t now_ms = event_loop_now_ms();
    int64_t until = utc_time_now() + (int64_t)t->grant_lifetime;
    if (grants_put(lt->grants, t->name, tx->sha256, a->identity, a->source,
                   now_ms + t->grant_lifetime * 1000u, now_ms) < 0) {
        log_error("[%s] second factor: cannot record the grant of \"%s\"", t->name, a->identity);
        reply_result(lt, tx->link_number, tx->request_id, AUTH_RESULT_UNAVAILABLE, 0, 0,
                     "the server could not record the login");
        return;
    }
    fleet_link_publish_grant(lt->fleet, t->name, tx->sha256, a->identity, a->user, a->source,
                             until);
    login_log_success(t->name, a->identity, a->user, a->source, until);
    reply_result(lt, tx->link_number, tx->request_id, AUTH_RESULT_GRANTED, until, 0,
                 "access granted");
}

/* ATTEMPT's user has no second-factor enrolment (DETAIL: how that is known). No code
 * can be right, so none is a guess: refused, told plainly, not counted. */
static void not_enrolled(struct login_transactions *lt, const struct config *config,
                         const struct tunnel_config *t, uint64_t link_number, uint32_t request_id,
                         struct login_counting_attempt *attempt, const char *detail)
{
    char reason[600], text[200];
    login_counting_release(lt->counting, config, t->name, attempt);
    log_warning("[%s] second factor: \"%s\" maps to user %s, who has no second-factor "
                "enrolment (%.400s); enrol %s, or map the certificate to another user", t->name,
                attempt->identity, attempt->user, detail, attempt->user);
    snprintf(reason, sizeof(reason), "no second-factor enrolment for user %s (%.400s)",
             attempt->user, detail);
    login_log_failure(t->name, attempt->identity, attempt->user, attempt->source, 0,
                      (unsigned)t->max_failures, reason);
    snprintf(text, sizeof(text), "no second factor is enrolled for user %s; ask the server's "
             "administrator to enrol %s", attempt->user, attempt->user);
    reply_result(lt, link_number, request_id, AUTH_RESULT_UNAVAILABLE, 0, 0, text);
}

static void count_answers(struct login_transactions *lt, const struct config *config,
                          const struct tunnel_config *t, struct transaction *tx,
                          enum auth_result outcome, const char *reason,
                          struct login_counting_reply *reply)
{
    unsigned char digest[LOCK_POLICY_HASH_LEN];
    int hashed = answers_digest(tx, digest);
    login_counting_failure(lt->counting, config, t, &tx->attempt, outcome, reason,
                           hashed ? digest : NULL, reply);
    OPENSSL_cleanse(digest, sizeof(digest));
}

/* The PAM child reported OUTCOME, with PAM's REASON. */
static void finish(struct login_transactions *lt, const struct config *config, size_t index,
                   enum auth_result outcome, const char *reason)
{
    struct transaction *tx = lt->list[index];
    const struct tunnel_config *t = gated_tunnel(config, tx->tunnel);
    struct login_counting_reply reply;
    if (t == NULL || t->second_factor != SECOND_FACTOR_PAM) {
        login_counting_release(lt->counting, config, tx->tunnel, &tx->attempt);
        reply_result(lt, tx->link_number, tx->request_id, AUTH_RESULT_UNAVAILABLE, 0, 0,
                     "the tunnel no longer asks for a second factor");
    } else if (outcome == AUTH_RESULT_GRANTED) {
        grant(lt, config, t, tx);
    } else if (outcome == AUTH_RESULT_DENIED || outcome == AUTH_RESULT_TIMEOUT) {
        count_answers(lt, config, t, tx, outcome, reason, &reply);
        send_reply(lt, tx, &reply);
    } else if (outcome == AUTH_RESULT_UNMAPPED) {
        not_enrolled(lt, config, t, tx->link_number, tx->request_id, &tx->attempt, reason);
    } else {
        login_counting_release(lt->counting, config, t->name, &tx->attempt);
        login_log_failure(t->name, tx->attempt.identity, tx->attempt.user, tx->attempt.source, 0,
                          (unsigned)t->max_failures, reason);
        reply_result(lt, tx->link_number, tx->request_id, outcome, 0, 0, reason);
    }
    close_transaction(lt, index);
}

/* The login ended before PAM said how (REASON), and the worker is told so when TELL.
 * Once an answer went to PAM it counts as a failed attempt: what PAM did with it (a
 * second prompt, a delay) must not be learnt for free by leaving before the result. */
static void abandon(struct login_transactions *lt, const struct config *config, size_t index,
                    const char *reason, int tell)
{
    struct transaction *tx = lt->list[index];
    const struct tunnel_config *t = gated_tunnel(config, tx->tunnel);
    struct login_counting_reply reply = { .result = AUTH_RESULT_UNAVAILABLE };
    if (t != NULL && t->second_factor == SECOND_FACTOR_PAM && tx->answers > 0) {
        count_answers(lt, config, t, tx, AUTH_RESULT_DENIED, reason, &reply);
        if (reply.result != AUTH_RESULT_LOCKED)
            reply = (struct login_counting_reply){ .result = AUTH_RESULT_UNAVAILABLE };
    } else {
        login_counting_release(lt->counting, config, tx->tunnel, &tx->attempt);
        if (t != NULL && tell)
            login_log_failure(t->name, tx->attempt.identity, tx->attempt.user,
                              tx->attempt.source, 0, (unsigned)t->max_failures, reason);
    }
    if (reply.result == AUTH_RESULT_UNAVAILABLE)
        snprintf(reply.text, sizeof(reply.text), "%s", reason);
    if (tell)
        send_reply(lt, tx, &reply);
    close_transaction(lt, index);
}

/* Forks the PAM child as the first process of a new PID namespace when the kernel
 * lets us: killing it then kills everything its modules started, even commands that
 * left its process group (pam_exec runs them in a session of their own). Elsewhere a
 * plain fork, and the kill reaches the child's process group only. */
static pid_t fork_pam_child(void)
{
    static int namespaces_refused;
    if (!namespaces_refused) {
        /* Raw clone with no new stack behaves like fork. */
        pid_t pid = (pid_t)syscall(SYS_clone, CLONE_NEWPID | SIGCHLD, NULL, NULL, NULL, NULL);
        if (pid >= 0)
            return pid;
        if (errno != EPERM && errno != EINVAL && errno != ENOSPC && errno != EUSERS)
            return -1;
        namespaces_refused = 1;
        log_notice("second factor: no PID namespace for PAM logins (%s); a hung module's "
                   "own commands may outlive its timeout", strerror(errno));
    }
    return fork();
}

static pid_t spawn_pam_child(const struct tunnel_config *t, const struct helper_msg *begin,
                             int *fd_out)
{
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
        log_error("second factor: socketpair: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork_pam_child();
    if (pid < 0) {
        log_error("second factor: fork: %s", strerror(errno));
        close(pair[0]);
        close(pair[1]);
        return -1;
    }
    if (pid == 0) {
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        signals_reset_in_child();
        /* Nothing of the helper's (links, other logins, the admin socket) stays
         * reachable from inside a PAM module. */
        if (dup2(pair[1], 3) < 0)
            _exit(1);
        closefrom(4);
        struct pam_transaction_params params = {
            .service = t->pam_service, .confdir = t->pam_confdir, .user = begin->user,
            .rhost = begin->source, .ruser = begin->identity,
        };
        _exit(pam_transaction_run(3, &params));
    }
    close(pair[1]);
    /* Also here: a kill right after fork must not miss the group. */
    setpgid(pid, pid);
    fcntl(pair[0], F_SETFL, O_NONBLOCK);
    *fd_out = pair[0];
    return pid;
}

struct login_transactions *login_transactions_create(struct lock_table *locks,
                                                     struct grants *grants,
                                                     struct alert_commands *alerts,
                                                     login_transactions_send_fn *send,
                                                     void *send_arg)
{
    struct login_transactions *lt = calloc(1, sizeof(*lt));
    if (lt == NULL || RAND_bytes(lt->salt, sizeof(lt->salt)) != 1 ||
        (lt->counting = login_counting_create(locks, grants, alerts)) == NULL) {
        free(lt);
        return NULL;
    }
    lt->grants = grants;
    lt->send = send;
    lt->send_arg = send_arg;
    return lt;
}

void login_transactions_use_fleet(struct login_transactions *lt, struct fleet_link *fleet)
{
    lt->fleet = fleet;
    login_counting_use_fleet(lt->counting, fleet);
}

void login_transactions_apply_remote(struct login_transactions *lt, const struct config *config,
                                     const struct store_event *event)
{
    login_counting_apply_remote(lt->counting, config, event);
}

void login_transactions_free(struct login_transactions *lt)
{
    if (lt == NULL)
        return;
    /* Their reservations stay in the state file: counted as failures at the next start. */
    for (size_t i = lt->count; i > 0; i--)
        close_transaction(lt, i - 1);
    login_counting_free(lt->counting);
    OPENSSL_cleanse(lt->salt, sizeof(lt->salt));
    free(lt);
}

/* Why ATTEMPT must wait for another login, or NULL. One PAM conversation per identity
 * and per local user at a time, on every tunnel: parallel attempts would let guesses
 * overtake the count that should stop them. */
static const char *concurrent(const struct login_transactions *lt,
                              const struct login_counting_attempt *attempt)
{
    for (size_t i = 0; i < lt->count; i++) {
        const struct login_counting_attempt *running = &lt->list[i]->attempt;
        if (strcmp(running->identity, attempt->identity) == 0)
            return "another login for this identity is in progress";
        if (strcmp(running->user, attempt->user) == 0)
            return "another login for this user is in progress";
    }
    return NULL;
}

void login_transactions_begin(struct login_transactions *lt, const struct config *config,
                              uint64_t link_number, const struct helper_msg *msg)
{
    const struct tunnel_config *t = gated_tunnel(config, msg->tunnel);
    if (t == NULL || t->second_factor != SECOND_FACTOR_PAM) {
        reply_result(lt, link_number, msg->id, AUTH_RESULT_UNAVAILABLE, 0, 0,
                     "this tunnel does not ask for a second factor");
        return;
    }
    struct login_counting_attempt attempt;
    memset(&attempt, 0, sizeof(attempt));
    memcpy(attempt.identity, msg->identity, sizeof(attempt.identity));
    memcpy(attempt.user, msg->user, sizeof(attempt.user));
    memcpy(attempt.source, msg->source, sizeof(attempt.source));
    const char *wait = concurrent(lt, &attempt);
    if (wait != NULL) {
        login_log_failure(t->name, attempt.identity, attempt.user, attempt.source, 0,
                          (unsigned)t->max_failures, wait);
        reply_result(lt, link_number, msg->id, AUTH_RESULT_UNAVAILABLE, 0, 0, wait);
        return;
    }
    char path[4200], detail[4300];
    if (pam_enrolment_missing(t->pam_confdir, t->pam_service, attempt.user, path, sizeof(path))) {
        snprintf(detail, sizeof(detail), "%s does not exist", path);
        not_enrolled(lt, config, t, link_number, msg->id, &attempt, detail);
        return;
    }
    if (lt->count == LOGIN_TRANSACTIONS_MAX) {
        log_error("[%s] second factor: %d logins already running; refusing \"%s\"", t->name,
                  LOGIN_TRANSACTIONS_MAX, attempt.identity);
        reply_result(lt, link_number, msg->id, AUTH_RESULT_UNAVAILABLE, 0, 0,
                     "the login service is busy; try again shortly");
        return;
    }
    struct login_counting_reply refusal;
    if (login_counting_start(lt->counting, config, t, &attempt, &refusal) < 0) {
        reply_result(lt, link_number, msg->id, refusal.result, refusal.value, refusal.failures,
                     refusal.text);
        return;
    }
    struct transaction *tx = calloc(1, sizeof(*tx));
    if (tx == NULL || (tx->answer_hash = EVP_MD_CTX_new()) == NULL ||
        EVP_DigestInit_ex(tx->answer_hash, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(tx->answer_hash, lt->salt, sizeof(lt->salt)) != 1) {
        if (tx != NULL)
            EVP_MD_CTX_free(tx->answer_hash);
        free(tx);
        login_counting_release(lt->counting, config, t->name, &attempt);
        reply_result(lt, link_number, msg->id, AUTH_RESULT_UNAVAILABLE, 0, 0, "out of memory");
        return;
    }
    tx->link_number = link_number;
    tx->request_id = msg->id;
    tx->fd = -1;
    memcpy(tx->tunnel, msg->tunnel, sizeof(tx->tunnel));
    memcpy(tx->sha256, msg->sha256, sizeof(tx->sha256));
    tx->attempt = attempt;
    tx->pid = spawn_pam_child(t, msg, &tx->fd);
    if (tx->pid < 0) {
        EVP_MD_CTX_free(tx->answer_hash);
        free(tx);
        login_counting_release(lt->counting, config, t->name, &attempt);
        reply_result(lt, link_number, msg->id, AUTH_RESULT_UNAVAILABLE, 0, 0,
                     "the login service could not start PAM");
        return;
    }
    tx->deadline_ms = event_loop_now_ms() + t->pam_timeout * 1000u;
    lt->list[lt->count++] = tx;
    log_debug("[%s] second factor: PAM login of \"%s\" as %s from %s (pid %d)", t->name,
              tx->attempt.identity, tx->attempt.user, tx->attempt.source, (int)tx->pid);
}

static ssize_t find_transaction(const struct login_transactions *lt, uint64_t link_number,
                                uint32_t id)
{
    for (size_t i = 0; i < lt->count; i++)
        if (lt->list[i]->link_number == link_number && lt->list[i]->request_id == id)
            return (ssize_t)i;
    return -1;
}

void login_transactions_answer(struct login_transactions *lt, const struct config *config,
                               uint64_t link_number, struct helper_msg *msg)
{
    ssize_t index = find_transaction(lt, link_number, msg->id);
    if (index < 0 || !lt->list[index]->awaiting_answer)
        return;
    struct transaction *tx = lt->list[index];
    uint32_t len = msg->text_len;
    unsigned char prefix[4] = { (unsigned char)(len >> 24), (unsigned char)(len >> 16),
                                (unsigned char)(len >> 8), (unsigned char)len };
    EVP_DigestUpdate(tx->answer_hash, prefix, sizeof(prefix));
    EVP_DigestUpdate(tx->answer_hash, msg->text, len);
    tx->answers++;
    msg->id = 0;
    if (helper_msg_send(tx->fd, msg) < 0) {
        abandon(lt, config, (size_t)index, "the PAM session ended unexpectedly", 1);
        return;
    }
    const struct tunnel_config *t = gated_tunnel(config, tx->tunnel);
    tx->awaiting_answer = 0;
    tx->deadline_ms = event_loop_now_ms() + (t != NULL ? t->pam_timeout : 30) * 1000u;
}

void login_transactions_cancel(struct login_transactions *lt, const struct config *config,
                               uint64_t link_number, uint32_t id)
{
    ssize_t index = find_transaction(lt, link_number, id);
    if (index >= 0)
        abandon(lt, config, (size_t)index, "the client left in the middle of the attempt", 0);
}

void login_transactions_handshake_failure(struct login_transactions *lt,
                                          const struct config *config,
                                          const struct helper_msg *msg)
{
    const struct tunnel_config *t = gated_tunnel(config, msg->tunnel);
    if (t != NULL && t->max_handshake_failures > 0)
        login_counting_handshake_failure(lt->counting, config, t, msg->source);
}

void login_transactions_drop_link(struct login_transactions *lt, const struct config *config,
                                  uint64_t link_number)
{
    for (size_t i = 0; i < lt->count;) {
        if (lt->list[i]->link_number == link_number)
            abandon(lt, config, i, "the worker went away in the middle of the attempt", 0);
        else
            i++;
    }
}

size_t login_transactions_poll_fds(const struct login_transactions *lt, struct pollfd *fds,
                                   uint64_t *keys, size_t room)
{
    size_t n = 0;
    for (size_t i = 0; i < lt->count && n < room; i++) {
        if (lt->list[i]->fd < 0)
            continue;
        fds[n] = (struct pollfd){ .fd = lt->list[i]->fd, .events = POLLIN };
        keys[n++] = (uint64_t)lt->list[i]->fd;
    }
    return n;
}

static void read_child(struct login_transactions *lt, const struct config *config, size_t index)
{
    struct transaction *tx = lt->list[index];
    struct helper_msg msg;
    int got = helper_msg_recv(tx->fd, &msg);
    if (got < 0 && errno == EAGAIN)
        return;
    if (got <= 0) {
        abandon(lt, config, index, "the PAM session ended unexpectedly", 1);
        return;
    }
    if (msg.type == HELPER_MSG_RESULT) {
        tx->pid = 0;   /* it exits by itself now */
        finish(lt, config, index, (enum auth_result)msg.style, msg.text);
        return;
    }
    if (msg.type != HELPER_MSG_PROMPT || tx->awaiting_answer) {
        abandon(lt, config, index, "the PAM session broke the protocol", 1);
        return;
    }
    if (++tx->messages > AUTH_MAX_MESSAGES) {
        abandon(lt, config, index, "PAM sent too many messages", 1);
        return;
    }
    msg.id = tx->request_id;
    lt->send(lt->send_arg, tx->link_number, &msg);
    if (msg.style == AUTH_FRAME_PROMPT_ECHO_OFF || msg.style == AUTH_FRAME_PROMPT_ECHO_ON) {
        tx->awaiting_answer = 1;
        /* The worker cuts the client off at its own answer timeout and cancels. */
        tx->deadline_ms = event_loop_now_ms() + ((uint64_t)AUTH_ANSWER_TIMEOUT_S + 30) * 1000;
    }
}

void login_transactions_ready(struct login_transactions *lt, const struct config *config,
                              uint64_t key)
{
    for (size_t i = 0; i < lt->count; i++) {
        if ((uint64_t)lt->list[i]->fd == key) {
            read_child(lt, config, i);
            break;
        }
    }
}

void login_transactions_expire(struct login_transactions *lt, const struct config *config,
                               uint64_t now_ms)
{
    for (size_t i = 0; i < lt->count;) {
        struct transaction *tx = lt->list[i];
        if (now_ms < tx->deadline_ms) {
            i++;
            continue;
        }
        if (tx->awaiting_answer) {
            abandon(lt, config, i, "no answer came in time", 1);
        } else {
            const struct tunnel_config *t = gated_tunnel(config, tx->tunnel);
            char reason[160];
            snprintf(reason, sizeof(reason), "PAM did not finish within pam_timeout (%llus)",
                     (unsigned long long)(t != NULL ? t->pam_timeout : 0));
            log_warning("[%s] second factor: PAM login of \"%s\" hung; killed it", tx->tunnel,
                        tx->attempt.identity);
            finish(lt, config, i, AUTH_RESULT_TIMEOUT, reason);
        }
    }
}

void login_transactions_reaped(struct login_transactions *lt, pid_t pid)
{
    for (size_t i = 0; i < lt->count; i++)
        if (lt->list[i]->pid == pid)
            lt->list[i]->pid = 0;
}

uint64_t login_transactions_next_deadline(const struct login_transactions *lt, uint64_t soonest)
{
    for (size_t i = 0; i < lt->count; i++)
        if (lt->list[i]->deadline_ms < soonest)
            soonest = lt->list[i]->deadline_ms;
    return soonest;
}
