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
#include "helper/alert.h"
#include "helper/lock_policy.h"
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
    char identity[LIMIT_IDENTITY + 1];
    char user[LIMIT_USER_NAME + 1];
    char sha256[LIMIT_SHA256_HEX + 1];
    char source[LIMIT_SOURCE_ADDRESS + 1];
};

struct login_transactions {
    struct lock_table *locks;
    struct grants *grants;
    struct alert_commands *alerts;
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

static struct lock_policy_rules login_rules(const struct tunnel_config *t)
{
    return (struct lock_policy_rules){ .window = t->failure_window,
                                       .max_failures = (unsigned)t->max_failures,
                                       .lockout = t->lockout };
}

/* An address is locked only by failures of two identities or more: one person's
 * typos (or one brute-forced identity, which its own lock stops) must not lock out
 * everyone behind the same NAT. */
static struct lock_policy_rules source_rules(const struct tunnel_config *t)
{
    struct lock_policy_rules rules = login_rules(t);
    rules.min_tags = 2;
    return rules;
}

/* The address's "same answers" test includes the identity: one code tried against
 * several identities is several attempts. */
static void source_hash(const unsigned char *answers, const char *identity,
                        unsigned char out[LOCK_POLICY_HASH_LEN])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int len = 0;
    if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(ctx, answers, LOCK_POLICY_HASH_LEN) != 1 ||
        EVP_DigestUpdate(ctx, identity, strlen(identity) + 1) != 1 ||
        EVP_DigestFinal_ex(ctx, out, &len) != 1)
        memset(out, 0, LOCK_POLICY_HASH_LEN);
    EVP_MD_CTX_free(ctx);
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

