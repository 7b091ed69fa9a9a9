#include "helper/fleet_link.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/event_loop.h"
#include "core/log.h"
#include "core/signals.h"
#include "core/text.h"
#include "core/utc_time.h"
#include "store/store_msg.h"
#include "store/store_process.h"

#define RESTART_DELAY_MS 1000

struct fleet_link {
    struct grants *grants;
    char *conninfo;
    char *gateway;
    char instance[33];         /* state_dir/gateway.id: 32 hex digits */
    struct fleet_link_hooks hooks;
    int fd;                    /* to the store process; -1 while it is not running */
    pid_t pid;
    uint64_t restart_at_ms;    /* 0: no restart due */
    int up;
    int replaying;             /* between RESET_LOCKS and the store's first "up" */
    char why[256];
};

static int start_process(struct fleet_link *fleet)
{
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
        log_error("state store: socketpair: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        log_error("state store: fork: %s", strerror(errno));
        close(pair[0]);
        close(pair[1]);
        return -1;
    }
    if (pid == 0) {
        close(pair[0]);
        fleet->hooks.close_inherited(fleet->hooks.arg);
        prctl(PR_SET_NAME, "ktlstund-store");
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        signals_reset_in_child();
        _exit(store_process_run(pair[1], fleet->conninfo, fleet->gateway, fleet->instance));
    }
    close(pair[1]);
    /* Room for a burst of hubs' lease requests (two hundred clients at once). */
    int size = 1024 * 1024;
    setsockopt(pair[0], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    /* The helper's loop never waits on the store process. */
    fcntl(pair[0], F_SETFL, O_NONBLOCK);
    fleet->fd = pair[0];
    fleet->pid = pid;
    fleet->restart_at_ms = 0;
    return 0;
}

/* This gateway's id in the store, kept in STATE_DIR/gateway.id so that a restart is
 * the same gateway, made at the first start. Without the file (unreadable, or
 * state_dir not writable) a fresh id serves until the next start: a restart then
 * waits a few seconds for its own old row to age. */
static void load_instance(struct fleet_link *fleet, const char *state_dir)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s/gateway.id", state_dir);
    FILE *in = fopen(path, "re");
    if (in != NULL) {
        int ok = fgets(fleet->instance, sizeof(fleet->instance), in) != NULL &&
                 strlen(fleet->instance) == 32 &&
                 strspn(fleet->instance, "0123456789abcdef") == 32;
        fclose(in);
        if (ok)
            return;
        log_warning("state store: %s does not hold an id; making a new one", path);
    }
    unsigned char id[16];
    if (getrandom(id, sizeof(id), 0) != (ssize_t)sizeof(id)) {
        log_error("state store: getrandom: %s", strerror(errno));
        memset(id, 0, sizeof(id));
    }
    text_hex_encode(id, sizeof(id), fleet->instance);
    char temp[4300];
    snprintf(temp, sizeof(temp), "%s.tmp", path);
    int fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    int ok = fd >= 0 && dprintf(fd, "%s\n", fleet->instance) == 33 && fsync(fd) == 0;
    if (fd >= 0)
        close(fd);
    if (!ok || rename(temp, path) < 0) {
        log_warning("state store: cannot keep this gateway's id in %s (%s); a restart will wait "
                    "a few seconds for the store to forget the previous run", path,
                    strerror(errno));
        unlink(temp);
    }
}

static void set_down(struct fleet_link *fleet, const char *why)
{
    fleet->up = 0;
    snprintf(fleet->why, sizeof(fleet->why), "%s", why);
    grants_set_store_state(fleet->grants, GRANTS_STORE_DOWN, why);
}

struct fleet_link *fleet_link_start(const struct config *config, struct grants *grants,
                                    const struct fleet_link_hooks *hooks)
{
    if (config->global.state_store == NULL)
        return NULL;
    struct fleet_link *fleet = calloc(1, sizeof(*fleet));
    if (fleet == NULL || (fleet->conninfo = strdup(config->global.state_store)) == NULL ||
        (fleet->gateway = strdup(config->global.gateway_name)) == NULL) {
        log_error("state store: out of memory");
        fleet_link_free(fleet);
        return NULL;
    }
    fleet->grants = grants;
    fleet->hooks = *hooks;
    load_instance(fleet, config->global.state_dir);
    fleet->fd = -1;
    set_down(fleet, "not connected yet");
    if (start_process(fleet) < 0)
        fleet->restart_at_ms = event_loop_now_ms() + RESTART_DELAY_MS;
    return fleet;
}

