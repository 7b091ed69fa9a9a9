#include "helper/login_counting.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/event_loop.h"
#include "core/log.h"
#include "core/utc_time.h"
#include "helper/alert.h"
#include "helper/lock_policy.h"
#include "proto/login_log.h"

struct login_counting {
    struct lock_table *locks;
    struct grants *grants;
    struct alert_commands *alerts;
    struct fleet_link *fleet;
};

/* One key of an attempt, for the checks made on all three alike. */
struct key {
    enum lock_policy_kind kind;
    const char *name;
    const char *refusal;      /* what the client is told when it is locked */
    const char *what;         /* what the log says is locked */
};

struct login_counting *login_counting_create(struct lock_table *locks, struct grants *grants,
                                             struct alert_commands *alerts)
{
    struct login_counting *counting = calloc(1, sizeof(*counting));
    if (counting == NULL)
        return NULL;
    counting->locks = locks;
    counting->grants = grants;
    counting->alerts = alerts;
    return counting;
}

void login_counting_use_fleet(struct login_counting *counting, struct fleet_link *fleet)
{
    counting->fleet = fleet;
}

void login_counting_free(struct login_counting *counting)
{
    free(counting);
}

static void keys_of(const struct login_counting_attempt *attempt, struct key keys[3])
{
    keys[0] = (struct key){ LOCK_POLICY_IDENTITY, attempt->identity,
                            "too many failed attempts for this identity", "identity" };
    keys[1] = (struct key){ LOCK_POLICY_USER, attempt->user,
                            "too many failed attempts for this user", "user" };
    keys[2] = (struct key){ LOCK_POLICY_SOURCE, attempt->source,
                            "too many failed attempts from this address", "source address" };
}

static struct lock_policy_rules identity_rules(const struct tunnel_config *t)
{
    return (struct lock_policy_rules){ .window = t->failure_window,
                                       .max_failures = (unsigned)t->max_failures,
                                       .lockout = t->lockout };
}

/* A user or an address is locked only by failures of two identities or more: one
 * certificate's typos (or one brute-forced identity, which its own lock stops) must not
 * lock out everyone behind the same NAT, nor the user's other devices. */
