#include "helper/helper_main.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/event_loop.h"
#include "core/log.h"
#include "core/signals.h"
#include "core/utc_time.h"
#include "helper/admin_socket.h"
#include "helper/alert_commands.h"
#include "helper/fleet_link.h"
#include "helper/lock_policy.h"
#include "helper/lock_table.h"
#include "helper/login_transactions.h"
#include "proto/helper_msg.h"
#include "proto/lease_msg.h"

#define MAX_LINKS 1024

struct link {
    int fd;
    uint64_t number;          /* never reused, so a transaction can outlive its link */
};

struct helper {
    char *config_path;
    struct config *config;
    struct lock_table *locks;
    struct alert_commands *alerts;
    struct login_transactions *logins;
    struct admin_socket *admin;
    struct fleet_link *fleet;     /* the shared state store; NULL: state in files */
    struct grants *grants;        /* the table the workers read */
    int control_fd;
    int lease_fd;                 /* the supervisor's link for address leases; -1: none */
    int signal_fd;
    size_t link_count;
    struct link links[MAX_LINKS];
    uint64_t next_link_number;
    int stopping;
};

static struct link *find_link(struct helper *h, uint64_t number)
{
    for (size_t i = 0; i < h->link_count; i++)
        if (h->links[i].number == number)
            return &h->links[i];
    return NULL;
}

static void send_to_worker(void *arg, uint64_t link_number, struct helper_msg *msg)
{
    struct link *link = find_link(arg, link_number);
    if (link != NULL && helper_msg_send(link->fd, msg) < 0)
        log_error("second factor: cannot answer a worker (%s); its login will time out",
                  strerror(errno));
}

static void drop_link(struct helper *h, size_t index)
{
    uint64_t number = h->links[index].number;
    close(h->links[index].fd);
    h->links[index] = h->links[--h->link_count];
    login_transactions_drop_link(h->logins, h->config, number);
}

/* Answers BEGIN that the login service is unavailable, saying TEXT. */
static void refuse_unavailable(struct helper *h, uint64_t link_number,
                               const struct helper_msg *begin, const char *text)
{
    struct helper_msg reply;
    helper_msg_init(&reply, HELPER_MSG_RESULT, begin->id);
    reply.style = AUTH_RESULT_UNAVAILABLE;
    helper_msg_set_text(&reply, text, strlen(text));
    send_to_worker(h, link_number, &reply);
}

/* Without the saved locks a login could try codes a lock forbids: refuse it (fail
 * closed) until the state file can be read. Returns 1 when BEGIN was refused. */
static int refuse_without_locks(struct helper *h, uint64_t link_number,
                                const struct helper_msg *begin)
{
    char why[600];
    if (lock_table_available(h->locks, why, sizeof(why)) == 0)
        return 0;
    log_error("[%s] second factor unavailable: lock state unreadable: %s; login of \"%s\" "
              "refused", begin->tunnel, why, begin->identity);
    refuse_unavailable(h, link_number, begin, "the login service cannot read its lock state");
    return 1;
}

/* Without the shared state store a grant would stay on this gateway and the other
 * gateways' locks would be unknown here: refuse the login (fail closed) until it is
 * back. Returns 1 when BEGIN was refused. */
static int refuse_without_store(struct helper *h, uint64_t link_number,
                                const struct helper_msg *begin)
{
    char why[300];
    if (fleet_link_up(h->fleet, why, sizeof(why)))
        return 0;
    log_error("[%s] second factor unavailable: the shared state store is unreachable (%s); "
              "login of \"%s\" refused", begin->tunnel, why, begin->identity);
    refuse_unavailable(h, link_number, begin,
                       "the login service cannot reach its shared state store; try again shortly");
    return 1;
}

/* Passes another gateway's disconnect to every worker. */
static void disconnect_everywhere(void *arg, const char *key)
{
    struct helper *h = arg;
    struct helper_msg msg;
    helper_msg_init(&msg, HELPER_MSG_DISCONNECT, 0);
    snprintf(msg.identity, sizeof(msg.identity), "%s", key);
    for (size_t i = 0; i < h->link_count; i++)
        if (helper_msg_send(h->links[i].fd, &msg) < 0)
            log_error("state store: cannot pass a disconnect to a worker (%s)", strerror(errno));
}