static void stop_process(struct fleet_link *fleet)
{
    if (fleet->fd >= 0)
        close(fleet->fd);
    fleet->fd = -1;
    if (fleet->pid > 0) {
        kill(fleet->pid, SIGTERM);
        /* Reaped by the helper's SIGCHLD handling, which restarts it. */
    }
}

void fleet_link_free(struct fleet_link *fleet)
{
    if (fleet == NULL)
        return;
    stop_process(fleet);
    if (fleet->pid > 0)
        waitpid(fleet->pid, NULL, 0);
    free(fleet->conninfo);
    free(fleet->gateway);
    free(fleet);
}

void fleet_link_configure(struct fleet_link *fleet, const struct config *config)
{
    const char *conninfo = config->global.state_store;
    if (fleet == NULL || conninfo == NULL) {
        if ((fleet == NULL) != (conninfo == NULL))
            log_warning("state store: a change between files and a database takes effect "
                        "at the next restart of ktlstund");
        return;
    }
    if (strcmp(conninfo, fleet->conninfo) == 0 &&
        strcmp(config->global.gateway_name, fleet->gateway) == 0)
        return;
    char *new_conninfo = strdup(conninfo), *new_gateway = strdup(config->global.gateway_name);
    if (new_conninfo == NULL || new_gateway == NULL) {
        free(new_conninfo);
        free(new_gateway);
        log_error("state store: out of memory; the previous settings stay");
        return;
    }
    free(fleet->conninfo);
    free(fleet->gateway);
    fleet->conninfo = new_conninfo;
    fleet->gateway = new_gateway;
    log_notice("state store: new settings; reconnecting");
    stop_process(fleet);
    set_down(fleet, "reconnecting with new settings");
    if (fleet->pid <= 0)
        fleet->restart_at_ms = event_loop_now_ms();
}

int fleet_link_up(const struct fleet_link *fleet, char *why, size_t whylen)
{
    if (fleet == NULL || fleet->up)
        return 1;
    snprintf(why, whylen, "%s", fleet->why);
    return 0;
}

size_t fleet_link_poll_fds(const struct fleet_link *fleet, struct pollfd *fds, size_t room)
{
    if (fleet == NULL || fleet->fd < 0 || room == 0)
        return 0;
    fds[0] = (struct pollfd){ .fd = fleet->fd, .events = POLLIN };
    return 1;
}

static void apply(struct fleet_link *fleet, const struct store_event *e)
{
    char quoted[LIMIT_IDENTITY + 64];
    const char *who = text_log_quote(e->identity, quoted, sizeof(quoted));
    uint64_t now_ms = event_loop_now_ms();
    int64_t left = e->expires_at - utc_time_now();
    switch (e->kind) {
    case STORE_EVENT_GRANT:
        if (left <= 0)
            break;
        if (grants_put(fleet->grants, e->tunnel, e->sha256, e->identity, e->source,
                       now_ms + (uint64_t)left * 1000u, now_ms) < 0)
            log_error("[%s] state store: cannot record the grant of %s from gateway %s",
                      e->tunnel, who, e->gateway);
        else
            log_info("[%s] state store: %s logged in through gateway %s (grant for %llds)",
                     e->tunnel, who, e->gateway, (long long)left);
        break;
    case STORE_EVENT_REVOKE: {
        int by_admin = e->tag == STORE_REVOKE_BY_ADMIN;
        unsigned ended = grants_withdraw(fleet->grants, e->tunnel[0] != '\0' ? e->tunnel : NULL,
                                         e->identity, e->sha256[0] != '\0' ? e->sha256 : NULL,
                                         by_admin, now_ms);
        log_notice("[%s] state store: %sgateway %s %s the grants of %s (%u live here)",
                   e->tunnel[0] != '\0' ? e->tunnel : "*", by_admin ? "an administrator on " : "",
                   e->gateway, by_admin ? "revoked" : "withdrew", who, ended);
        if (by_admin && ended > 0 && fleet->hooks.revoked != NULL)
            fleet->hooks.revoked(fleet->hooks.arg);
        break;
    }
    case STORE_EVENT_DISCONNECT:
        log_notice("state store: gateway %s asks to disconnect %s", e->gateway, who);
        fleet->hooks.disconnect(fleet->hooks.arg, e->identity);
        break;
    case STORE_EVENT_FAILURE:
    case STORE_EVENT_SUCCESS:
    case STORE_EVENT_UNLOCK:
        fleet->hooks.lock_event(fleet->hooks.arg, e);
        break;
    }
}

