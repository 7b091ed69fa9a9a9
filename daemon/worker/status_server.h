/* status_server — each worker answers `ktlstun status` for its own connections on
 * RUNTIME_DIR/status-worker-PID.sock (mode 0660: root and the daemon's group). The
 * CLI reads every RUNTIME_DIR/status-*.sock, so other processes can answer too.
 *
 * A client is sent a snapshot taken when it was accepted, without ever blocking the
 * worker's loop: its socket is non-blocking, what does not fit its buffer goes out as
 * it drains, and a client that has not taken it all STATUS_SERVER_DEADLINE_MS after
 * its accept is cut. At most STATUS_SERVER_CLIENTS are served at once; more wait in
 * the listen backlog. */
#ifndef KTLSTUN_STATUS_SERVER_H
#define KTLSTUN_STATUS_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "core/event_loop.h"
#include "worker/conn.h"
#include "supervisor/generation.h"

#define STATUS_SERVER_CLIENTS 4
#define STATUS_SERVER_DEADLINE_MS 2000

struct status_server;

/* Opens this worker's socket in RUNTIME_DIR and serves it in LOOP: the worker record
 * (draining while *ACCEPTING is 0), GEN's tunnels and HOST's connections as
 * status_record lines, then "end". GEN, HOST and ACCEPTING must outlive the server.
 * Returns the server, or NULL after a warning (the worker runs on without status). */
struct status_server *status_server_open(struct event_loop *loop, const char *runtime_dir,
                                         const struct generation *gen,
                                         const struct conn_host *host, const int *accepting);

/* Cuts the clients whose deadline passed by NOW_MS. Returns the milliseconds until
 * the next deadline, or -1 when no client is connected. */
int status_server_sweep(struct status_server *server, uint64_t now_ms);

/* Closes SERVER's clients and socket, removes the socket file and frees SERVER (NULL
 * is fine). */
void status_server_close(struct status_server *server);

/* Writes PATH for worker PID into BUF (for the parent to clean up after a crash). */
void status_server_path(const char *runtime_dir, int pid, char *buf, size_t len);

#endif