/* Another gateway's change of the lock table, or (EVENT NULL) the table emptied before
 * the store's history of it. */
static void apply_lock_event(void *arg, const struct store_event *event)
{
    struct helper *h = arg;
    if (event == NULL) {
        if (lock_table_reset(h->locks) < 0)
            log_error("state store: out of memory; the lock table keeps what it had");
        return;
    }
    if (event->kind == STORE_EVENT_UNLOCK) {
        int lifted = lock_policy_unlock(lock_table_policy(h->locks), event->identity,
                                        utc_time_now());
        if (lifted > 0)
            log_notice("state store: gateway %s unlocked \"%s\" (%d lock%s lifted here)",
                       event->gateway, event->identity, lifted, lifted == 1 ? "" : "s");
        return;
    }
    login_transactions_apply_remote(h->logins, h->config, event);
}

/* The alert of a lock this gateway made, which no other gateway raised. */
static void raise_claimed_alert(void *arg, const struct alert_event *event)
{
    struct helper *h = arg;
    for (size_t i = 0; i < h->config->tunnel_count; i++) {
        const struct tunnel_config *t = &h->config->tunnels[i];
        if (strcmp(t->name, event->tunnel) == 0) {
            alert_log(event);
            alert_commands_start(h->alerts, t->name, &t->alert_command, event);
            return;
        }
    }
    alert_log(event);   /* its tunnel went in a reload: logged all the same */
}

static void publish_unlock(void *arg, const char *key)
{
    struct helper *h = arg;
    fleet_link_publish_unlock(h->fleet, key);
}

/* Asks every worker to check its live connections against the grants table now. */
static void recheck_everywhere(void *arg)
{
    struct helper *h = arg;
    struct helper_msg msg;
    helper_msg_init(&msg, HELPER_MSG_RECHECK, 0);
    for (size_t i = 0; i < h->link_count; i++)
        if (helper_msg_send(h->links[i].fd, &msg) < 0)
            log_error("second factor: cannot ask a worker to end the tunnels of revoked grants "
                      "(%s); it does so within a second", strerror(errno));
}

/* `ktlstun revoke`: here, and on the other gateways through the store. */
static unsigned revoke_grants(void *arg, const char *tunnel, const char *key)
{
    struct helper *h = arg;
    unsigned live = fleet_link_revoke(h->fleet, h->grants, tunnel, key);
    if (live > 0)
        recheck_everywhere(h);
    return live;
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
            if (!refuse_without_locks(h, link->number, &msg) &&
                !refuse_without_store(h, link->number, &msg))
                login_transactions_begin(h->logins, h->config, link->number, &msg);
            break;
        case HELPER_MSG_ANSWER:
            login_transactions_answer(h->logins, h->config, link->number, &msg);
            break;
        case HELPER_MSG_CANCEL:
            login_transactions_cancel(h->logins, h->config, link->number, msg.id);
            break;
        case HELPER_MSG_HANDSHAKE_FAILURE:
            login_transactions_handshake_failure(h->logins, h->config, &msg);
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
    lock_table_configure(h->locks, config);
    fleet_link_configure(h->fleet, config);
}

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
    if (cmsg == NULL || cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) {
        /* The parent may not be allowed to signal this process (another user): a
         * reload comes as a message instead of SIGHUP. */
        if (data[0] == HELPER_MAIN_RELOAD)
            reload_config(h);
        return;
    }
    int fd;
    memcpy(&fd, CMSG_DATA(cmsg), sizeof(fd));
    if (data[0] == HELPER_MAIN_LEASE_LINK) {
        if (h->lease_fd >= 0)
            close(h->lease_fd);
        fcntl(fd, F_SETFL, O_NONBLOCK);
        h->lease_fd = fd;
        return;
    }
    if (h->link_count == MAX_LINKS) {
        log_error("second factor: too many worker links");
        close(fd);
        return;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    h->links[h->link_count++] = (struct link){ .fd = fd, .number = ++h->next_link_number };
}

static void answer_lease(void *arg, const struct lease_msg *result)
{
    struct helper *h = arg;
    if (h->lease_fd >= 0 && lease_msg_send(h->lease_fd, result) < 0)
        log_error("state store: cannot answer the supervisor's address lease: %s",
                  strerror(errno));
}

/* Passes the supervisor's lease messages to the store process; a TAKE that cannot go
 * there is answered at once, so that the hub refuses its client instead of waiting. */
