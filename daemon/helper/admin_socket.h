/* admin_socket — the PAM helper's end of runtime_dir/second-factor.sock, where
 * `ktlstun unlock` lifts locks and lists them and `ktlstun revoke` withdraws grants
 * while the daemon runs (admin_protocol).
 *
 * Only root or the helper's own user may use it (SO_PEERCRED): a worker, which runs
 * as another user, is refused even where the socket's mode lets it connect. The
 * socket listens as the helper's user, so `ktlstun unlock` can tell the helper from a
 * worker that took the path. At most
 * ADMIN_SOCKET_MAX_CONNECTIONS are open at once, each for one request and at most a
 * few seconds; nothing a client does can block the helper. Without the socket (no
 * runtime_dir), `ktlstun unlock` edits the state file instead. */
#ifndef KTLSTUN_ADMIN_SOCKET_H
#define KTLSTUN_ADMIN_SOCKET_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "helper/lock_table.h"

#define ADMIN_SOCKET_MAX_CONNECTIONS 8

struct admin_socket;

/* Returns a socket that listens nowhere yet, or NULL when out of memory. */
struct admin_socket *admin_socket_create(void);

/* Closes every connection and the listening socket and frees ADMIN (NULL is fine).
 * The socket's path stays: the listening socket outlives one helper. */
void admin_socket_free(struct admin_socket *admin);

/* Creates RUNTIME_DIR when missing and binds a socket to RUNTIME_DIR/second-factor.sock
 * (mode 0600, owned by the caller: helper_spawner calls it before giving up its
 * privileges). Returns the socket (non-blocking, close-on-exec; the caller owns it),
 * or -1 after logging why: the helper then goes on without. */
int admin_socket_bind(const char *runtime_dir);

/* Makes FD (from admin_socket_bind) listen. Called as the helper's user: a client's
 * SO_PEERCRED then names that user (`ktlstun unlock` checks it), whoever bound the
 * path. Returns 0, or -1 after logging why. */
int admin_socket_listen(int fd);

/* ADMIN serves the listening socket LISTEN_FD (admin_socket_bind, admin_socket_listen),
 * which it owns from now on. */
void admin_socket_adopt(struct admin_socket *admin, int listen_fd);

/* Fills FDS (ROOM entries) with the sockets to watch for input, the listening one
 * first, and KEYS with what admin_socket_ready needs to find each again. Returns how
 * many. */
size_t admin_socket_poll_fds(const struct admin_socket *admin, struct pollfd *fds,
                             uint64_t *keys, size_t room);

/* The socket watched under KEY reported REVENTS: accepts a connection, or answers its
 * request from LOCKS (saved under CONFIG's windows when it changed) and closes it. */
void admin_socket_ready(struct admin_socket *admin, uint64_t key, short revents,
                        struct lock_table *locks, const struct config *config);

/* Closes the connections whose deadline passed at NOW_MS (event_loop_now_ms). */
void admin_socket_expire(struct admin_socket *admin, uint64_t now_ms);

/* Returns the earlier of SOONEST and the next connection deadline. */
uint64_t admin_socket_next_deadline(const struct admin_socket *admin, uint64_t soonest);

/* Called with the key of each unlock the socket carries out. */
typedef void admin_socket_unlock_fn(void *arg, const char *key);

/* ADMIN calls ON_UNLOCK with ARG after each unlock (the shared state store passes it
 * on to the other gateways). */
void admin_socket_on_unlock(struct admin_socket *admin, admin_socket_unlock_fn *on_unlock,
                            void *arg);

/* Called for `ktlstun revoke`: withdraws the grants of KEY on TUNNEL (NULL: every
 * tunnel) and returns how many were live. */
typedef unsigned admin_socket_revoke_fn(void *arg, const char *tunnel, const char *key);

/* ADMIN answers revoke requests through ON_REVOKE(ARG, ...); without it they are
 * refused as unknown requests. */
void admin_socket_on_revoke(struct admin_socket *admin, admin_socket_revoke_fn *on_revoke,
                            void *arg);

#endif
