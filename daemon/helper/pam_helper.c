#include "helper/pam_helper.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "auth/login_log.h"
#include "helper/alert.h"
#include "core/utc_time.h"
#include "core/event_loop.h"
#include "proto/admin_protocol.h"
#include "proto/helper_msg.h"
#include "helper/lock_policy.h"
#include "helper/lock_state.h"
#include "core/log.h"
#include "helper/pam_transaction.h"

#define MAX_LINKS 1024
#define MAX_TRANSACTIONS 512
#define MAX_ALERT_COMMANDS 64
#define MAX_ADMIN_CONNECTIONS 8
#define ADMIN_TIMEOUT_MS 5000
#define LINK_BUFFER_BYTES (1024 * 1024)
#define SALT_LEN 32
#define RESTART_BURST 5
#define RESTART_WINDOW_MS 60000
#define STOP_GRACE_MS 3000

/* ------------------------------------------------------------------ helper side */

struct link {
    int fd;
    uint64_t number;          /* never reused, so a transaction can outlive its link */
};

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
    char tunnel[65];
    char identity[USER_MAP_IDENTITY_MAX + 1];
    char user[USER_MAP_USER_MAX + 1];
    char sha256[65];
    char source[GRANTS_SOURCE_MAX + 1];
};

struct alert_child {
    pid_t pid;
    uint64_t deadline_ms;
};

struct admin_connection {
    int fd;
    uint64_t deadline_ms;
};

struct helper {
    char *config_path;
    struct config *config;
    struct grants *grants;
    struct lock_policy *lockout;
    char state_path[4200];
    char admin_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    int control_fd;
    int signal_fd;
    int admin_fd;
    size_t link_count;
    struct link links[MAX_LINKS];
    uint64_t next_link_number;
    size_t transaction_count;
    struct transaction *transactions[MAX_TRANSACTIONS];
    size_t alert_count;
    struct alert_child alerts[MAX_ALERT_COMMANDS];
    struct admin_connection admins[MAX_ADMIN_CONNECTIONS];
    unsigned char salt[SALT_LEN];
    int stopping;
};

static int64_t wall_now(void)
{
    return (int64_t)time(NULL);
}

static const struct tunnel_config *gated_tunnel(const struct helper *h, const char *name)
{
    for (size_t i = 0; i < h->config->tunnel_count; i++) {
        const struct tunnel_config *t = &h->config->tunnels[i];
        if (strcmp(t->name, name) == 0 && t->mode == TUNNEL_MODE_SERVER)
            return t;
    }
    return NULL;
}

static struct lock_policy_rules login_policy(const struct tunnel_config *t)
{
    return (struct lock_policy_rules){ .window = t->failure_window,
                                    .max_failures = (unsigned)t->max_failures,
                                    .lockout = t->lockout };
}

/* An address is locked only by failures of two identities or more: one person's
 * typos (or one brute-forced identity, which its own lock stops) must not lock out
 * everyone behind the same NAT. */
