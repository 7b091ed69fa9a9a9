#include "helper/admin_socket.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "proto/login_log.h"
#include "core/event_loop.h"
#include "core/limits.h"
#include "core/log.h"
#include "core/text.h"
#include "core/utc_time.h"
#include "helper/lock_policy.h"
#include "proto/admin_protocol.h"
#include "proto/socket_reply.h"

#define TIMEOUT_MS 5000
#define LISTENING_KEY ADMIN_SOCKET_MAX_CONNECTIONS

struct connection {
    int fd;
    uint64_t deadline_ms;
};

struct admin_socket {
    int listen_fd;
    admin_socket_unlock_fn *on_unlock;
    void *unlock_arg;
    admin_socket_revoke_fn *on_revoke;
    void *revoke_arg;
    struct connection connections[ADMIN_SOCKET_MAX_CONNECTIONS];
};

void admin_socket_on_unlock(struct admin_socket *admin, admin_socket_unlock_fn *on_unlock,
                            void *arg)
{
    admin->on_unlock = on_unlock;
    admin->unlock_arg = arg;
}

void admin_socket_on_revoke(struct admin_socket *admin, admin_socket_revoke_fn *on_revoke,
                            void *arg)
{
    admin->on_revoke = on_revoke;
    admin->revoke_arg = arg;
}

struct admin_socket *admin_socket_create(void)
{
    struct admin_socket *admin = calloc(1, sizeof(*admin));
    if (admin == NULL)
        return NULL;
    admin->listen_fd = -1;
    for (size_t i = 0; i < ADMIN_SOCKET_MAX_CONNECTIONS; i++)
        admin->connections[i].fd = -1;
    return admin;
}

void admin_socket_free(struct admin_socket *admin)
{
    if (admin == NULL)
        return;
    for (size_t i = 0; i < ADMIN_SOCKET_MAX_CONNECTIONS; i++)
        if (admin->connections[i].fd >= 0)
            close(admin->connections[i].fd);
    /* The path stays: the socket outlives this helper (helper_spawner holds it). */
    if (admin->listen_fd >= 0)
        close(admin->listen_fd);
    free(admin);
}