static void raise_alert(struct login_transactions *lt, const struct tunnel_config *t,
                        const struct alert_event *event)
{
    alert_log(event);
    alert_commands_start(lt->alerts, t->name, &t->alert_command, event);
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

static void count_failure(struct login_transactions *lt, const struct config *config,
                          const struct tunnel_config *t, struct transaction *tx,
                          enum auth_result outcome, const char *reason)
{
    struct lock_policy *locks = lock_table_policy(lt->locks);
    unsigned char digest[LOCK_POLICY_HASH_LEN], by_source_digest[LOCK_POLICY_HASH_LEN];
    const unsigned char *hash = answers_digest(tx, digest) ? digest : NULL;
    if (hash != NULL)
        source_hash(digest, tx->identity, by_source_digest);
    struct lock_policy_rules rules = login_rules(t), by_address = source_rules(t);
    struct lock_policy_verdict by_identity, by_source;
    int64_t now = utc_time_now();
    int ok_identity = lock_policy_record_failure(locks, &rules, t->name, LOCK_POLICY_IDENTITY,
                                                 tx->identity, hash, 0, now, &by_identity) == 0;
    int ok_source = lock_policy_record_failure(locks, &by_address, t->name, LOCK_POLICY_SOURCE,
                                               tx->source,
                                               hash != NULL ? by_source_digest : NULL,
                                               lock_policy_tag(tx->identity), now,
                                               &by_source) == 0;
    OPENSSL_cleanse(digest, sizeof(digest));
    OPENSSL_cleanse(by_source_digest, sizeof(by_source_digest));
    if (!ok_identity || !ok_source)
        log_error("[%s] second factor: the lock table is full; this failure was not counted",
                  t->name);
    char why[400];
    int already_locked = !by_identity.locked_now && by_identity.locked_until > 0;
    snprintf(why, sizeof(why), "%s%s", reason,
             already_locked ? " (locked meanwhile by another attempt)"
             : ok_identity && !by_identity.counted ? " (same answer as before, not counted again)"
                                                   : "");
    login_log_failure(t->name, tx->identity, tx->user, tx->source,
                      by_identity.counted ? by_identity.failures : 0, rules.max_failures, why);

    if (by_identity.locked_now || by_source.locked_now) {
        /* One lock event, one alert, even when both counts reached the limit at once. */
        const struct lock_policy_verdict *v = by_identity.locked_now ? &by_identity : &by_source;
        struct alert_event event = {
            .kind = by_identity.locked_now ? ALERT_IDENTITY_LOCKED : ALERT_SOURCE_LOCKED,
            .tunnel = t->name, .identity = tx->identity, .user = tx->user,
            .source = tx->source, .failures = v->failures, .level = v->level,
            .until = v->locked_until,
        };
        if (by_identity.locked_now) {
            unsigned revoked = grants_revoke_identity(lt->grants, t->name, tx->identity,
                                                      event_loop_now_ms());
            if (revoked > 0)
                log_notice("[%s] withdrew %u grant(s) of locked identity \"%s\"", t->name,
                           revoked, tx->identity);
        }
        raise_alert(lt, t, &event);
        int64_t until = by_identity.locked_until > by_source.locked_until
                            ? by_identity.locked_until : by_source.locked_until;
        lock_table_save(lt->locks, config);
        reply_result(lt, tx->link_number, tx->request_id, AUTH_RESULT_LOCKED, until, v->failures,
                     "too many failed attempts");
        return;
    }
    if (by_identity.counted || by_source.counted)
        lock_table_save(lt->locks, config);
    if (already_locked) {
        reply_result(lt, tx->link_number, tx->request_id, AUTH_RESULT_LOCKED,
                     by_identity.locked_until, 0, "too many failed attempts for this identity");
        return;
    }
    unsigned left = by_identity.failures < rules.max_failures
                        ? rules.max_failures - by_identity.failures : 0;
    reply_result(lt, tx->link_number, tx->request_id, outcome, 0, left, reason);
}

static void grant(struct login_transactions *lt, const struct config *config,
                  const struct tunnel_config *t, struct transaction *tx)
{
    struct lock_policy *locks = lock_table_policy(lt->locks);
    int changed = lock_policy_record_success(locks, t->name, LOCK_POLICY_IDENTITY, tx->identity);
    changed |= lock_policy_record_success(locks, t->name, LOCK_POLICY_SOURCE, tx->source);
    if (changed)
        lock_table_save(lt->locks, config);
    uint64_t now_ms = event_loop_now_ms();
    int64_t until = utc_time_now() + (int64_t)t->grant_lifetime;
    if (grants_put(lt->grants, t->name, tx->sha256, tx->identity, tx->source,
                   now_ms + t->grant_lifetime * 1000u, now_ms) < 0) {
        log_error("[%s] second factor: cannot record the grant of \"%s\"", t->name, tx->identity);
        reply_result(lt, tx->link_number, tx->request_id, AUTH_RESULT_UNAVAILABLE, 0, 0,
                     "the server could not record the login");
        return;
    }
    login_log_success(t->name, tx->identity, tx->user, tx->source, until);
    reply_result(lt, tx->link_number, tx->request_id, AUTH_RESULT_GRANTED, until, 0,
                 "access granted");
}

/* The PAM child reported OUTCOME (or died, or was cut off). */
static void finish(struct login_transactions *lt, const struct config *config, size_t index,
                   enum auth_result outcome, const char *reason)
{
    struct transaction *tx = lt->list[index];
    const struct tunnel_config *t = gated_tunnel(config, tx->tunnel);
    if (t == NULL || t->second_factor != SECOND_FACTOR_PAM) {
        reply_result(lt, tx->link_number, tx->request_id, AUTH_RESULT_UNAVAILABLE, 0, 0,
                     "the tunnel no longer asks for a second factor");
    } else if (outcome == AUTH_RESULT_GRANTED) {
        grant(lt, config, t, tx);
    } else if (outcome == AUTH_RESULT_DENIED || outcome == AUTH_RESULT_TIMEOUT) {
        count_failure(lt, config, t, tx, outcome, reason);
    } else {
        login_log_failure(t->name, tx->identity, tx->user, tx->source, 0,
                          (unsigned)t->max_failures, reason);
        reply_result(lt, tx->link_number, tx->request_id, outcome, 0, 0, reason);
    }
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
    if (lt == NULL || RAND_bytes(lt->salt, sizeof(lt->salt)) != 1) {
        free(lt);
        return NULL;
    }
    lt->locks = locks;
    lt->grants = grants;
    lt->alerts = alerts;
    lt->send = send;
    lt->send_arg = send_arg;
    return lt;
}

void login_transactions_free(struct login_transactions *lt)
{
    if (lt == NULL)
        return;
    for (size_t i = lt->count; i > 0; i--)
        close_transaction(lt, i - 1);
    OPENSSL_cleanse(lt->salt, sizeof(lt->salt));
    free(lt);
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
    const struct lock_policy *locks = lock_table_policy(lt->locks);
    int64_t now = utc_time_now();
    int64_t identity_until = lock_policy_locked_until(locks, t->name, LOCK_POLICY_IDENTITY,
                                                      msg->identity, now);
    int64_t source_until = lock_policy_locked_until(locks, t->name, LOCK_POLICY_SOURCE,
                                                    msg->source, now);
    if (identity_until > 0 || source_until > 0) {
        int64_t until = identity_until > source_until ? identity_until : source_until;
        char reason[200], when[32];
        snprintf(reason, sizeof(reason), "%s locked until %s, PAM not asked",
                 identity_until > 0 ? "identity" : "source address",
                 utc_time_format(until, when, sizeof(when)));
        login_log_failure(t->name, msg->identity, msg->user, msg->source, 0,
                          (unsigned)t->max_failures, reason);
        reply_result(lt, link_number, msg->id, AUTH_RESULT_LOCKED, until, 0,
                     identity_until > 0 ? "too many failed attempts for this identity"
                                        : "too many failed attempts from this address");
        return;
    }
    if (lt->count == LOGIN_TRANSACTIONS_MAX) {
        log_error("[%s] second factor: %d logins already running; refusing \"%s\"", t->name,
                  LOGIN_TRANSACTIONS_MAX, msg->identity);
        reply_result(lt, link_number, msg->id, AUTH_RESULT_UNAVAILABLE, 0, 0,
                     "the login service is busy; try again shortly");
        return;
    }
    struct transaction *tx = calloc(1, sizeof(*tx));
    if (tx == NULL || (tx->answer_hash = EVP_MD_CTX_new()) == NULL ||
        EVP_DigestInit_ex(tx->answer_hash, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(tx->answer_hash, lt->salt, sizeof(lt->salt)) != 1) {
        if (tx != NULL)
            EVP_MD_CTX_free(tx->answer_hash);
        free(tx);
        reply_result(lt, link_number, msg->id, AUTH_RESULT_UNAVAILABLE, 0, 0, "out of memory");
        return;
    }
    tx->link_number = link_number;
    tx->request_id = msg->id;
    tx->fd = -1;
    memcpy(tx->tunnel, msg->tunnel, sizeof(tx->tunnel));
    memcpy(tx->identity, msg->identity, sizeof(tx->identity));
    memcpy(tx->user, msg->user, sizeof(tx->user));
    memcpy(tx->sha256, msg->sha256, sizeof(tx->sha256));
    memcpy(tx->source, msg->source, sizeof(tx->source));
    tx->pid = spawn_pam_child(t, msg, &tx->fd);
    if (tx->pid < 0) {
        EVP_MD_CTX_free(tx->answer_hash);
        free(tx);
        reply_result(lt, link_number, msg->id, AUTH_RESULT_UNAVAILABLE, 0, 0,
                     "the login service could not start PAM");
        return;
    }
    tx->deadline_ms = event_loop_now_ms() + t->pam_timeout * 1000u;
    lt->list[lt->count++] = tx;
    log_debug("[%s] second factor: PAM login of \"%s\" as %s from %s (pid %d)", t->name,
              tx->identity, tx->user, tx->source, (int)tx->pid);
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
        finish(lt, config, (size_t)index, AUTH_RESULT_UNAVAILABLE,
               "the PAM session ended unexpectedly");
        return;
    }
    const struct tunnel_config *t = gated_tunnel(config, tx->tunnel);
    tx->awaiting_answer = 0;
    tx->deadline_ms = event_loop_now_ms() + (t != NULL ? t->pam_timeout : 30) * 1000u;
}

void login_transactions_cancel(struct login_transactions *lt, uint64_t link_number, uint32_t id)
{
    ssize_t index = find_transaction(lt, link_number, id);
    if (index >= 0)
        close_transaction(lt, (size_t)index);
}

void login_transactions_handshake_failure(struct login_transactions *lt,
                                          const struct config *config,
                                          const struct helper_msg *msg)
{
    const struct tunnel_config *t = gated_tunnel(config, msg->tunnel);
    if (t == NULL || t->max_handshake_failures == 0)
        return;
    struct lock_policy_rules rules = { .window = t->failure_window,
                                       .max_failures = (unsigned)t->max_handshake_failures,
                                       .lockout = t->lockout };
    struct lock_policy_verdict verdict;
    if (lock_policy_record_failure(lock_table_policy(lt->locks), &rules, t->name,
                                   LOCK_POLICY_HANDSHAKE, msg->source, NULL, 0, utc_time_now(),
                                   &verdict) < 0 ||
        !verdict.locked_now)
        return;
    struct alert_event event = {
        .kind = ALERT_HANDSHAKE_FAILURES, .tunnel = t->name, .identity = "", .user = "",
        .source = msg->source, .failures = verdict.failures, .level = verdict.level,
        .until = verdict.locked_until,
    };
    raise_alert(lt, t, &event);
    lock_table_save(lt->locks, config);
}

void login_transactions_drop_link(struct login_transactions *lt, uint64_t link_number)
{
    for (size_t i = 0; i < lt->count;) {
        if (lt->list[i]->link_number == link_number)
            close_transaction(lt, i);
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
        finish(lt, config, index, AUTH_RESULT_UNAVAILABLE, "the PAM session ended unexpectedly");
        return;
    }
    if (msg.type == HELPER_MSG_RESULT) {
        tx->pid = 0;   /* it exits by itself now */
        finish(lt, config, index, (enum auth_result)msg.style, msg.text);
        return;
    }
    if (msg.type != HELPER_MSG_PROMPT || tx->awaiting_answer) {
        finish(lt, config, index, AUTH_RESULT_UNAVAILABLE, "the PAM session broke the protocol");
        return;
    }
    if (++tx->messages > AUTH_MAX_MESSAGES) {
        finish(lt, config, index, AUTH_RESULT_UNAVAILABLE, "PAM sent too many messages");
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
            finish(lt, config, i, AUTH_RESULT_UNAVAILABLE, "no answer came in time");
        } else {
            const struct tunnel_config *t = gated_tunnel(config, tx->tunnel);
            char reason[160];
            snprintf(reason, sizeof(reason), "PAM did not finish within pam_timeout (%llus)",
                     (unsigned long long)(t != NULL ? t->pam_timeout : 0));
            log_warning("[%s] second factor: PAM login of \"%s\" hung; killed it", tx->tunnel,
                        tx->identity);
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