static struct lock_policy_rules source_policy(const struct tunnel_config *t)
{
    struct lock_policy_rules policy = login_policy(t);
    policy.min_tags = 2;
    return policy;
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

static void save_state(struct helper *h)
{
    char err[600];
    uint64_t widest = 0;
    for (size_t i = 0; i < h->config->tunnel_count; i++)
        if (h->config->tunnels[i].failure_window > widest)
            widest = h->config->tunnels[i].failure_window;
    lock_policy_prune(h->lockout, wall_now(), widest);
    if (lock_state_save(h->lockout, h->state_path, err, sizeof(err)) < 0)
        log_error("second factor: lock state not saved (a restart would forget it): %s", err);
}

static struct link *find_link(struct helper *h, uint64_t number)
{
    for (size_t i = 0; i < h->link_count; i++)
        if (h->links[i].number == number)
            return &h->links[i];
    return NULL;
}

static void send_to_worker(struct helper *h, uint64_t link_number, struct helper_msg *msg)
{
    struct link *link = find_link(h, link_number);
    if (link != NULL && helper_msg_send(link->fd, msg) < 0)
        log_error("second factor: cannot answer a worker (%s); its login will time out",
                  strerror(errno));
}

static void reply_result(struct helper *h, uint64_t link_number, uint32_t request_id,
                         enum auth_result result, int64_t value, unsigned failures,
                         const char *text)
{
    struct helper_msg msg;
    helper_msg_init(&msg, HELPER_MSG_RESULT, request_id);
    msg.style = result;
    msg.value = value;
    msg.failures = failures;
    helper_msg_set_text(&msg, text, strlen(text));
    send_to_worker(h, link_number, &msg);
}

/* ------------------------------------------------------------------ alerts */

static void start_alert_command(struct helper *h, const struct tunnel_config *t,
                                const struct alert_event *event)
{
    if (t->alert_command.count == 0)
        return;
    if (h->alert_count == MAX_ALERT_COMMANDS) {
        log_error("[%s] alert_command not run: %d alert commands are still running", t->name,
                  MAX_ALERT_COMMANDS);
        return;
    }
    pid_t pid = alert_run_command(&t->alert_command, event);
    if (pid > 0)
        h->alerts[h->alert_count++] = (struct alert_child){
            .pid = pid, .deadline_ms = event_loop_now_ms() + ALERT_COMMAND_TIMEOUT_S * 1000u };
}

static void raise_alert(struct helper *h, const struct tunnel_config *t,
                        const struct alert_event *event)
{
    alert_log(event);
    start_alert_command(h, t, event);
}

/* ------------------------------------------------------------------ transactions */

static void close_transaction(struct helper *h, size_t index)
{
    struct transaction *tx = h->transactions[index];
    if (tx->fd >= 0)
        close(tx->fd);
    /* A child still inside PAM has nothing more to say: end it with whatever its
     * modules started (pam_exec's commands share its process group). It is reaped
     * from SIGCHLD like every other child. */
    if (tx->pid > 0)
        kill(-tx->pid, SIGKILL);
    EVP_MD_CTX_free(tx->answer_hash);
    OPENSSL_clear_free(tx, sizeof(*tx));
    h->transactions[index] = h->transactions[--h->transaction_count];
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

static void count_failure(struct helper *h, const struct tunnel_config *t, struct transaction *tx,
                          enum auth_result outcome, const char *reason)
{
    unsigned char digest[LOCK_POLICY_HASH_LEN], by_source_digest[LOCK_POLICY_HASH_LEN];
    const unsigned char *hash = answers_digest(tx, digest) ? digest : NULL;
    if (hash != NULL)
        source_hash(digest, tx->identity, by_source_digest);
    struct lock_policy_rules policy = login_policy(t), by_address = source_policy(t);
    struct lock_policy_verdict by_identity, by_source;
    int64_t now = wall_now();
    int ok_identity = lock_policy_record_failure(h->lockout, &policy, t->name, LOCK_POLICY_IDENTITY,
                                             tx->identity, hash, 0, now, &by_identity) == 0;
    int ok_source = lock_policy_record_failure(h->lockout, &by_address, t->name, LOCK_POLICY_SOURCE,
                                           tx->source, hash != NULL ? by_source_digest : NULL,
                                           lock_policy_tag(tx->identity), now, &by_source) == 0;
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
                      by_identity.counted ? by_identity.failures : 0, policy.max_failures, why);

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
            unsigned revoked = grants_revoke_identity(h->grants, t->name, tx->identity,
                                                      event_loop_now_ms());
            if (revoked > 0)
                log_notice("[%s] withdrew %u grant(s) of locked identity \"%s\"", t->name,
                           revoked, tx->identity);
        }
        raise_alert(h, t, &event);
        int64_t until = by_identity.locked_until > by_source.locked_until
                            ? by_identity.locked_until : by_source.locked_until;
        save_state(h);
        reply_result(h, tx->link_number, tx->request_id, AUTH_RESULT_LOCKED, until, v->failures,
                     "too many failed attempts");
        return;
    }
    if (by_identity.counted || by_source.counted)
        save_state(h);
    if (already_locked) {
        reply_result(h, tx->link_number, tx->request_id, AUTH_RESULT_LOCKED,
                     by_identity.locked_until, 0, "too many failed attempts for this identity");
        return;
    }
    unsigned left = by_identity.failures < policy.max_failures
                        ? policy.max_failures - by_identity.failures : 0;
    reply_result(h, tx->link_number, tx->request_id, outcome, 0, left, reason);
}

static void grant(struct helper *h, const struct tunnel_config *t, struct transaction *tx)
{
    int changed = lock_policy_record_success(h->lockout, t->name, LOCK_POLICY_IDENTITY, tx->identity);
    changed |= lock_policy_record_success(h->lockout, t->name, LOCK_POLICY_SOURCE, tx->source);
    if (changed)
        save_state(h);
    uint64_t now_ms = event_loop_now_ms();
    int64_t until = wall_now() + (int64_t)t->grant_lifetime;
    if (grants_put(h->grants, t->name, tx->sha256, tx->identity, tx->source,
                   now_ms + t->grant_lifetime * 1000u, now_ms) < 0) {
        log_error("[%s] second factor: cannot record the grant of \"%s\"", t->name, tx->identity);
        reply_result(h, tx->link_number, tx->request_id, AUTH_RESULT_UNAVAILABLE, 0, 0,
                     "the server could not record the login");
        return;
    }
    login_log_success(t->name, tx->identity, tx->user, tx->source, until);
    reply_result(h, tx->link_number, tx->request_id, AUTH_RESULT_GRANTED, until, 0, "access granted");
}

