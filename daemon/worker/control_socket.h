/* control_socket — each worker's end of `ktlstun disconnect` (proto/control_protocol.h):
 * RUNTIME_DIR/control-worker-PID.sock, SOCK_SEQPACKET, mode 0600, for root and the
 * worker's own user only (SO_PEERCRED). At most CONTROL_SOCKET_MAX_CONNECTIONS are
 * open at once, each for one request and at most a few seconds; nothing a client does
 * blocks the worker's loop. */
#ifndef KTLSTUN_CONTROL_SOCKET_H
#define KTLSTUN_CONTROL_SOCKET_H

#include <stddef.h>
#include <stdint.h>

#include "core/event_loop.h"

#define CONTROL_SOCKET_MAX_CONNECTIONS 4

struct control_socket;

/* Ends the tunnels whose peer is KEY; returns how many. */
typedef unsigned (*control_socket_disconnect)(void *arg, const char *key);

/* Listens on this worker's socket in RUNTIME_DIR, in LOOP, and answers disconnect
 * requests with DISCONNECT (called with ARG). Returns the socket, or NULL after a
 * warning (the worker runs on without it). */
struct control_socket *control_socket_open(struct event_loop *loop, const char *runtime_dir,
                                           control_socket_disconnect disconnect, void *arg);

/* Closes the connections whose deadline passed at NOW_MS (event_loop_now_ms). */
void control_socket_expire(struct control_socket *control, uint64_t now_ms);

/* Closes everything, removes the socket's path and frees CONTROL (NULL is fine). */
void control_socket_free(struct control_socket *control);

/* Writes the socket path of worker PID into BUF (for the parent to clean up after a
 * crash). */
void control_socket_path(const char *runtime_dir, int pid, char *buf, size_t len);

#endif
