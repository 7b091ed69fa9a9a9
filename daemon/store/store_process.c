#include "store/store_process.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/event_loop.h"
#include "core/log.h"
#include "core/utc_time.h"
#include "core/version.h"
#include "store/store_connect.h"
#include "store/store_events.h"
#include "store/store_leases.h"
#include "store/store_msg.h"
#include "store/store_schema.h"

#define RETRY_FIRST_MS 500
#define RETRY_MAX_MS 2000
#define HEARTBEAT_MS 2000          /* also how often events are read without a NOTIFY */
#define PRUNE_MS ((uint64_t)600 * 1000)
/* Seconds an event is kept: for gateways that were away, and as the history a starting
 * gateway rebuilds its lock table from (a lock lasts at most 24 h). */
#define EVENT_MAX_AGE ((int64_t)48 * 3600)
#define DISCONNECT_MAX_AGE 60      /* an older disconnect is not carried out on a return */
#define PENDING_MAX 1024
#define FETCH_BATCH 64

struct store_process {
    int fd;
    const char *conninfo;
    const char *gateway;
    const char *instance;
    PGconn *conn;
    char where[160];
    char down_why[256];            /* the last reason the connection went */
    int64_t last_id;               /* the newest event applied (or skipped as our own) */
    int synced_once;
    int reported;                  /* -1 nothing yet, 0 down, 1 up */
    uint64_t retry_ms, next_attempt_ms, next_heartbeat_ms, next_prune_ms;
    size_t pending_count;
    struct store_event pending[PENDING_MAX];   /* to publish once the store is back */
    size_t releases_count;
    struct lease_msg releases[PENDING_MAX];    /* hubs' releases, likewise */
};

static void tell_helper(struct store_process *sp, const struct store_msg *msg)
{
    if (store_msg_send(sp->fd, msg) < 0 && errno != EPIPE)
        log_error("state store: cannot reach the login service: %s", strerror(errno));
}

static void report(struct store_process *sp, int up, const char *text)
{
    if (sp->reported == up)
        return;
    sp->reported = up;
    struct store_msg msg = { .type = STORE_MSG_STATE, .up = (uint32_t)up };
    snprintf(msg.text, sizeof(msg.text), "%s", text);
    tell_helper(sp, &msg);
}

static void drop_connection(struct store_process *sp, const char *why)
{
    snprintf(sp->down_why, sizeof(sp->down_why), "%s", why);
    PQfinish(sp->conn);
    sp->conn = NULL;
    if (sp->reported != 0)
        log_error("state store: %s unreachable: %s; new logins are refused until it is back "
                  "(retrying every few seconds)", sp->where[0] != '\0' ? sp->where : "the store",
                  why);
    report(sp, 0, why);
    sp->next_attempt_ms = event_loop_now_ms() + sp->retry_ms;
    sp->retry_ms = sp->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : sp->retry_ms * 2;
}

/* A failed statement: on a broken connection, drop it; otherwise it was the
 * statement's own fault (logged). Returns 1 when the connection was dropped. */
static int failed(struct store_process *sp, const char *what, const char *why)
{
    if (PQstatus(sp->conn) == CONNECTION_BAD) {
        drop_connection(sp, why);
        return 1;
    }
    log_error("state store: %s: %s", what, why);
    return 0;
}

/* The name is this gateway's when the row is ours (same instance) or its holder has
 * not been seen for a few heartbeats. Returns 0, or -1 with the reason in ERR. */
static int register_gateway(struct store_process *sp, char *err, size_t errlen)
{
    char pid[16];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    const char *params[] = { sp->gateway, pid, KTLSTUN_VERSION, sp->instance };
    PGresult *res = store_connect_query(sp->conn,
                                        "INSERT INTO ktlstun_gateway (name, pid, version,"
                                        " started_at, last_seen, instance)"
                                        " VALUES ($1, $2, $3, now(), now(), $4)"
                                        " ON CONFLICT (name) DO UPDATE SET pid = $2, version = $3,"
                                        " started_at = now(), last_seen = now(), instance = $4"
                                        " WHERE ktlstun_gateway.instance = $4"
                                        " OR ktlstun_gateway.last_seen"
                                        "  < now() - interval '6 seconds'"
                                        " RETURNING 1",
                                        4, params, PGRES_TUPLES_OK, err, errlen);
    if (res == NULL)
        return -1;
    int ours = PQntuples(res) == 1;
    PQclear(res);
    if (!ours)
        snprintf(err, errlen, "another gateway named %s uses this store (state_dir/gateway.id "
                 "differs, seen within the last 6 s): give each gateway its own gateway_name",
                 sp->gateway);
    return ours ? 0 : -1;
}