/* The PAM child reported OUTCOME (or died, or was cut off). */
static void finish(struct helper *h, size_t index, enum auth_result outcome, const char *reason)
{
    struct transaction *tx = h->transactions[index];
    const struct tunnel_config *t = gated_tunnel(h, tx->tunnel);
    if (t == NULL || t->second_factor != SECOND_FACTOR_PAM) {
        reply_result(h, tx->link_number, tx->request_id, AUTH_RESULT_UNAVAILABLE, 0, 0,
                     "the tunnel no longer asks for a second factor");
    } else if (outcome == AUTH_RESULT_GRANTED) {
        grant(h, t, tx);
    } else if (outcome == AUTH_RESULT_DENIED || outcome == AUTH_RESULT_TIMEOUT) {
        count_failure(h, t, tx, outcome, reason);
    } else {
        login_log_failure(t->name, tx->identity, tx->user, tx->source, 0,
                          (unsigned)t->max_failures, reason);
        reply_result(h, tx->link_number, tx->request_id, outcome, 0, 0, reason);
    }
    close_transaction(h, index);
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
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
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

static void begin_login(struct helper *h, const struct link *link, const struct helper_msg *msg)
{
    const struct tunnel_config *t = gated_tunnel(h, msg->tunnel);
    if (t == NULL || t->second_factor != SECOND_FACTOR_PAM) {
        reply_result(h, link->number, msg->id, AUTH_RESULT_UNAVAILABLE, 0, 0,
                     "this tunnel does not ask for a second factor");
        return;
    }
    int64_t now = wall_now();
    int64_t identity_until = lock_policy_locked_until(h->lockout, t->name, LOCK_POLICY_IDENTITY,
                                                  msg->identity, now);
    int64_t source_until = lock_policy_locked_until(h->lockout, t->name, LOCK_POLICY_SOURCE, msg->source,
                                                now);
    if (identity_until > 0 || source_until > 0) {
        int64_t until = identity_until > source_until ? identity_until : source_until;
        char reason[200], when[32];
        snprintf(reason, sizeof(reason), "%s locked until %s, PAM not asked",
                 identity_until > 0 ? "identity" : "source address",
                 utc_time_format(until, when, sizeof(when)));
        login_log_failure(t->name, msg->identity, msg->user, msg->source, 0,
                          (unsigned)t->max_failures, reason);
        reply_result(h, link->number, msg->id, AUTH_RESULT_LOCKED, until, 0,
                     identity_until > 0 ? "too many failed attempts for this identity"
                                        : "too many failed attempts from this address");
        return;
    }
    if (h->transaction_count == MAX_TRANSACTIONS) {
        log_error("[%s] second factor: %d logins already running; refusing \"%s\"", t->name,
                  MAX_TRANSACTIONS, msg->identity);
        reply_result(h, link->number, msg->id, AUTH_RESULT_UNAVAILABLE, 0, 0,
                     "the login service is busy; try again shortly");
        return;
    }
    struct transaction *tx = calloc(1, sizeof(*tx));
    if (tx == NULL || (tx->answer_hash = EVP_MD_CTX_new()) == NULL ||
        EVP_DigestInit_ex(tx->answer_hash, EVP_sha256(), NULL) != 1 ||
        EVP_DigestUpdate(tx->answer_hash, h->salt, sizeof(h->salt)) != 1) {
        if (tx != NULL)
            EVP_MD_CTX_free(tx->answer_hash);
        free(tx);
        reply_result(h, link->number, msg->id, AUTH_RESULT_UNAVAILABLE, 0, 0, "out of memory");
        return;
    }
    tx->link_number = link->number;
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
        reply_result(h, link->number, msg->id, AUTH_RESULT_UNAVAILABLE, 0, 0,
                     "the login service could not start PAM");
        return;
    }
    tx->deadline_ms = event_loop_now_ms() + t->pam_timeout * 1000u;
    h->transactions[h->transaction_count++] = tx;
    log_debug("[%s] second factor: PAM login of \"%s\" as %s from %s (pid %d)", t->name,
              tx->identity, tx->user, tx->source, (int)tx->pid);
}

static ssize_t find_transaction(const struct helper *h, uint64_t link_number, uint32_t id)
{
    for (size_t i = 0; i < h->transaction_count; i++)
        if (h->transactions[i]->link_number == link_number && h->transactions[i]->request_id == id)
            return (ssize_t)i;
    return -1;
}

static void pass_answer(struct helper *h, const struct link *link, struct helper_msg *msg)
{
    ssize_t index = find_transaction(h, link->number, msg->id);
    if (index < 0 || !h->transactions[index]->awaiting_answer)
        return;
    struct transaction *tx = h->transactions[index];
    uint32_t len = msg->text_len;
    unsigned char prefix[4] = { (unsigned char)(len >> 24), (unsigned char)(len >> 16),
                                (unsigned char)(len >> 8), (unsigned char)len };
    EVP_DigestUpdate(tx->answer_hash, prefix, sizeof(prefix));
    EVP_DigestUpdate(tx->answer_hash, msg->text, len);
    tx->answers++;
    msg->id = 0;
    if (helper_msg_send(tx->fd, msg) < 0) {
        finish(h, (size_t)index, AUTH_RESULT_UNAVAILABLE, "the PAM session ended unexpectedly");
        return;
    }
    const struct tunnel_config *t = gated_tunnel(h, tx->tunnel);
    tx->awaiting_answer = 0;
    tx->deadline_ms = event_loop_now_ms() + (t != NULL ? t->pam_timeout : 30) * 1000u;
}

