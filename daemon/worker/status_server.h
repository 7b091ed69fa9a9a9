/* status_server — each worker answers `ktlstun status` for its own connections on
 * RUNTIME_DIR/status-worker-PID.sock (mode 0660: root and the daemon's group). The
 * CLI reads every RUNTIME_DIR/status-*.sock, so other processes can answer too. */
#ifndef KTLSTUN_STATUS_SERVER_H
#define KTLSTUN_STATUS_SERVER_H

#include <stddef.h>

#include "worker/conn.h"
#include "supervisor/generation.h"

/* Opens this worker's socket in RUNTIME_DIR, writing its path into PATH. Returns the
 * listening fd, or -1 after a warning (the worker runs on without status). */
int status_server_open(const char *runtime_dir, char *path, size_t len);

/* Writes PATH for worker PID into BUF (for the parent to clean up after a crash). */
void status_server_path(const char *runtime_dir, int pid, char *buf, size_t len);

/* Accepts one client on LISTEN_FD and sends it the worker record, GEN's tunnels and
 * HOST's connections (status_record lines, then "end"). */
void status_server_answer(int listen_fd, const struct generation *gen,
                          const struct conn_host *host, int draining);

#endif
