#include "worker/access_recheck.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/second_factor.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/text.h"
#include "core/utc_time.h"
#include "ktls/tls_record.h"
#include "tls/access_rules.h"

struct access_recheck {
    struct event_source link_events;
    int link;
    struct conn_host *host;
    struct access_rules *rules;   /* the newest configuration's; NULL: the worker's own is */
    int unreadable;               /* newer rules were announced but could not be read */
    uint64_t withdrawals_seen;    /* second_factor_grant_withdrawals() at the last sweep */
    int grants_withdrawn;         /* it moved since the sweep before */
    uint64_t now_ms;
};

__attribute__((format(printf, 4, 5)))
static int end_with(struct conn_ending *ending, enum stats_result result, unsigned char alert,
                    const char *fmt, ...)
{
    va_list args;
    va_start(args, fmt);
    vsnprintf(ending->reason, sizeof(ending->reason), fmt, args);
    va_end(args);
    ending->result = result;
    ending->alert = alert;
    return 1;
}

/* "3s", "1h30m", "1d": a duration as the configuration writes it. */
static const char *format_duration(uint64_t seconds, char *buf, size_t len)
{
    static const struct { uint64_t seconds; char unit; } units[] = {
        { 86400, 'd' }, { 3600, 'h' }, { 60, 'm' }, { 1, 's' },
    };
    size_t pos = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]) && pos + 1 < len; i++) {
        uint64_t count = seconds / units[i].seconds;
        seconds %= units[i].seconds;
        if (count == 0 && !(units[i].seconds == 1 && pos == 0))
            continue;
        int n = snprintf(buf + pos, len - pos, "%llu%c", (unsigned long long)count, units[i].unit);
        if (n < 0)
            break;
        pos += (size_t)n < len - pos ? (size_t)n : len - pos - 1;
    }
    return buf;
}

/* The connection against the newest rules: the tunnel still there, the chain, the
 * allow rules and pins. Returns 1 to end it (ENDING filled). */
static int withdrawn_by_rules(const struct access_recheck *ar, const struct conn_view *v,
                              struct conn_ending *ending)
{
    char when[32], why[600];
    const struct tunnel_config *own = v->tunnel->config;
    X509_STORE *store = NULL;
    const struct tunnel_config *t = access_rules_tunnel(ar->rules, own->name, &store);
    utc_time_format(access_rules_loaded_at(ar->rules), when, sizeof(when));
    if (t == NULL || t->mode != own->mode)
        return end_with(ending, STATS_RESULT_WITHDRAWN, TLS_ALERT_ACCESS_DENIED,
                        "access withdrawn: tunnel %s is no longer in the configuration reloaded "
                        "at %s%s", own->name, when, t == NULL ? "" : " (its mode changed)");
    int error;
    if (tls_context_recheck_peer(store, t, v->peer, &error, why, sizeof(why)))
        return 0;
    if (error == X509_V_ERR_CERT_REVOKED)
        /* verify_reason's fixed phrasing: "revoked (CRL FILE) (SUBJECT)". */
        return end_with(ending, STATS_RESULT_WITHDRAWN, TLS_ALERT_CERTIFICATE_REVOKED,
                        "access withdrawn: certificate revoked by the CRL reloaded at %s %s", when,
                        strncmp(why, "revoked ", 8) == 0 ? why + 8 : why);
    if (error != X509_V_OK)
        return end_with(ending, STATS_RESULT_WITHDRAWN,
                        error == X509_V_ERR_CERT_HAS_EXPIRED ? TLS_ALERT_CERTIFICATE_EXPIRED
                                                             : TLS_ALERT_CERTIFICATE_UNKNOWN,
                        "access withdrawn: certificate no longer verifies against the "
                        "configuration reloaded at %s: %s", when, why);
    return end_with(ending, STATS_RESULT_WITHDRAWN, TLS_ALERT_ACCESS_DENIED,
                    "access withdrawn: certificate no longer matches the allow rules reloaded at "
                    "%s: %s", when, why);
}