static void handshake_failure(struct helper *h, const struct helper_msg *msg)
{
    const struct tunnel_config *t = gated_tunnel(h, msg->tunnel);
    if (t == NULL || t->max_handshake_failures == 0)
        return;
    struct lock_policy_rules policy = { .window = t->failure_window,
                                     .max_failures = (unsigned)t->max_handshake_failures,
                                     .lockout = t->lockout };
    struct lock_policy_verdict verdict;
    if (lock_policy_record_failure(h->lockout, &policy, t->name, LOCK_POLICY_HANDSHAKE, msg->source, NULL,
                               0, wall_now(), &verdict) < 0 || !verdict.locked_now)
        return;
    struct alert_event event = {
        .kind = ALERT_HANDSHAKE_FAILURES, .tunnel = t->name, .identity = "", .user = "",
        .source = msg->source, .failures = verdict.failures, .level = verdict.level,
        .until = verdict.locked_until,
    };
    raise_alert(h, t, &event);
    save_state(h);
}

static void drop_link(struct helper *h, size_t index)
{
    uint64_t number = h->links[index].number;
    close(h->links[index].fd);
    h->links[index] = h->links[--h->link_count];
    for (size_t i = 0; i < h->transaction_count;) {
        if (h->transactions[i]->link_number == number)
            close_transaction(h, i);
        else
            i++;
    }
}

/* Returns -1 when the link must be dropped. */
static int read_link(struct helper *h, size_t index)
{
    struct helper_msg msg;
    for (int batch = 0; batch < 64; batch++) {
        struct link *link = &h->links[index];
        int got = helper_msg_recv(link->fd, &msg);
        if (got == 0)
            return -1;
        if (got < 0) {
            if (errno == EAGAIN)
                return 0;
            log_error("second factor: a worker sent %s; dropping its link",
                      errno == EBADMSG ? "a malformed message" : strerror(errno));
            return -1;
        }
        switch (msg.type) {
        case HELPER_MSG_BEGIN:
            begin_login(h, link, &msg);
            break;
        case HELPER_MSG_ANSWER:
            pass_answer(h, link, &msg);
            break;
        case HELPER_MSG_CANCEL: {
            ssize_t tx = find_transaction(h, link->number, msg.id);
            if (tx >= 0)
                close_transaction(h, (size_t)tx);
            break;
        }
        case HELPER_MSG_HANDSHAKE_FAILURE:
            handshake_failure(h, &msg);
            break;
        default:
            helper_msg_wipe(&msg);
            log_error("second factor: a worker sent an unexpected message; dropping its link");
            return -1;
        }
        helper_msg_wipe(&msg);
    }
    return 0;
}

static void read_child(struct helper *h, size_t index)
{
    struct transaction *tx = h->transactions[index];
    struct helper_msg msg;
    int got = helper_msg_recv(tx->fd, &msg);
    if (got < 0 && errno == EAGAIN)
        return;
    if (got <= 0) {
        finish(h, index, AUTH_RESULT_UNAVAILABLE, "the PAM session ended unexpectedly");
        return;
    }
    if (msg.type == HELPER_MSG_RESULT) {
        tx->pid = 0;   /* it exits by itself now */
        finish(h, index, (enum auth_result)msg.style, msg.text);
        return;
    }
    if (msg.type != HELPER_MSG_PROMPT || tx->awaiting_answer) {
        finish(h, index, AUTH_RESULT_UNAVAILABLE, "the PAM session broke the protocol");
        return;
    }
    if (++tx->messages > AUTH_MAX_MESSAGES) {
        finish(h, index, AUTH_RESULT_UNAVAILABLE, "PAM sent too many messages");
        return;
    }
    msg.id = tx->request_id;
    send_to_worker(h, tx->link_number, &msg);
    if (msg.style == AUTH_FRAME_PROMPT_ECHO_OFF || msg.style == AUTH_FRAME_PROMPT_ECHO_ON) {
        tx->awaiting_answer = 1;
        /* The worker cuts the client off at its own answer timeout and cancels. */
        tx->deadline_ms = event_loop_now_ms() + (AUTH_ANSWER_TIMEOUT_S + 30) * 1000u;
    }
}