int admin_socket_bind(const char *runtime_dir)
{
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    if (mkdir(runtime_dir, 0755) < 0 && errno != EEXIST) {
        log_warning("cannot create runtime_dir %s (%s): `ktlstun unlock` will edit the lock "
                    "state file directly", runtime_dir, strerror(errno));
        return -1;
    }
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", runtime_dir, ADMIN_PROTOCOL_SOCKET) >=
        sizeof(path)) {
        log_warning("runtime_dir %s is too long for a socket path", runtime_dir);
        return -1;
    }
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    unlink(path);
    mode_t old_mask = umask(0077);
    int bound = bind(fd, (struct sockaddr *)&addr, sizeof(addr));
    umask(old_mask);
    if (bound < 0) {
        log_warning("cannot listen on %s (%s): `ktlstun unlock` will edit the lock state file "
                    "directly", path, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

int admin_socket_listen(int fd)
{
    if (listen(fd, 8) < 0) {
        log_warning("cannot listen on the admin socket (%s): `ktlstun unlock` will edit the "
                    "lock state file directly", strerror(errno));
        return -1;
    }
    return 0;
}

void admin_socket_adopt(struct admin_socket *admin, int listen_fd)
{
    admin->listen_fd = listen_fd;
}

size_t admin_socket_poll_fds(const struct admin_socket *admin, struct pollfd *fds,
                             uint64_t *keys, size_t room)
{
    size_t n = 0;
    if (admin->listen_fd >= 0 && n < room) {
        fds[n] = (struct pollfd){ .fd = admin->listen_fd, .events = POLLIN };
        keys[n++] = LISTENING_KEY;
    }
    for (size_t i = 0; i < ADMIN_SOCKET_MAX_CONNECTIONS && n < room; i++) {
        if (admin->connections[i].fd < 0)
            continue;
        fds[n] = (struct pollfd){ .fd = admin->connections[i].fd, .events = POLLIN };
        keys[n++] = i;
    }
    return n;
}

static void reply(int fd, const char *status, const char *text)
{
    socket_reply_send(fd, status, text, ADMIN_PROTOCOL_REPLY_MAX);
}

static void unlock_key(const struct admin_socket *admin, int fd, const char *key,
                       struct lock_table *locks, const struct config *config)
{
    int lifted = lock_policy_unlock(lock_table_policy(locks), key, utc_time_now());
    /* Other gateways may hold failures or locks of KEY that this one never saw. */
    if (admin->on_unlock != NULL)
        admin->on_unlock(admin->unlock_arg, key);
    char text[LIMIT_IDENTITY + 200];
    if (lifted < 0) {
        snprintf(text, sizeof(text), "%s has no failed logins or locks on record\n", key);
        reply(fd, ADMIN_PROTOCOL_UNKNOWN, text);
        return;
    }
    lock_table_save(locks, config);
    login_log_unlock(key, lifted);
    if (lifted > 0) {
        snprintf(text, sizeof(text), "unlocked %s (%d lock%s lifted, failure counts cleared)\n",
                 key, lifted, lifted == 1 ? "" : "s");
        reply(fd, ADMIN_PROTOCOL_OK, text);
    } else {
        snprintf(text, sizeof(text), "%s was not locked (its failure counts were cleared)\n",
                 key);
        reply(fd, ADMIN_PROTOCOL_NOT_LOCKED, text);
    }
}

static int has_tunnel(const struct config *config, const char *name)
{
    for (size_t i = 0; i < config->tunnel_count; i++)
        if (strcmp(config->tunnels[i].name, name) == 0)
            return 1;
    return 0;
}

/* ARGS: "TUNNEL KEY", TUNNEL "*" for every tunnel. */
static void revoke_grants(const struct admin_socket *admin, int fd, const char *args,
                          const struct config *config)
{
    char tunnel[LIMIT_TUNNEL_NAME + 1], text[LIMIT_IDENTITY + LIMIT_TUNNEL_NAME + 300];
    const char *space = strchr(args, ' ');
    size_t len = space != NULL ? (size_t)(space - args) : 0;
    if (admin->on_revoke == NULL || len == 0 || len > LIMIT_TUNNEL_NAME || space[1] == '\0') {
        reply(fd, ADMIN_PROTOCOL_ERROR, "unknown request (use \"revoke TUNNEL|* KEY\")\n");
        return;
    }
    memcpy(tunnel, args, len);
    tunnel[len] = '\0';
    const char *key = space + 1;
    int all = strcmp(tunnel, ADMIN_PROTOCOL_ALL_TUNNELS) == 0;
    if (!all && !has_tunnel(config, tunnel)) {
        snprintf(text, sizeof(text), "the running daemon has no tunnel %s\n", tunnel);
        reply(fd, ADMIN_PROTOCOL_UNKNOWN, text);
        return;
    }
    unsigned live = admin->on_revoke(admin->revoke_arg, all ? NULL : tunnel, key);
    char quoted[LIMIT_IDENTITY + 64];
    log_notice("[%s] an administrator revoked the second-factor grants of \"%s\" (%u live)",
               all ? "*" : tunnel, text_log_quote(key, quoted, sizeof(quoted)), live);
    if (live > 0)
        snprintf(text, sizeof(text), "revoked %u grant%s of %s%s%s: its tunnels end, and its next "
                 "connection needs a new login\n", live, live == 1 ? "" : "s", key,
                 all ? "" : " on tunnel ", all ? "" : tunnel);
    else
        snprintf(text, sizeof(text), "no grant of %s%s%s to revoke here (0 revoked)\n", key,
                 all ? "" : " on tunnel ", all ? "" : tunnel);
    reply(fd, ADMIN_PROTOCOL_OK, text);
}

static void answer_request(const struct admin_socket *admin, int fd, struct lock_table *locks,
                           const struct config *config)
{
    static const size_t unlock_len = sizeof(ADMIN_PROTOCOL_UNLOCK) - 1;
    char request[LIMIT_IDENTITY + LIMIT_TUNNEL_NAME + 32];
    struct ucred cred;
    socklen_t cred_len = sizeof(cred);
    /* Read before any answer: closing on an unread request would reset the
     * connection, and the peer would never see why. */
    ssize_t got = recv(fd, request, sizeof(request) - 1, MSG_DONTWAIT);
    if (got <= 0)
        return;
    /* The workers run as another user than the helper: they must fail this. */
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cred_len) < 0 ||
        (cred.uid != 0 && cred.uid != geteuid())) {
        reply(fd, ADMIN_PROTOCOL_DENIED, "only root may change second-factor locks\n");
        return;
    }
    request[got] = '\0';
    request[strcspn(request, "\n")] = '\0';
    if (strncmp(request, ADMIN_PROTOCOL_REVOKE, sizeof(ADMIN_PROTOCOL_REVOKE) - 1) == 0) {
        /* Grants do not depend on the lock state. */
        revoke_grants(admin, fd, request + sizeof(ADMIN_PROTOCOL_REVOKE) - 1, config);
        return;
    }
    char why[600], refusal[700];
    if (lock_table_available(locks, why, sizeof(why)) < 0) {
        snprintf(refusal, sizeof(refusal), "the lock state cannot be read, so no lock can be "
                 "listed or lifted: %s\n", why);
        reply(fd, ADMIN_PROTOCOL_ERROR, refusal);
        return;
    }
    if (strncmp(request, ADMIN_PROTOCOL_UNLOCK, unlock_len) == 0 && request[unlock_len] != '\0') {
        unlock_key(admin, fd, request + unlock_len, locks, config);
    } else if (strcmp(request, ADMIN_PROTOCOL_LIST) == 0) {
        char text[ADMIN_PROTOCOL_REPLY_MAX - 64];
        unsigned count = lock_policy_list(lock_table_policy(locks), utc_time_now(), text,
                                          sizeof(text));
        reply(fd, ADMIN_PROTOCOL_OK, count > 0 ? text : "no locks\n");
    } else {
        reply(fd, ADMIN_PROTOCOL_ERROR, "unknown request (use \"unlock KEY\" or \"list\")\n");
    }
}