static int sweep_verdict(void *arg, const struct conn_view *v, struct conn_ending *ending)
{
    const struct access_recheck *ar = arg;
    const struct tunnel_config *t = v->tunnel->config;
    if (ar->unreadable)
        return end_with(ending, STATS_RESULT_WITHDRAWN, TLS_ALERT_ACCESS_DENIED,
                        "access withdrawn: the reloaded configuration could not be read to check "
                        "this connection again");
    if (ar->rules != NULL) {
        unsigned generation = access_rules_generation(ar->rules);
        if (v->access->rules_checked != generation) {
            v->access->rules_checked = generation;
            if (withdrawn_by_rules(ar, v, ending))
                return 1;
        }
        t = access_rules_tunnel(ar->rules, t->name, NULL);
        if (t == NULL)
            return 0;   /* not reached: withdrawn_by_rules ended it */
    }
    if (t->max_connection_lifetime > 0 &&
        ar->now_ms - v->started_ms >= t->max_connection_lifetime * 1000u) {
        char shown[32];
        return end_with(ending, STATS_RESULT_MAX_LIFETIME, TLS_ALERT_ACCESS_DENIED,
                        "max_connection_lifetime (%s) reached",
                        format_duration(t->max_connection_lifetime, shown, sizeof(shown)));
    }
    /* The grants table is read again only after a withdrawal or when the grant known
     * to admit the connection runs out. */
    if (!v->login && t->mode == TUNNEL_MODE_SERVER && t->second_factor == SECOND_FACTOR_PAM &&
        (ar->grants_withdrawn || ar->now_ms >= v->access->grant_until_ms)) {
        char source[LIMIT_SOURCE_ADDRESS + 1], why[400];
        second_factor_peer_address(v->tls_fd, source, sizeof(source));
        if (!second_factor_grant_holds(t, v->peer->identity, source, ar->now_ms,
                                       &v->access->grant_until_ms, why, sizeof(why)))
            return end_with(ending, STATS_RESULT_WITHDRAWN, TLS_ALERT_ACCESS_DENIED,
                            "access withdrawn: %s", why);
    }
    return 0;
}

static void check_all(struct access_recheck *ar, uint64_t now_ms)
{
    uint64_t withdrawals = second_factor_grant_withdrawals();
    ar->grants_withdrawn = withdrawals != ar->withdrawals_seen;
    ar->withdrawals_seen = withdrawals;
    ar->now_ms = now_ms;
    conn_withdraw(ar->host, sweep_verdict, ar);
}

/* Replaces the rules with those in the memfd FD (closed here; -1: none came). */
static void take_rules(struct access_recheck *ar, int fd)
{
    struct access_rules *rules = NULL;
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size > 0) {
        void *text = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (text != MAP_FAILED) {
            rules = access_rules_read(text, (size_t)st.st_size);
            munmap(text, (size_t)st.st_size);
        }
    }
    if (fd >= 0)
        close(fd);
    if (rules == NULL)
        log_error("worker: the rules of the reloaded configuration could not be read; ending "
                  "this worker's connections, as they cannot be checked against them");
    access_rules_free(ar->rules);
    ar->rules = rules;
    ar->unreadable = rules == NULL;
}

/* One datagram from the parent: returns its length (0: the parent is gone) or -1 with
 * errno, and the memfd it carried in *FD (-1 when none). */