static void hand_over(struct store_process *sp, const struct store_event *event)
{
    struct store_msg msg = { .type = STORE_MSG_EVENT, .event = *event };
    tell_helper(sp, &msg);
}

static void hand_over_grant(void *arg, const struct store_event *event)
{
    hand_over(arg, event);
}

enum replay {
    REPLAY_LIVE,       /* as they come: everything the other gateways publish */
    REPLAY_CATCH_UP,   /* missed while away: not grants (the snapshot has them), not old
                          disconnects */
    REPLAY_HISTORY,    /* at the first connection: the lock table's changes, ours too */
};

static int lock_event(enum store_event_kind kind)
{
    return kind == STORE_EVENT_FAILURE || kind == STORE_EVENT_SUCCESS || kind == STORE_EVENT_UNLOCK;
}

static int wanted(const struct store_process *sp, const struct store_event *e, enum replay mode)
{
    int ours = strcmp(e->gateway, sp->gateway) == 0;
    switch (mode) {
    case REPLAY_HISTORY:
        return lock_event(e->kind);
    case REPLAY_CATCH_UP:
        return !ours && e->kind != STORE_EVENT_GRANT &&
               !(e->kind == STORE_EVENT_DISCONNECT && e->at < utc_time_now() - DISCONNECT_MAX_AGE);
    case REPLAY_LIVE:
        break;
    }
    return !ours;   /* ours were applied here when they were made */
}

/* Applies the events after last_id (up to id UP_TO, when not 0) as MODE says. Returns
 * 0, or -1 when the connection was dropped. */
static int apply_events(struct store_process *sp, enum replay mode, int64_t up_to)
{
    static struct store_event batch[FETCH_BATCH];
    char err[256];
    for (;;) {
        int got = store_events_fetch(sp->conn, sp->last_id, batch, FETCH_BATCH, err, sizeof(err));
        if (got < 0)
            return failed(sp, "cannot read events", err) ? -1 : 0;
        for (int i = 0; i < got; i++) {
            const struct store_event *e = &batch[i];
            if (up_to > 0 && e->id > up_to)
                return 0;
            sp->last_id = e->id;
            if (wanted(sp, e, mode))
                hand_over(sp, e);
        }
        if (got < FETCH_BATCH)
            return 0;
    }
}

/* An event that did not reach the store is kept for later (the caller keeps it) and
 * the connection dropped, whatever the reason (a statement timeout on a store that
 * is overloaded, too): a failure that the other gateways never count must not be
 * lost, and no login is granted until it is published. Returns 0, or -1. */
static int publish(struct store_process *sp, struct store_event *event)
{
    char err[256];
    if (store_events_publish(sp->conn, event, err, sizeof(err)) == 0)
        return 0;
    drop_connection(sp, err);
    return -1;
}

static void keep_pending(struct store_process *sp, const struct store_event *event)
{
    if (sp->pending_count == PENDING_MAX) {
        log_error("state store: %u events wait for the store already; the %s of \"%s\" is "
                  "kept on this gateway only", PENDING_MAX, store_events_kind_name(event->kind),
                  event->identity);
        return;
    }
    sp->pending[sp->pending_count++] = *event;
}

static int release(struct store_process *sp, const struct lease_msg *msg)
{
    char err[256];
    int all = msg->type == LEASE_MSG_RELEASE_ALL;
    if (store_leases_release(sp->conn, sp->gateway, all ? NULL : msg->tunnel, msg->identity, err,
                             sizeof(err)) == 0)
        return 0;
    drop_connection(sp, err);
    return -1;
}

/* A release that did not reach the store only keeps an address reserved for its
 * client longer; it is still kept for later, like an event. */
static void keep_release(struct store_process *sp, const struct lease_msg *msg)
{
    if (sp->releases_count == PENDING_MAX) {
        log_error("state store: %u address releases wait for the store already; the "
                  "address of \"%s\" stays reserved for it", PENDING_MAX, msg->identity);
        return;
    }
    sp->releases[sp->releases_count++] = *msg;
}

static void publish_pending(struct store_process *sp)
{
    size_t released = 0;
    while (released < sp->releases_count && sp->conn != NULL) {
        if (release(sp, &sp->releases[released]) < 0)
            break;
        released++;
    }
    memmove(sp->releases, sp->releases + released,
            (sp->releases_count - released) * sizeof(sp->releases[0]));
    sp->releases_count -= released;
    size_t done = 0;
    while (done < sp->pending_count && sp->conn != NULL) {
        if (publish(sp, &sp->pending[done]) < 0)
            break;
        done++;
    }
    memmove(sp->pending, sp->pending + done, (sp->pending_count - done) * sizeof(sp->pending[0]));
    sp->pending_count -= done;
}