static void expire(struct helper *h, uint64_t now_ms)
{
    for (size_t i = 0; i < h->transaction_count;) {
        struct transaction *tx = h->transactions[i];
        if (now_ms < tx->deadline_ms) {
            i++;
            continue;
        }
        if (tx->awaiting_answer) {
            finish(h, i, AUTH_RESULT_UNAVAILABLE, "no answer came in time");
        } else {
            const struct tunnel_config *t = gated_tunnel(h, tx->tunnel);
            char reason[160];
            snprintf(reason, sizeof(reason), "PAM did not finish within pam_timeout (%llus)",
                     (unsigned long long)(t != NULL ? t->pam_timeout : 0));
            log_warning("[%s] second factor: PAM login of \"%s\" hung; killed it", tx->tunnel,
                        tx->identity);
            finish(h, i, AUTH_RESULT_TIMEOUT, reason);
        }
    }
    for (size_t i = 0; i < h->alert_count; i++) {
        if (now_ms >= h->alerts[i].deadline_ms && h->alerts[i].deadline_ms != 0) {
            log_warning("alert_command (pid %d) still running after %ds; killed it",
                        (int)h->alerts[i].pid, ALERT_COMMAND_TIMEOUT_S);
            kill(-h->alerts[i].pid, SIGKILL);
            h->alerts[i].deadline_ms = 0;
        }
    }
    for (size_t i = 0; i < MAX_ADMIN_CONNECTIONS; i++) {
        if (h->admins[i].fd >= 0 && now_ms >= h->admins[i].deadline_ms) {
            close(h->admins[i].fd);
            h->admins[i].fd = -1;
        }
    }
}

static void reap_children(struct helper *h)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        for (size_t i = 0; i < h->alert_count; i++) {
            if (h->alerts[i].pid != pid)
                continue;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                log_warning("alert_command (pid %d) failed: %s %d", (int)pid,
                            WIFEXITED(status) ? "exit status" : "signal",
                            WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
            h->alerts[i] = h->alerts[--h->alert_count];
            break;
        }
        for (size_t i = 0; i < h->transaction_count; i++)
            if (h->transactions[i]->pid == pid)
                h->transactions[i]->pid = 0;
    }
}

/* ------------------------------------------------------------------ admin socket */

static void admin_reply(int fd, const char *status, const char *text)
{
    char reply[ADMIN_PROTOCOL_REPLY_MAX];
    int len = snprintf(reply, sizeof(reply), "%s\n%s", status, text);
    if (len < 0)
        return;
    if ((size_t)len >= sizeof(reply))
        len = sizeof(reply) - 1;
    ssize_t ignored = send(fd, reply, (size_t)len, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)ignored;
}

static void admin_request(struct helper *h, int fd)
{
    char request[LOCK_POLICY_KEY_MAX + 32];
    struct ucred cred;
    socklen_t cred_len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) < 0 ||
        (cred.uid != 0 && cred.uid != geteuid())) {
        admin_reply(fd, ADMIN_PROTOCOL_DENIED, "only root may change second-factor locks\n");
        return;
    }
    ssize_t got = recv(fd, request, sizeof(request) - 1, MSG_DONTWAIT);
    if (got <= 0)
        return;
    request[got] = '\0';
    request[strcspn(request, "\n")] = '\0';
    int64_t now = wall_now();
    size_t unlock_len = sizeof(ADMIN_PROTOCOL_UNLOCK) - 1;
    if (strncmp(request, ADMIN_PROTOCOL_UNLOCK, unlock_len) == 0 && request[unlock_len] != '\0') {
        const char *key = request + unlock_len;
        int lifted = lock_policy_unlock(h->lockout, key, now);
        char text[LOCK_POLICY_KEY_MAX + 200];
        if (lifted < 0) {
            snprintf(text, sizeof(text), "%s has no failed logins or locks on record\n", key);
            admin_reply(fd, ADMIN_PROTOCOL_UNKNOWN, text);
            return;
        }
        save_state(h);
        login_log_unlock(key, lifted);
        if (lifted > 0) {
            snprintf(text, sizeof(text), "unlocked %s (%d lock%s lifted, failure counts cleared)\n",
                     key, lifted, lifted == 1 ? "" : "s");
            admin_reply(fd, ADMIN_PROTOCOL_OK, text);
        } else {
            snprintf(text, sizeof(text), "%s was not locked (its failure counts were cleared)\n",
                     key);
            admin_reply(fd, ADMIN_PROTOCOL_NOT_LOCKED, text);
        }
    } else if (strcmp(request, ADMIN_PROTOCOL_LIST) == 0) {
        char text[ADMIN_PROTOCOL_REPLY_MAX - 64];
        unsigned locks = lock_policy_list(h->lockout, now, text, sizeof(text));
        admin_reply(fd, ADMIN_PROTOCOL_OK, locks > 0 ? text : "no locks\n");
    } else {
        admin_reply(fd, ADMIN_PROTOCOL_ERROR, "unknown request (use \"unlock KEY\" or \"list\")\n");
    }
}