static ssize_t receive(int link, int *fd)
{
    char byte;
    union { char bytes[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.bytes,
                          .msg_controllen = sizeof(control.bytes) };
    *fd = -1;
    ssize_t n = recvmsg(link, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    for (struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL; c != NULL; c = CMSG_NXTHDR(&msg, c))
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
            c->cmsg_len == CMSG_LEN(sizeof(int)))
            memcpy(fd, CMSG_DATA(c), sizeof(int));
    return n;
}

static void on_link_event(struct event_source *source, uint32_t events)
{
    struct access_recheck *ar = (struct access_recheck *)((char *)source -
                                                          offsetof(struct access_recheck, link_events));
    int got = 0;
    (void)events;
    for (;;) {
        int fd;
        ssize_t n = receive(ar->link, &fd);
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            break;
        if (n <= 0) {
            /* The parent is gone; its death signal ends this worker. */
            event_loop_unwatch(ar->host->loop, ar->link);
            close(ar->link);
            ar->link = -1;
            break;
        }
        take_rules(ar, fd);
        got = 1;
    }
    if (got)
        check_all(ar, event_loop_now_ms());
}

struct access_recheck *access_recheck_create(struct conn_host *host, int link)
{
    struct access_recheck *ar = calloc(1, sizeof(*ar));
    if (ar == NULL) {
        log_error("worker: out of memory");
        if (link >= 0)
            close(link);
        return NULL;
    }
    ar->host = host;
    ar->link = link;
    ar->link_events.handle = on_link_event;
    ar->withdrawals_seen = second_factor_grant_withdrawals();
    if (link >= 0 && event_loop_watch(host->loop, link, EPOLLIN, 1, &ar->link_events) < 0) {
        close(link);
        ar->link = -1;
    }
    return ar;
}

void access_recheck_free(struct access_recheck *ar)
{
    if (ar == NULL)
        return;
    if (ar->link >= 0)
        close(ar->link);
    access_rules_free(ar->rules);
    free(ar);
}

void access_recheck_sweep(struct access_recheck *ar, uint64_t now_ms)
{
    check_all(ar, now_ms);
}

struct disconnect_key {
    const char *key;
    char sha256[LIMIT_SHA256_HEX + 1];   /* KEY as a fingerprint, or "" */
};

/* Returns 1 when ADDRESS ("1.2.3.4:5", "[::1]:5", "unix:/p") is KEY, with or
 * without its port (an IPv4 client of a dual-stack socket also as IPv4). */
static int address_is(const char *address, const char *key)
{
    char host[80];
    if (strcmp(address, key) == 0)
        return 1;
    const char *colon = strrchr(address, ':');
    if (colon == NULL || colon == address || (size_t)(colon - address) >= sizeof(host) ||
        strncmp(address, "unix:", 5) == 0)
        return 0;
    size_t skip = address[0] == '[' ? 1 : 0;
    size_t len = (size_t)(colon - address) - skip - (skip && colon[-1] == ']' ? 1 : 0);
    memcpy(host, address + skip, len);
    host[len] = '\0';
    return strcmp(host, key) == 0 ||
           (strncmp(host, "::ffff:", 7) == 0 && strcmp(host + 7, key) == 0);
}

static int disconnect_verdict(void *arg, const struct conn_view *v, struct conn_ending *ending)
{
    const struct disconnect_key *k = arg;
    const struct identity *id = v->peer->identity;
    if ((id->cn != NULL && strcmp(id->cn, k->key) == 0) || strcmp(id->subject, k->key) == 0 ||
        (k->sha256[0] != '\0' && strcmp(id->sha256, k->sha256) == 0) ||
        address_is(v->peer_address, k->key))
        return end_with(ending, STATS_RESULT_WITHDRAWN, TLS_ALERT_ACCESS_DENIED,
                        "access withdrawn: disconnected by an administrator");
    return 0;
}

unsigned access_recheck_disconnect(struct access_recheck *ar, const char *key)
{
    struct disconnect_key k = { .key = key };
    unsigned char digest[LIMIT_SHA256_HEX / 2];
    if (text_hex_decode_fingerprint(key, digest, sizeof(digest)) == 0)
        text_hex_encode(digest, sizeof(digest), k.sha256);
    unsigned ended = conn_withdraw(ar->host, disconnect_verdict, &k);
    char quoted[LIMIT_IDENTITY + 64];
    if (ended > 0)
        log_notice("worker: `ktlstun disconnect \"%s\"` ended %u connection%s",
                   text_log_quote(key, quoted, sizeof(quoted)), ended, ended == 1 ? "" : "s");
    return ended;
}
