/* metrics_server — the HTTP clients of metrics_listen, served from the supervisor's
 * poll loop without ever blocking it: each client socket is non-blocking, has
 * METRICS_SERVER_DEADLINE_MS from its accept to send its request and take the whole
 * answer (then it is cut), and at most METRICS_SERVER_CLIENTS are served at once
 * (more wait in the listener's backlog). GET and HEAD of /metrics (or /), /healthz
 * and /readyz are answered; anything else gets a 404. */
#ifndef KTLSTUN_METRICS_SERVER_H
#define KTLSTUN_METRICS_SERVER_H

#include <poll.h>
#include <stddef.h>
#include <stdint.h>

#define METRICS_SERVER_CLIENTS 8
#define METRICS_SERVER_DEADLINE_MS 2000

struct metrics_server;

/* What a path asks for: /metrics (or /), /healthz, /readyz. */
enum metrics_server_page { METRICS_SERVER_METRICS, METRICS_SERVER_HEALTHZ, METRICS_SERVER_READYZ };

/* Renders PAGE for one answer: a new string the caller frees, NULL when out of memory
 * (the client then gets a 500). Sets *OK to 0 when the page reports a failure (the
 * client then gets a 503 with the string); it is 1 on entry. */
typedef char *metrics_server_render_fn(void *arg, enum metrics_server_page page, int *ok);

/* Returns a server with no client, or NULL after logging. */
struct metrics_server *metrics_server_new(void);

/* Closes every client and frees SERVER (NULL is fine). */
void metrics_server_free(struct metrics_server *server);

/* Fills FDS, which has room for METRICS_SERVER_CLIENTS + 1 entries, with what the
 * next poll waits for: LISTEN_FD (unless it is -1 or every client slot is taken) and
 * each client. Returns the number of entries filled. */
size_t metrics_server_poll_fds(const struct metrics_server *server, int listen_fd, struct pollfd *fds);

/* After poll: accepts, reads, answers (rendering with RENDER and ARG) and writes as
 * FDS (the COUNT entries metrics_server_poll_fds filled) report, and cuts clients
 * whose deadline passed by NOW_MS. */
void metrics_server_handle(struct metrics_server *server, const struct pollfd *fds, size_t count,
                           uint64_t now_ms, metrics_server_render_fn *render, void *arg);

/* Milliseconds from NOW_MS until the next client deadline, or -1 when no client is
 * connected (the poll timeout may not be longer). */
int metrics_server_timeout_ms(const struct metrics_server *server, uint64_t now_ms);

#endif