static void accept_admin(struct helper *h)
{
    int fd = accept4(h->admin_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    for (size_t i = 0; i < MAX_ADMIN_CONNECTIONS; i++) {
        if (h->admins[i].fd < 0) {
            h->admins[i] = (struct admin_connection){ .fd = fd,
                                                      .deadline_ms = event_loop_now_ms() + ADMIN_TIMEOUT_MS };
            return;
        }
    }
    admin_reply(fd, ADMIN_PROTOCOL_ERROR, "busy\n");
    close(fd);
}

static void open_admin_socket(struct helper *h)
{
    const char *dir = h->config->global.runtime_dir;
    h->admin_fd = -1;
    if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
        log_warning("cannot create runtime_dir %s (%s): `ktlstun unlock` will edit the lock "
                    "state file directly", dir, strerror(errno));
        return;
    }
    if ((size_t)snprintf(h->admin_path, sizeof(h->admin_path), "%s/%s", dir,
                         ADMIN_PROTOCOL_SOCKET) >= sizeof(h->admin_path)) {
        log_warning("runtime_dir %s is too long for a socket path", dir);
        return;
    }
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    memcpy(addr.sun_path, h->admin_path, strlen(h->admin_path) + 1);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    unlink(h->admin_path);
    mode_t old_mask = umask(0077);
    int bound = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
    umask(old_mask);
    if (bound < 0 || listen(fd, 8) < 0) {
        log_warning("cannot listen on %s (%s): `ktlstun unlock` will edit the lock state file "
                    "directly", h->admin_path, strerror(errno));
        close(fd);
        return;
    }
    h->admin_fd = fd;
}

/* ------------------------------------------------------------------ helper loop */

static void receive_link(struct helper *h)
{
    char data[1];
    char control[CMSG_SPACE(sizeof(int))];
    struct iovec iov = { .iov_base = data, .iov_len = sizeof(data) };
    struct msghdr hdr = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                          .msg_controllen = sizeof(control) };
    ssize_t got = recvmsg(h->control_fd, &hdr, MSG_CMSG_CLOEXEC | MSG_DONTWAIT);
    if (got == 0) {
        h->stopping = 1;   /* the parent is gone */
        return;
    }
    if (got < 0)
        return;
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&hdr);
    if (cmsg == NULL || cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS)
        return;
    int fd;
    memcpy(&fd, CMSG_DATA(cmsg), sizeof(fd));
    if (h->link_count == MAX_LINKS) {
        log_error("second factor: too many worker links");
        close(fd);
        return;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    h->links[h->link_count++] = (struct link){ .fd = fd, .number = ++h->next_link_number };
}

static void reload_config(struct helper *h)
{
    char *errors = NULL;
    struct config *config = config_load(h->config_path, &errors);
    if (config == NULL) {
        log_error("second factor: kept the previous configuration (%s has errors)",
                  h->config_path);
        free(errors);
        return;
    }
    config_free(h->config);
    h->config = config;
}

static void on_signal(struct helper *h)
{
    struct signalfd_siginfo info;
    while (read(h->signal_fd, &info, sizeof(info)) == sizeof(info)) {
        if (info.ssi_signo == SIGHUP)
            reload_config(h);
        else if (info.ssi_signo == SIGCHLD)
            reap_children(h);
        else
            h->stopping = 1;
    }
}

static int poll_timeout(const struct helper *h)
{
    uint64_t now = event_loop_now_ms(), soonest = now + 60000;
    for (size_t i = 0; i < h->transaction_count; i++)
        if (h->transactions[i]->deadline_ms < soonest)
            soonest = h->transactions[i]->deadline_ms;
    for (size_t i = 0; i < h->alert_count; i++)
        if (h->alerts[i].deadline_ms != 0 && h->alerts[i].deadline_ms < soonest)
            soonest = h->alerts[i].deadline_ms;
    for (size_t i = 0; i < MAX_ADMIN_CONNECTIONS; i++)
        if (h->admins[i].fd >= 0 && h->admins[i].deadline_ms < soonest)
            soonest = h->admins[i].deadline_ms;
    return soonest <= now ? 0 : (int)(soonest - now);
}

enum watch_kind { WATCH_CONTROL, WATCH_SIGNAL, WATCH_ADMIN_LISTEN, WATCH_ADMIN, WATCH_LINK,
                  WATCH_CHILD };

struct watch {
    enum watch_kind kind;
    uint64_t key;            /* link number, transaction pid/fd, admin slot */
};

#define MAX_WATCHES (3 + MAX_ADMIN_CONNECTIONS + MAX_LINKS + MAX_TRANSACTIONS)

static void dispatch(struct helper *h, const struct watch *w, short revents)
{
    switch (w->kind) {
    case WATCH_CONTROL:
        receive_link(h);
        break;
    case WATCH_SIGNAL:
        on_signal(h);
        break;
    case WATCH_ADMIN_LISTEN:
        accept_admin(h);
        break;
    case WATCH_ADMIN: {
        struct admin_connection *admin = &h->admins[w->key];
        if (admin->fd >= 0) {
            if (revents & POLLIN)
                admin_request(h, admin->fd);
            close(admin->fd);
            admin->fd = -1;
        }
        break;
    }
    case WATCH_LINK:
        for (size_t i = 0; i < h->link_count; i++) {
            if (h->links[i].number == w->key) {
                if (read_link(h, i) < 0)
                    drop_link(h, i);
                break;
            }
        }
        break;
    case WATCH_CHILD:
        for (size_t i = 0; i < h->transaction_count; i++) {
            if ((uint64_t)h->transactions[i]->fd == w->key) {
                read_child(h, i);
                break;
            }
        }
        break;
    }
}