static void raise_claimed(struct fleet_link *fleet, const struct store_msg *msg)
{
    const struct store_event *e = &msg->event;
    struct alert_event event = {
        .kind = (enum alert_kind)msg->alert_kind, .tunnel = e->tunnel, .identity = e->identity,
        .user = e->username, .source = e->source, .failures = e->counted,
        .level = (unsigned)e->tag, .until = e->expires_at,
    };
    fleet->hooks.alert(fleet->hooks.arg, &event);
}

void fleet_link_ready(struct fleet_link *fleet)
{
    for (int batch = 0; batch < 64 && fleet->fd >= 0; batch++) {
        struct store_msg msg;
        int got = store_msg_recv(fleet->fd, &msg);
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (got <= 0) {
            if (got < 0)
                log_error("state store: the store process sent %s; restarting it",
                          errno == EBADMSG ? "a malformed message" : strerror(errno));
            stop_process(fleet);
            set_down(fleet, "the store process stopped");
            return;
        }
        if (msg.type == STORE_MSG_ALERT) {
            raise_claimed(fleet, &msg);
        } else if (msg.type == STORE_MSG_LEASE) {
            fleet->hooks.lease_result(fleet->hooks.arg, &msg.lease);
        } else if (msg.type == STORE_MSG_RESET_LOCKS) {
            fleet->replaying = 1;
            fleet->hooks.lock_event(fleet->hooks.arg, NULL);
        } else if (msg.type == STORE_MSG_STATE) {
            if (msg.up) {
                fleet->up = 1;
                fleet->replaying = 0;
                grants_set_store_state(fleet->grants, GRANTS_STORE_UP, msg.text);
            } else {
                set_down(fleet, msg.text);
            }
        } else {
            apply(fleet, &msg.event);
        }
    }
}

int fleet_link_reaped(struct fleet_link *fleet, pid_t pid, int status)
{
    if (fleet == NULL || pid != fleet->pid)
        return 0;
    fleet->pid = 0;
    if (fleet->fd >= 0) {
        close(fleet->fd);
        fleet->fd = -1;
    }
    if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM))
        log_error("state store: the store process ended (%s %d); starting another",
                  WIFSIGNALED(status) ? "signal" : "status",
                  WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
    set_down(fleet, "the store process restarts");
    fleet->restart_at_ms = event_loop_now_ms() + RESTART_DELAY_MS;
    return 1;
}

void fleet_link_expire(struct fleet_link *fleet, uint64_t now_ms)
{
    if (fleet == NULL || fleet->pid > 0 || fleet->restart_at_ms == 0 || now_ms < fleet->restart_at_ms)
        return;
    if (start_process(fleet) < 0)
        fleet->restart_at_ms = now_ms + RESTART_DELAY_MS;
}

uint64_t fleet_link_next_deadline(const struct fleet_link *fleet, uint64_t soonest)
{
    if (fleet == NULL || fleet->pid > 0 || fleet->restart_at_ms == 0)
        return soonest;
    return fleet->restart_at_ms < soonest ? fleet->restart_at_ms : soonest;
}

static void publish(struct fleet_link *fleet, const struct store_event *event)
{
    if (fleet == NULL)
        return;
    struct store_msg msg = { .type = STORE_MSG_EVENT, .event = *event };
    if (fleet->fd < 0 || store_msg_send(fleet->fd, &msg) < 0)
        log_error("[%s] state store: the %s of \"%s\" could not be handed to the store "
                  "process (%s); the other gateways do not learn it",
                  event->tunnel[0] != '\0' ? event->tunnel : "*",
                  store_events_kind_name(event->kind), event->identity,
                  fleet->fd < 0 ? "not running" : strerror(errno));
}