static struct lock_policy_rules shared_rules(const struct tunnel_config *t)
{
    struct lock_policy_rules rules = identity_rules(t);
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

static void set_reply(struct login_counting_reply *reply, enum auth_result result, int64_t value,
                      unsigned failures, const char *text)
{
    reply->result = result;
    reply->value = value;
    reply->failures = failures;
    snprintf(reply->text, sizeof(reply->text), "%s", text);
}

static void raise_alert(struct login_counting *counting, const struct tunnel_config *t,
                        const struct alert_event *event)
{
    alert_log(event);
    alert_commands_start(counting->alerts, t->name, &t->alert_command, event);
}

/* Returns the index of ATTEMPT's key locked at NOW whose lock ends last, or -1. */
static int locked_key(struct lock_policy *locks, const char *tunnel, const struct key keys[3],
                      int64_t now, int64_t *until)
{
    int which = -1;
    *until = 0;
    for (int i = 0; i < 3; i++) {
        int64_t end = lock_policy_locked_until(locks, tunnel, keys[i].kind, keys[i].name, now);
        if (end > *until) {
            *until = end;
            which = i;
        }
    }
    return which;
}

static int release(struct lock_policy *locks, const char *tunnel,
                   struct login_counting_attempt *attempt)
{
    int changed = lock_policy_release(locks, tunnel, LOCK_POLICY_IDENTITY, attempt->identity,
                                      attempt->identity_serial);
    changed |= lock_policy_release(locks, tunnel, LOCK_POLICY_USER, attempt->user,
                                   attempt->user_serial);
    attempt->identity_serial = attempt->user_serial = attempt->source_serial = 0;
    return changed;
}

static void refuse_uncountable(const struct config *config, const struct tunnel_config *t,
                               const struct login_counting_attempt *attempt,
                               enum lock_policy_reservation why, const struct key *key,
                               struct login_counting_reply *reply)
{
    if (why == LOCK_POLICY_BUSY) {
        char text[120];
        snprintf(text, sizeof(text), "another login for this %s is in progress", key->what);
        login_log_failure(t->name, attempt->identity, attempt->user, attempt->source, 0,
                          (unsigned)t->max_failures, text);
        set_reply(reply, AUTH_RESULT_UNAVAILABLE, 0, 0, text);
        return;
    }
    log_error("[%s] second factor: the lock table is full (lock_table_size = %u, half of it for "
              "identities and users); the login of \"%s\" as %s was refused, since its failures "
              "could not be counted", t->name, config->global.lock_table_size, attempt->identity,
              attempt->user);
    login_log_failure(t->name, attempt->identity, attempt->user, attempt->source, 0,
                      (unsigned)t->max_failures, "failures cannot be counted: the lock table is full");
    set_reply(reply, AUTH_RESULT_UNAVAILABLE, 0, 0,
              "the server cannot count failed logins now; try again later");
}

int login_counting_start(struct login_counting *counting, const struct config *config,
                         const struct tunnel_config *t, struct login_counting_attempt *attempt,
                         struct login_counting_reply *reply)
{
    struct lock_policy *locks = lock_table_policy(counting->locks);
    int64_t now = utc_time_now(), until;
    struct key keys[3];
    keys_of(attempt, keys);
    memset(reply, 0, sizeof(*reply));
    int locked = locked_key(locks, t->name, keys, now, &until);
    if (locked >= 0) {
        char reason[200], when[32];
        snprintf(reason, sizeof(reason), "%s locked until %s, PAM not asked", keys[locked].what,
                 utc_time_format(until, when, sizeof(when)));
        login_log_failure(t->name, attempt->identity, attempt->user, attempt->source, 0,
                          (unsigned)t->max_failures, reason);
        set_reply(reply, AUTH_RESULT_LOCKED, until, 0, keys[locked].refusal);
        return -1;
    }
    struct lock_policy_rules by_identity = identity_rules(t), by_user = shared_rules(t);
    uint64_t tag = lock_policy_tag(attempt->identity);
    enum lock_policy_reservation got =
        lock_policy_reserve(locks, &by_identity, t->name, LOCK_POLICY_IDENTITY, attempt->identity,
                            0, now, &attempt->identity_serial, &until);
    const struct key *refused = &keys[0];
    if (got == LOCK_POLICY_RESERVED) {
        got = lock_policy_reserve(locks, &by_user, t->name, LOCK_POLICY_USER, attempt->user, tag,
                                  now, &attempt->user_serial, &until);
        refused = &keys[1];
    }
    if (got != LOCK_POLICY_RESERVED) {
        release(locks, t->name, attempt);
        if (got == LOCK_POLICY_LOCKED)
            set_reply(reply, AUTH_RESULT_LOCKED, until, 0, refused->refusal);
        else
            refuse_uncountable(config, t, attempt, got, refused, reply);
        return -1;
    }
    attempt->source_serial = lock_policy_serial(locks);
    lock_table_save(counting->locks, config);
    return 0;
}

/* The kind of alert for the first key that VERDICTS say locked now, or -1. */
static int first_locked_now(const struct lock_policy_verdict verdicts[3])
{
    for (int i = 0; i < 3; i++)
        if (verdicts[i].locked_now)
            return i;
    return -1;
}

static void alert_lock(struct login_counting *counting, const struct tunnel_config *t,
                       const struct login_counting_attempt *attempt, int which,
                       const struct lock_policy_verdict *v)
{
    static const enum alert_kind kinds[3] = { ALERT_IDENTITY_LOCKED, ALERT_USER_LOCKED,
                                              ALERT_SOURCE_LOCKED };
    struct alert_event event = {
        .kind = kinds[which], .tunnel = t->name, .identity = attempt->identity,
        .user = attempt->user, .source = attempt->source, .failures = v->failures,
        .level = v->level, .until = v->locked_until,
    };
    if (which < 2) {
        unsigned revoked = grants_revoke_identity(counting->grants, t->name, attempt->identity,
                                                  event_loop_now_ms());
        if (revoked > 0)
            log_notice("[%s] withdrew %u grant(s) of locked identity \"%s\"", t->name, revoked,
                       attempt->identity);
        fleet_link_publish_revoke(counting->fleet, t->name, attempt->identity);
    }
    /* With a shared state store, the store tells whether another gateway locked the
     * same key at the same moment and raised its alert already. */
    if (!fleet_link_claim_alert(counting->fleet, &event))
        raise_alert(counting, t, &event);
}

void login_counting_failure(struct login_counting *counting, const struct config *config,
                            const struct tunnel_config *t, struct login_counting_attempt *attempt,
                            enum auth_result outcome, const char *reason,
                            const unsigned char *hash, struct login_counting_reply *reply)
{
    struct lock_policy *locks = lock_table_policy(counting->locks);
    unsigned char by_source_digest[LOCK_POLICY_HASH_LEN];
    if (hash != NULL)
        source_hash(hash, attempt->identity, by_source_digest);
    struct lock_policy_rules rules = identity_rules(t), shared = shared_rules(t);
    struct lock_policy_verdict v[3];
    uint64_t tag = lock_policy_tag(attempt->identity);
    int64_t now = utc_time_now();
    /* The user's "same answers" test is the identity's: every certificate of the user
     * guesses the one secret, so the same code from two of them is one guess. */
    int ok_identity = lock_policy_settle_failure(locks, &rules, t->name, LOCK_POLICY_IDENTITY,
                                                 attempt->identity, attempt->identity_serial,
                                                 hash, 0, now, &v[0]) == 0;
    int ok = ok_identity;
    ok &= lock_policy_settle_failure(locks, &shared, t->name, LOCK_POLICY_USER, attempt->user,
                                     attempt->user_serial, hash, tag, now, &v[1]) == 0;
    ok &= lock_policy_settle_failure(locks, &shared, t->name, LOCK_POLICY_SOURCE, attempt->source,
                                     0, hash != NULL ? by_source_digest : NULL, tag, now,
                                     &v[2]) == 0;
    OPENSSL_cleanse(by_source_digest, sizeof(by_source_digest));
    attempt->identity_serial = attempt->user_serial = attempt->source_serial = 0;
    if (!ok)
        log_error("[%s] second factor: a failure of \"%s\" could not be counted in full (the "
                  "lock table is full)", t->name, attempt->identity);
    struct key keys[3];
    keys_of(attempt, keys);
    int64_t until;
    int which = first_locked_now(v);
    int already = which < 0 ? locked_key(locks, t->name, keys, now, &until) : -1;
    char why[400];
    snprintf(why, sizeof(why), "%s%s", reason,
             already >= 0 ? " (locked meanwhile by another attempt)"
             : ok_identity && !v[0].counted ? " (same answer as before, not counted again)"
                                                       : "");
    login_log_failure(t->name, attempt->identity, attempt->user, attempt->source,
                      v[0].counted ? v[0].failures : 0, rules.max_failures, why);
    lock_table_save(counting->locks, config);
    uint32_t counted = (v[0].counted ? STORE_COUNTED_IDENTITY : 0) |
                       (v[1].counted ? STORE_COUNTED_USER : 0) |
                       (v[2].counted ? STORE_COUNTED_SOURCE : 0);
    if (counted != 0)
        fleet_link_publish_failure(counting->fleet, t->name, attempt->identity, attempt->user,
                                   attempt->source, tag, counted);
    if (which >= 0) {
        /* One lock event, one alert, even when several counts reached the limit at once. */
        alert_lock(counting, t, attempt, which, &v[which]);
        int64_t last = 0;
        for (int i = 0; i < 3; i++)
            if (v[i].locked_until > last)
                last = v[i].locked_until;
        set_reply(reply, AUTH_RESULT_LOCKED, last, v[which].failures, "too many failed attempts");
        return;
    }
    if (already >= 0) {
        set_reply(reply, AUTH_RESULT_LOCKED, until, 0, keys[already].refusal);
        return;
    }
    unsigned left = v[0].failures < rules.max_failures ? rules.max_failures - v[0].failures : 0;
    set_reply(reply, outcome, 0, left, reason);
}

int login_counting_success(struct login_counting *counting, const struct config *config,
                           const struct tunnel_config *t, struct login_counting_attempt *attempt,
                           struct login_counting_reply *reply)
{
    struct lock_policy *locks = lock_table_policy(counting->locks);
    int64_t now = utc_time_now(), until;
    struct key keys[3];
    keys_of(attempt, keys);
    memset(reply, 0, sizeof(*reply));
    int locked = locked_key(locks, t->name, keys, now, &until);
    if (locked >= 0) {
        char reason[200];
        snprintf(reason, sizeof(reason), "right code, but the %s was locked while the attempt "
                 "ran", keys[locked].what);
        release(locks, t->name, attempt);
        lock_table_save(counting->locks, config);
        login_log_failure(t->name, attempt->identity, attempt->user, attempt->source, 0,
                          (unsigned)t->max_failures, reason);
        set_reply(reply, AUTH_RESULT_LOCKED, until, 0, keys[locked].refusal);
        return -1;
    }
    int changed = lock_policy_record_success(locks, t->name, LOCK_POLICY_IDENTITY,
                                             attempt->identity, attempt->identity_serial, now);
    changed |= lock_policy_record_success(locks, t->name, LOCK_POLICY_USER, attempt->user,
                                          attempt->user_serial, now);
    changed |= lock_policy_record_success(locks, t->name, LOCK_POLICY_SOURCE, attempt->source,
                                          attempt->source_serial, now);
    attempt->identity_serial = attempt->user_serial = attempt->source_serial = 0;
    if (changed)
        lock_table_save(counting->locks, config);
    fleet_link_publish_success(counting->fleet, t->name, attempt->identity, attempt->user,
                               attempt->source);
    return 0;
}

/* Another gateway's failure counts here as its own did there: the same keys, tags and
 * time, no answers to compare (it compared them). A lock it makes here raises no alert:
 * the gateway where the attempt ran raised it. */
static void apply_remote_failure(struct login_counting *counting, const struct tunnel_config *t,
                                 const struct store_event *e)
{
    struct lock_policy *locks = lock_table_policy(counting->locks);
    struct lock_policy_rules rules = identity_rules(t), shared = shared_rules(t);
    struct lock_policy_verdict v;
    int ok = 1;
    if (e->counted & STORE_COUNTED_IDENTITY) {
        ok &= lock_policy_record_failure(locks, &rules, t->name, LOCK_POLICY_IDENTITY,
                                         e->identity, NULL, 0, e->at, &v) == 0;
        if (ok && v.locked_now && !fleet_link_replaying(counting->fleet))
            grants_revoke_identity(counting->grants, t->name, e->identity, event_loop_now_ms());
    }
    if (e->counted & STORE_COUNTED_USER) {
        ok &= lock_policy_record_failure(locks, &shared, t->name, LOCK_POLICY_USER, e->username,
                                         NULL, e->tag, e->at, &v) == 0;
        if (ok && v.locked_now && !fleet_link_replaying(counting->fleet))
            grants_revoke_identity(counting->grants, t->name, e->identity, event_loop_now_ms());
    }
    if (e->counted & STORE_COUNTED_SOURCE)
        ok &= lock_policy_record_failure(locks, &shared, t->name, LOCK_POLICY_SOURCE, e->source,
                                         NULL, e->tag, e->at, &v) == 0;
    if (!ok)
        log_error("[%s] second factor: a failure of \"%s\" through gateway %s could not be "
                  "counted in full (the lock table is full)", t->name, e->identity, e->gateway);
}

void login_counting_apply_remote(struct login_counting *counting, const struct config *config,
                                 const struct store_event *event)
{
    const struct tunnel_config *t = NULL;
    for (size_t i = 0; i < config->tunnel_count && t == NULL; i++)
        if (strcmp(config->tunnels[i].name, event->tunnel) == 0)
            t = &config->tunnels[i];
    if (t == NULL)
        return;   /* a tunnel this gateway does not serve */
    struct lock_policy *locks = lock_table_policy(counting->locks);
    if (event->kind == STORE_EVENT_FAILURE) {
        apply_remote_failure(counting, t, event);
    } else if (event->kind == STORE_EVENT_SUCCESS) {
        uint64_t serial = lock_policy_serial(locks);
        lock_policy_record_success(locks, t->name, LOCK_POLICY_IDENTITY, event->identity, serial,
                                   event->at);
        lock_policy_record_success(locks, t->name, LOCK_POLICY_USER, event->username, serial,
                                   event->at);
        lock_policy_record_success(locks, t->name, LOCK_POLICY_SOURCE, event->source, serial,
                                   event->at);
    }
}

void login_counting_release(struct login_counting *counting, const struct config *config,
                            const char *tunnel, struct login_counting_attempt *attempt)
{
    if (release(lock_table_policy(counting->locks), tunnel, attempt))
        lock_table_save(counting->locks, config);
}

void login_counting_handshake_failure(struct login_counting *counting,
                                      const struct config *config,
                                      const struct tunnel_config *t, const char *source)
{
    struct lock_policy_rules rules = { .window = t->failure_window,
                                       .max_failures = (unsigned)t->max_handshake_failures,
                                       .lockout = t->lockout };
    struct lock_policy_verdict verdict;
    if (lock_policy_record_failure(lock_table_policy(counting->locks), &rules, t->name,
                                   LOCK_POLICY_HANDSHAKE, source, NULL, 0, utc_time_now(),
                                   &verdict) < 0) {
        log_error("[%s] second factor: a refused handshake from %s could not be counted",
                  t->name, source);
        return;
    }
    if (!verdict.locked_now)
        return;
    struct alert_event event = {
        .kind = ALERT_HANDSHAKE_FAILURES, .tunnel = t->name, .identity = "", .user = "",
        .source = source, .failures = verdict.failures, .level = verdict.level,
        .until = verdict.locked_until,
    };
    raise_alert(counting, t, &event);
    lock_table_save(counting->locks, config);
}