static int helper_loop(struct helper *h)
{
    static struct pollfd fds[MAX_WATCHES];
    static struct watch watches[MAX_WATCHES];
    while (!h->stopping) {
        size_t n = 0;
        fds[n] = (struct pollfd){ .fd = h->control_fd, .events = POLLIN };
        watches[n++] = (struct watch){ WATCH_CONTROL, 0 };
        fds[n] = (struct pollfd){ .fd = h->signal_fd, .events = POLLIN };
        watches[n++] = (struct watch){ WATCH_SIGNAL, 0 };
        if (h->admin_fd >= 0) {
            fds[n] = (struct pollfd){ .fd = h->admin_fd, .events = POLLIN };
            watches[n++] = (struct watch){ WATCH_ADMIN_LISTEN, 0 };
        }
        for (size_t i = 0; i < MAX_ADMIN_CONNECTIONS; i++) {
            if (h->admins[i].fd < 0)
                continue;
            fds[n] = (struct pollfd){ .fd = h->admins[i].fd, .events = POLLIN };
            watches[n++] = (struct watch){ WATCH_ADMIN, i };
        }
        for (size_t i = 0; i < h->link_count; i++) {
            fds[n] = (struct pollfd){ .fd = h->links[i].fd, .events = POLLIN };
            watches[n++] = (struct watch){ WATCH_LINK, h->links[i].number };
        }
        for (size_t i = 0; i < h->transaction_count; i++) {
            if (h->transactions[i]->fd < 0)
                continue;
            fds[n] = (struct pollfd){ .fd = h->transactions[i]->fd, .events = POLLIN };
            watches[n++] = (struct watch){ WATCH_CHILD, (uint64_t)h->transactions[i]->fd };
        }
        int ready = poll(fds, n, poll_timeout(h));
        if (ready < 0 && errno != EINTR) {
            log_error("second factor helper: poll: %s", strerror(errno));
            return EXIT_FAILURE;
        }
        for (size_t i = 0; ready > 0 && i < n && !h->stopping; i++)
            if (fds[i].revents != 0)
                dispatch(h, &watches[i], fds[i].revents);
        expire(h, event_loop_now_ms());
    }
    return EXIT_SUCCESS;
}

/* Listening sockets inherited from the parent (tunnel listeners, systemd's) must not
 * stay open here: a removed tunnel's port would stay bound. */
static void close_inherited_listeners(int keep)
{
    for (int fd = 3; fd < 4096; fd++) {
        if (fd == keep)
            continue;
        int listening = 0;
        socklen_t len = sizeof(listening);
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening)
            close(fd);
    }
}

static int helper_main(int control_fd, const char *config_path, const struct config *config,
                       struct grants *grants)
{
    int status = EXIT_FAILURE;
    char errors[600];
    struct helper *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return status;
    h->control_fd = control_fd;
    h->signal_fd = h->admin_fd = -1;
    h->grants = grants;
    for (size_t i = 0; i < MAX_ADMIN_CONNECTIONS; i++)
        h->admins[i].fd = -1;
    close_inherited_listeners(control_fd);

    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGHUP);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGQUIT);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, NULL);
    h->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    h->config_path = strdup(config_path);
    /* After fork the parent's configuration is this process's own copy: the helper
     * owns it from here and frees it when a reload replaces it. */
    h->config = (struct config *)config;
    h->lockout = lock_policy_create();
    if (h->signal_fd < 0 || h->config_path == NULL || h->config == NULL || h->lockout == NULL ||
        RAND_bytes(h->salt, sizeof(h->salt)) != 1) {
        log_error("second factor helper: cannot start (%s)",
                  h->config == NULL ? "configuration did not load" : "out of resources");
        goto out;
    }
    const char *state_dir = h->config->global.state_dir;
    if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
        log_error("cannot create state_dir %s: %s", state_dir, strerror(errno));
    snprintf(h->state_path, sizeof(h->state_path), "%s/%s", state_dir, ADMIN_PROTOCOL_STATE_FILE);
    int skipped = lock_state_load(h->lockout, h->state_path, errors, sizeof(errors));
    if (skipped < 0)
        log_error("second factor: starting without the saved locks: %s", errors);
    else if (skipped > 0)
        log_warning("second factor: %s", errors);
    open_admin_socket(h);
    status = helper_loop(h);
out:
    for (size_t i = h->transaction_count; i > 0; i--)
        close_transaction(h, i - 1);
    for (size_t i = 0; i < h->link_count; i++)
        close(h->links[i].fd);
    for (size_t i = 0; i < MAX_ADMIN_CONNECTIONS; i++)
        if (h->admins[i].fd >= 0)
            close(h->admins[i].fd);
    if (h->admin_fd >= 0) {
        close(h->admin_fd);
        unlink(h->admin_path);
    }
    if (h->signal_fd >= 0)
        close(h->signal_fd);
    lock_policy_free(h->lockout);
    config_free(h->config);
    free(h->config_path);
    OPENSSL_cleanse(h->salt, sizeof(h->salt));
    free(h);
    return status;
}