static void try_connect(struct store_process *sp)
{
    char err[300];
    int from;
    int64_t snapshot_id = 0;
    sp->conn = store_connect_open(sp->conninfo, "ktlstund", err, sizeof(err));
    if (sp->conn == NULL) {
        drop_connection(sp, err);
        return;
    }
    store_connect_describe(sp->conn, sp->where, sizeof(sp->where));
    if (store_schema_migrate(sp->conn, &from, err, sizeof(err)) < 0 ||
        register_gateway(sp, err, sizeof(err)) < 0 ||
        store_connect_command(sp->conn, "LISTEN " STORE_SCHEMA_CHANNEL, 0, NULL, err,
                              sizeof(err)) < 0 ||
        store_events_snapshot(sp->conn, hand_over_grant, sp, &snapshot_id, err, sizeof(err)) < 0) {
        drop_connection(sp, err);
        return;
    }
    if (from != STORE_SCHEMA_VERSION)
        log_notice("state store: schema of %s %s version %d", sp->where,
                   from == 0 ? "created at" : "migrated to", STORE_SCHEMA_VERSION);
    /* Withdrawals made while this gateway was away must not be missed; grants are all
     * in the snapshot. The first time, the lock table is rebuilt from the store's
     * history (the helper empties its own first), so that every gateway counts the
     * same failures. */
    if (!sp->synced_once) {
        struct store_msg reset = { .type = STORE_MSG_RESET_LOCKS };
        tell_helper(sp, &reset);
        sp->last_id = 0;
    }
    if (apply_events(sp, sp->synced_once ? REPLAY_CATCH_UP : REPLAY_HISTORY, snapshot_id) < 0)
        return;
    sp->last_id = snapshot_id;
    sp->synced_once = 1;
    sp->retry_ms = RETRY_FIRST_MS;
    publish_pending(sp);
    if (sp->conn == NULL)
        return;
    log_notice("state store: connected to %s as gateway %s", sp->where, sp->gateway);
    report(sp, 1, sp->where);
    sp->next_heartbeat_ms = event_loop_now_ms() + HEARTBEAT_MS;
}

static void heartbeat(struct store_process *sp, uint64_t now_ms)
{
    char err[256];
    const char *params[] = { sp->gateway, sp->instance };
    sp->next_heartbeat_ms = now_ms + HEARTBEAT_MS;
    PGresult *res = store_connect_query(sp->conn,
                                        "UPDATE ktlstun_gateway SET last_seen = now()"
                                        " WHERE name = $1 AND instance = $2",
                                        2, params, PGRES_COMMAND_OK, err, sizeof(err));
    if (res == NULL) {
        failed(sp, "cannot record this gateway", err);
        return;
    }
    int rows = (int)strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    if (rows == 0) {
        snprintf(err, sizeof(err), "another gateway took the name %s in this store: give each "
                 "gateway its own gateway_name", sp->gateway);
        drop_connection(sp, err);
        return;
    }
    if (apply_events(sp, REPLAY_LIVE, 0) < 0)
        return;
    if (now_ms >= sp->next_prune_ms) {
        sp->next_prune_ms = now_ms + PRUNE_MS;
        if (store_events_prune(sp->conn, EVENT_MAX_AGE, err, sizeof(err)) < 0)
            failed(sp, "cannot prune old events", err);
    }
}

/* Applies the new events when a NOTIFY came. libpq also keeps the ones that arrive
 * while a statement of ours runs: those are looked for after every round, not only
 * when the socket is readable. */
static void drain_notifies(struct store_process *sp)
{
    int woken = 0;
    PGnotify *note;
    while (sp->conn != NULL && (note = PQnotifies(sp->conn)) != NULL) {
        woken = 1;
        PQfreemem(note);
    }
    if (woken)
        apply_events(sp, REPLAY_LIVE, 0);
}

static void on_readable(struct store_process *sp)
{
    if (PQconsumeInput(sp->conn) == 0) {
        char err[256];
        store_connect_error(sp->conn, err, sizeof(err));
        drop_connection(sp, err);
    }
}

/* A lock this gateway made: its alert is raised here unless another gateway raised
 * the alert of the same lock (the two locked at once). When that cannot be told, it
 * is raised: two alerts are better than none. */
static void claim_alert(struct store_process *sp, struct store_msg *msg)
{
    static const char *const kinds[] = { "identity", "user", "source" };
    const struct store_event *e = &msg->event;
    const char *key = msg->alert_kind == 0 ? e->identity
                      : msg->alert_kind == 1 ? e->username : e->source;
    int claimed = -1;
    char err[256];
    if (sp->conn != NULL) {
        claimed = store_events_claim_alert(sp->conn, sp->gateway, e->tunnel,
                                           kinds[msg->alert_kind], key, e->expires_at,
                                           utc_time_now(), err, sizeof(err));
        if (claimed < 0)
            failed(sp, "cannot claim an alert", err);
    }
    if (claimed == 0) {
        log_info("[%s] state store: the lock of %s %s was alerted by another gateway",
                 e->tunnel, kinds[msg->alert_kind], key);
        return;
    }
    tell_helper(sp, msg);
}