void fleet_link_publish_grant(struct fleet_link *fleet, const char *tunnel, const char *sha256,
                              const char *identity, const char *user, const char *source,
                              int64_t expires_at)
{
    struct store_event e = { .kind = STORE_EVENT_GRANT, .expires_at = expires_at };
    snprintf(e.tunnel, sizeof(e.tunnel), "%s", tunnel);
    snprintf(e.sha256, sizeof(e.sha256), "%s", sha256);
    snprintf(e.identity, sizeof(e.identity), "%s", identity);
    snprintf(e.username, sizeof(e.username), "%s", user);
    snprintf(e.source, sizeof(e.source), "%s", source);
    publish(fleet, &e);
}

void fleet_link_publish_revoke(struct fleet_link *fleet, const char *tunnel, const char *identity)
{
    struct store_event e = { .kind = STORE_EVENT_REVOKE };
    snprintf(e.tunnel, sizeof(e.tunnel), "%s", tunnel != NULL ? tunnel : "");
    snprintf(e.identity, sizeof(e.identity), "%s", identity);
    publish(fleet, &e);
}

static void fill_attempt(struct store_event *e, const char *tunnel, const char *identity,
                         const char *user, const char *source)
{
    snprintf(e->tunnel, sizeof(e->tunnel), "%s", tunnel);
    snprintf(e->identity, sizeof(e->identity), "%s", identity);
    snprintf(e->username, sizeof(e->username), "%s", user);
    snprintf(e->source, sizeof(e->source), "%s", source);
}

void fleet_link_publish_failure(struct fleet_link *fleet, const char *tunnel,
                                const char *identity, const char *user, const char *source,
                                uint64_t tag, uint32_t counted)
{
    struct store_event e = { .kind = STORE_EVENT_FAILURE, .tag = tag, .counted = counted };
    fill_attempt(&e, tunnel, identity, user, source);
    publish(fleet, &e);
}

void fleet_link_publish_success(struct fleet_link *fleet, const char *tunnel,
                                const char *identity, const char *user, const char *source)
{
    struct store_event e = { .kind = STORE_EVENT_SUCCESS };
    fill_attempt(&e, tunnel, identity, user, source);
    publish(fleet, &e);
}

int fleet_link_claim_alert(struct fleet_link *fleet, const struct alert_event *event)
{
    if (fleet == NULL || fleet->fd < 0 || event->kind > ALERT_SOURCE_LOCKED)
        return 0;
    struct store_msg msg = { .type = STORE_MSG_ALERT, .alert_kind = (uint32_t)event->kind };
    fill_attempt(&msg.event, event->tunnel, event->identity, event->user, event->source);
    msg.event.counted = event->failures;
    msg.event.tag = event->level;
    msg.event.expires_at = event->until;
    return store_msg_send(fleet->fd, &msg) == 0;
}

void fleet_link_publish_unlock(struct fleet_link *fleet, const char *key)
{
    struct store_event e = { .kind = STORE_EVENT_UNLOCK };
    snprintf(e.identity, sizeof(e.identity), "%s", key);
    publish(fleet, &e);
}

int fleet_link_lease(struct fleet_link *fleet, const struct lease_msg *msg)
{
    if (fleet == NULL || fleet->fd < 0)
        return -1;
    struct store_msg out = { .type = STORE_MSG_LEASE, .lease = *msg };
    if (store_msg_send(fleet->fd, &out) == 0)
        return 0;
    log_error("state store: cannot reach the store process: %s", strerror(errno));
    return -1;
}

unsigned fleet_link_revoke(struct fleet_link *fleet, struct grants *grants, const char *tunnel,
                           const char *key)
{
    struct store_event e;
    store_events_admin_revoke(&e, fleet != NULL ? fleet->gateway : "", tunnel, key);
    unsigned live = grants_withdraw(grants, tunnel, e.identity,
                                    e.sha256[0] != '\0' ? e.sha256 : NULL, 1, event_loop_now_ms());
    publish(fleet, &e);
    return live;
}

int fleet_link_replaying(const struct fleet_link *fleet)
{
    return fleet != NULL && fleet->replaying;
}