/* ------------------------------------------------------------------ parent side */

struct pam_helper {
    pid_t pid;
    int control_fd;
    char *config_path;
    struct grants *grants;
    uint64_t restart_window_start_ms;
    unsigned restarts_in_window;
};

static int fork_helper(struct pam_helper *helper, const struct config *config)
{
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
        log_error("second factor helper: socketpair: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        log_error("second factor helper: fork: %s", strerror(errno));
        close(pair[0]);
        close(pair[1]);
        return -1;
    }
    if (pid == 0) {
        close(pair[0]);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        prctl(PR_SET_NAME, "ktlstund-pam");
        _exit(helper_main(pair[1], helper->config_path, config, helper->grants));
    }
    close(pair[1]);
    helper->pid = pid;
    helper->control_fd = pair[0];
    return 0;
}

struct pam_helper *pam_helper_start(const char *config_path, const struct config *config,
                                    struct grants *grants)
{
    struct pam_helper *helper = calloc(1, sizeof(*helper));
    if (helper == NULL || (helper->config_path = strdup(config_path)) == NULL) {
        log_error("out of memory");
        free(helper);
        return NULL;
    }
    helper->control_fd = -1;
    helper->grants = grants;
    if (fork_helper(helper, config) < 0) {
        free(helper->config_path);
        free(helper);
        return NULL;
    }
    return helper;
}

int pam_helper_new_link(struct pam_helper *helper)
{
    if (helper == NULL || helper->pid <= 0)
        return -1;
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
        log_error("second factor: socketpair: %s", strerror(errno));
        return -1;
    }
    int size = LINK_BUFFER_BYTES;
    for (int i = 0; i < 2; i++)
        setsockopt(pair[i], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    char data[1] = { 'L' };
    char control[CMSG_SPACE(sizeof(int))];
    memset(control, 0, sizeof(control));
    struct iovec iov = { .iov_base = data, .iov_len = sizeof(data) };
    struct msghdr hdr = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                          .msg_controllen = sizeof(control) };
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&hdr);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &pair[1], sizeof(int));
    ssize_t sent = sendmsg(helper->control_fd, &hdr, MSG_NOSIGNAL | MSG_DONTWAIT);
    close(pair[1]);
    if (sent != (ssize_t)sizeof(data)) {
        log_error("second factor: cannot hand a worker link to the helper: %s",
                  sent < 0 ? strerror(errno) : "short write");
        close(pair[0]);
        return -1;
    }
    fcntl(pair[0], F_SETFL, O_NONBLOCK);
    return pair[0];
}

void pam_helper_close_in_child(struct pam_helper *helper)
{
    if (helper != NULL && helper->control_fd >= 0) {
        close(helper->control_fd);
        helper->control_fd = -1;
    }
}

void pam_helper_reload(struct pam_helper *helper)
{
    if (helper != NULL && helper->pid > 0)
        kill(helper->pid, SIGHUP);
}

int pam_helper_running(const struct pam_helper *helper)
{
    return helper != NULL && helper->pid > 0;
}

int pam_helper_reaped(struct pam_helper *helper, pid_t pid, int status,
                      const struct config *config)
{
    if (helper == NULL || helper->pid != pid || pid <= 0)
        return 0;
    helper->pid = 0;
    if (helper->control_fd >= 0) {
        close(helper->control_fd);
        helper->control_fd = -1;
    }
    if (config == NULL)
        return 1;   /* the daemon is stopping: no new helper */
    if (WIFSIGNALED(status))
        log_error("second factor helper %d killed by signal %d", (int)pid, WTERMSIG(status));
    else
        log_error("second factor helper %d exited with status %d", (int)pid, WEXITSTATUS(status));
    uint64_t now = event_loop_now_ms();
    if (now - helper->restart_window_start_ms > RESTART_WINDOW_MS) {
        helper->restart_window_start_ms = now;
        helper->restarts_in_window = 0;
    }
    if (++helper->restarts_in_window > RESTART_BURST) {
        log_error("second factor helper keeps dying: logins stay unavailable until the next "
                  "restart of ktlstund");
        return 1;
    }
    if (fork_helper(helper, config) == 0)
        log_notice("second factor helper restarted (pid %d)", (int)helper->pid);
    return 1;
}

void pam_helper_stop(struct pam_helper *helper)
{
    if (helper == NULL)
        return;
    if (helper->pid > 0) {
        kill(helper->pid, SIGTERM);
        int status;
        uint64_t deadline = event_loop_now_ms() + STOP_GRACE_MS;
        while (waitpid(helper->pid, &status, WNOHANG) == 0) {
            if (event_loop_now_ms() >= deadline) {
                kill(helper->pid, SIGKILL);
                waitpid(helper->pid, &status, 0);
                break;
            }
            usleep(10000);
        }
    }
    if (helper->control_fd >= 0)
        close(helper->control_fd);
    free(helper->config_path);
    free(helper);
}