static void accept_connection(struct admin_socket *admin)
{
    int fd = accept4(admin->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0)
        return;
    for (size_t i = 0; i < ADMIN_SOCKET_MAX_CONNECTIONS; i++) {
        if (admin->connections[i].fd < 0) {
            admin->connections[i] = (struct connection){
                .fd = fd, .deadline_ms = event_loop_now_ms() + TIMEOUT_MS };
            return;
        }
    }
    reply(fd, ADMIN_PROTOCOL_ERROR, "busy\n");
    close(fd);
}

void admin_socket_ready(struct admin_socket *admin, uint64_t key, short revents,
                        struct lock_table *locks, const struct config *config)
{
    if (key == LISTENING_KEY) {
        accept_connection(admin);
        return;
    }
    if (key >= ADMIN_SOCKET_MAX_CONNECTIONS)
        return;
    struct connection *connection = &admin->connections[key];
    if (connection->fd < 0)
        return;
    if (revents & POLLIN)
        answer_request(admin, connection->fd, locks, config);
    close(connection->fd);
    connection->fd = -1;
}

void admin_socket_expire(struct admin_socket *admin, uint64_t now_ms)
{
    for (size_t i = 0; i < ADMIN_SOCKET_MAX_CONNECTIONS; i++) {
        struct connection *connection = &admin->connections[i];
        if (connection->fd >= 0 && now_ms >= connection->deadline_ms) {
            close(connection->fd);
            connection->fd = -1;
        }
    }
}

uint64_t admin_socket_next_deadline(const struct admin_socket *admin, uint64_t soonest)
{
    for (size_t i = 0; i < ADMIN_SOCKET_MAX_CONNECTIONS; i++)
        if (admin->connections[i].fd >= 0 && admin->connections[i].deadline_ms < soonest)
            soonest = admin->connections[i].deadline_ms;
    return soonest;
}