static void read_lease_link(struct helper *h)
{
    for (int batch = 0; batch < 64; batch++) {
        struct lease_msg msg;
        int got = lease_msg_recv(h->lease_fd, &msg);
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        if (got <= 0) {
            if (got < 0)
                log_error("state store: the supervisor sent a malformed address lease message");
            close(h->lease_fd);
            h->lease_fd = -1;
            return;
        }
        if (fleet_link_lease(h->fleet, &msg) == 0 || msg.type != LEASE_MSG_TAKE)
            continue;
        struct lease_msg reply = { .type = LEASE_MSG_RESULT, .id = msg.id,
                                   .result = LEASE_RESULT_UNAVAILABLE };
        snprintf(reply.text, sizeof(reply.text), "%s",
                 h->fleet == NULL ? "no shared state store is configured"
                                  : "the shared state store's process is restarting");
        answer_lease(h, &reply);
    }
}

static void reap_children(struct helper *h)
{
    int status;
    pid_t pid;
    while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
        if (fleet_link_reaped(h->fleet, pid, status))
            continue;
        alert_commands_reaped(h->alerts, pid, status);
        login_transactions_reaped(h->logins, pid);
    }
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

static void expire(struct helper *h, uint64_t now_ms)
{
    login_transactions_expire(h->logins, h->config, now_ms);
    alert_commands_expire(h->alerts, now_ms);
    admin_socket_expire(h->admin, now_ms);
    fleet_link_expire(h->fleet, now_ms);
}

static int poll_timeout(const struct helper *h)
{
    uint64_t now = event_loop_now_ms(), soonest = now + 60000;
    soonest = login_transactions_next_deadline(h->logins, soonest);
    soonest = alert_commands_next_deadline(h->alerts, soonest);
    soonest = admin_socket_next_deadline(h->admin, soonest);
    soonest = fleet_link_next_deadline(h->fleet, soonest);
    return soonest <= now ? 0 : (int)(soonest - now);
}

enum watch_kind {
    WATCH_CONTROL, WATCH_SIGNAL, WATCH_ADMIN, WATCH_LINK, WATCH_CHILD, WATCH_STORE, WATCH_LEASE,
};

struct watch {
    enum watch_kind kind;
    uint64_t key;            /* link number, or the admin socket's or the logins' own key */
};

#define MAX_WATCHES (5 + ADMIN_SOCKET_MAX_CONNECTIONS + MAX_LINKS + LOGIN_TRANSACTIONS_MAX)

static void dispatch(struct helper *h, const struct watch *w, short revents)
{
    switch (w->kind) {
    case WATCH_CONTROL:
        receive_link(h);
        break;
    case WATCH_SIGNAL:
        on_signal(h);
        break;
    case WATCH_ADMIN:
        admin_socket_ready(h->admin, w->key, revents, h->locks, h->config);
        break;
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
        login_transactions_ready(h->logins, h->config, w->key);
        break;
    case WATCH_STORE:
        fleet_link_ready(h->fleet);
        break;
    case WATCH_LEASE:
        read_lease_link(h);
        break;
    }
}

/* The COUNT pollfds from N on are a module's, with its keys in KEYS: watches of KIND. */
static void set_kind(struct watch *watches, const uint64_t *keys, size_t n, size_t count,
                     enum watch_kind kind)
{
    for (size_t i = n; i < n + count; i++)
        watches[i] = (struct watch){ kind, keys[i] };
}

static struct pollfd fds[MAX_WATCHES];
static struct watch watches[MAX_WATCHES];
static uint64_t keys[MAX_WATCHES];