/* A hub's lease message: a TAKE is answered now (refused while the store cannot be
 * reached: no address is given that the fleet did not agree to); a release waits for
 * the store when it must. */
static void lease_message(struct store_process *sp, const struct lease_msg *msg)
{
    char err[256];
    if (msg->type == LEASE_MSG_RELEASE || msg->type == LEASE_MSG_RELEASE_ALL) {
        if (sp->conn == NULL || release(sp, msg) < 0)
            keep_release(sp, msg);
        return;
    }
    if (msg->type != LEASE_MSG_TAKE)
        return;
    struct store_msg reply = { .type = STORE_MSG_LEASE };
    if (sp->conn == NULL) {
        snprintf(err, sizeof(err), "not connected (%.200s)",
                 sp->down_why[0] != '\0' ? sp->down_why : "connecting");
    } else if (store_leases_take(sp->conn, sp->gateway, msg, &reply.lease, err, sizeof(err)) < 0) {
        failed(sp, "cannot lease a network tunnel address", err);
    } else {
        tell_helper(sp, &reply);
        return;
    }
    memset(&reply.lease, 0, sizeof(reply.lease));
    reply.lease.type = LEASE_MSG_RESULT;
    reply.lease.id = msg->id;
    reply.lease.result = LEASE_RESULT_UNAVAILABLE;
    snprintf(reply.lease.text, sizeof(reply.lease.text), "%s", err);
    tell_helper(sp, &reply);
}

/* Returns 0 to go on, -1 when the helper is gone. */
static int from_helper(struct store_process *sp)
{
    struct store_msg msg;
    int got = store_msg_recv(sp->fd, &msg);
    if (got == 0)
        return -1;
    if (got < 0) {
        if (errno == EAGAIN || errno == EINTR)
            return 0;
        log_error("state store: the login service sent %s",
                  errno == EBADMSG ? "a malformed message" : strerror(errno));
        return -1;
    }
    if (msg.type == STORE_MSG_ALERT) {
        claim_alert(sp, &msg);
        return 0;
    }
    if (msg.type == STORE_MSG_LEASE) {
        lease_message(sp, &msg.lease);
        return 0;
    }
    if (msg.type != STORE_MSG_EVENT)
        return 0;
    snprintf(msg.event.gateway, sizeof(msg.event.gateway), "%s", sp->gateway);
    if (sp->conn == NULL || publish(sp, &msg.event) < 0)
        keep_pending(sp, &msg.event);
    return 0;
}

static int wait_ms(const struct store_process *sp, uint64_t now_ms)
{
    uint64_t next = sp->conn != NULL ? sp->next_heartbeat_ms : sp->next_attempt_ms;
    return next <= now_ms ? 0 : (int)(next - now_ms);
}

int store_process_run(int fd, const char *conninfo, const char *gateway, const char *instance)
{
    struct store_process *sp = calloc(1, sizeof(*sp));
    if (sp == NULL)
        return EXIT_FAILURE;
    sp->fd = fd;
    sp->conninfo = conninfo;
    sp->gateway = gateway;
    sp->instance = instance;
    sp->reported = -1;
    sp->retry_ms = RETRY_FIRST_MS;
    for (;;) {
        uint64_t now_ms = event_loop_now_ms();
        if (sp->conn == NULL && now_ms >= sp->next_attempt_ms)
            try_connect(sp);
        else if (sp->conn != NULL && now_ms >= sp->next_heartbeat_ms)
            heartbeat(sp, now_ms);
        struct pollfd fds[2] = { { .fd = fd, .events = POLLIN } };
        nfds_t count = 1;
        if (sp->conn != NULL)
            fds[count++] = (struct pollfd){ .fd = PQsocket(sp->conn), .events = POLLIN };
        int ready = poll(fds, count, wait_ms(sp, event_loop_now_ms()));
        if (ready < 0 && errno != EINTR) {
            log_error("state store: poll: %s", strerror(errno));
            break;
        }
        if (ready <= 0)
            continue;
        if (fds[0].revents != 0 && from_helper(sp) < 0)
            break;
        if (count == 2 && fds[1].revents != 0 && sp->conn != NULL)
            on_readable(sp);
        drain_notifies(sp);
    }
    PQfinish(sp->conn);
    free(sp);
    return EXIT_SUCCESS;
}