/* Fills fds and watches with everything the helper waits on. Returns how many. */
static size_t collect_watches(struct helper *h)
{
    size_t n = 0, added;
    fds[n] = (struct pollfd){ .fd = h->control_fd, .events = POLLIN };
    watches[n++] = (struct watch){ WATCH_CONTROL, 0 };
    fds[n] = (struct pollfd){ .fd = h->signal_fd, .events = POLLIN };
    watches[n++] = (struct watch){ WATCH_SIGNAL, 0 };
    if (h->lease_fd >= 0) {
        fds[n] = (struct pollfd){ .fd = h->lease_fd, .events = POLLIN };
        watches[n++] = (struct watch){ WATCH_LEASE, 0 };
    }
    added = admin_socket_poll_fds(h->admin, fds + n, keys + n, MAX_WATCHES - n);
    set_kind(watches, keys, n, added, WATCH_ADMIN);
    n += added;
    for (size_t i = 0; i < h->link_count; i++) {
        fds[n] = (struct pollfd){ .fd = h->links[i].fd, .events = POLLIN };
        watches[n++] = (struct watch){ WATCH_LINK, h->links[i].number };
    }
    added = login_transactions_poll_fds(h->logins, fds + n, keys + n, MAX_WATCHES - n);
    set_kind(watches, keys, n, added, WATCH_CHILD);
    n += added;
    added = fleet_link_poll_fds(h->fleet, fds + n, MAX_WATCHES - n);
    for (size_t i = n; i < n + added; i++)
        watches[i] = (struct watch){ WATCH_STORE, 0 };
    return n + added;
}

/* In the store process, right after the fork: it must hold none of the helper's
 * sockets (a worker link or the supervisor's channel kept open there would hide the
 * helper's end from the other side). */
static void close_helper_fds(void *arg)
{
    struct helper *h = arg;
    size_t n = collect_watches(h);
    for (size_t i = 0; i < n; i++)
        close(fds[i].fd);
}

static int helper_loop(struct helper *h)
{
    while (!h->stopping) {
        size_t n;
        n = collect_watches(h);
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

int helper_main_run(int control_fd, const char *config_path, const struct config *config,
                    struct grants *grants, int admin_fd)
{
    int status = EXIT_FAILURE;
    struct helper *h = calloc(1, sizeof(*h));
    if (h == NULL)
        return status;
    h->control_fd = control_fd;
    h->lease_fd = -1;
    h->signal_fd = -1;

    h->signal_fd = signals_open_fd();
    h->config_path = strdup(config_path);
    /* After fork the parent's configuration is this process's own copy: the helper
     * owns it from here and frees it when a reload replaces it. */
    h->config = (struct config *)config;
    h->locks = lock_table_create();
    h->alerts = alert_commands_create();
    h->admin = admin_socket_create();
    if (h->admin != NULL && admin_fd >= 0) {
        admin_socket_adopt(h->admin, admin_fd);
        admin_fd = -1;
    }
    if (h->locks != NULL && h->alerts != NULL)
        h->logins = login_transactions_create(h->locks, grants, h->alerts, send_to_worker, h);
    if (h->signal_fd < 0 || h->config_path == NULL || h->config == NULL || h->locks == NULL ||
        h->alerts == NULL || h->admin == NULL || h->logins == NULL) {
        log_error("second factor helper: cannot start (%s)",
                  h->config == NULL ? "configuration did not load" : "out of resources");
        goto out;
    }
    unsigned repaired = grants_recover(grants);
    if (repaired > 0)
        log_warning("second factor helper: %u grant%s left half-written by the previous "
                    "helper cleared; those users log in again", repaired, repaired == 1 ? "" : "s");
    lock_table_load(h->locks, h->config);
    const struct fleet_link_hooks hooks = { .close_inherited = close_helper_fds,
                                            .disconnect = disconnect_everywhere,
                                            .revoked = recheck_everywhere,
                                            .lock_event = apply_lock_event,
                                            .alert = raise_claimed_alert,
                                            .lease_result = answer_lease, .arg = h };
    h->fleet = fleet_link_start(h->config, grants, &hooks);
    h->grants = grants;
    admin_socket_on_revoke(h->admin, revoke_grants, h);
    login_transactions_use_fleet(h->logins, h->fleet);
    if (h->fleet != NULL)
        admin_socket_on_unlock(h->admin, publish_unlock, h);
    status = helper_loop(h);
out:
    login_transactions_free(h->logins);
    fleet_link_free(h->fleet);
    for (size_t i = 0; i < h->link_count; i++)
        close(h->links[i].fd);
    if (h->lease_fd >= 0)
        close(h->lease_fd);
    admin_socket_free(h->admin);
    if (h->signal_fd >= 0)
        close(h->signal_fd);
    alert_commands_free(h->alerts);
    lock_table_free(h->locks);
    config_free(h->config);
    free(h->config_path);
    free(h);
    if (admin_fd >= 0)
        close(admin_fd);
    return status;
}
