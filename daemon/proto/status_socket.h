/* status_socket — the asking end of the workers' status sockets in runtime_dir: each
 * answers with status_record lines and a last line "end". */
#ifndef KTLSTUN_STATUS_SOCKET_H
#define KTLSTUN_STATUS_SOCKET_H

/* Called with each line of an answer (no newline; the function may modify it, not
 * keep it). Returns 0 to go on, -1 to stop reading that socket. */
typedef int (*status_socket_line_fn)(char *line, void *arg);

/* Asks every status socket in RUNTIME_DIR ("status-*.sock") in turn, each with a 3 s
 * timeout, and hands EACH every line before "end" (ARG passed through). Returns the
 * number of sockets that answered up to their "end": 0 when no daemon runs there or
 * its sockets cannot be reached. *DENIED (when not NULL) is set to the number of
 * sockets this process may not connect to, or to 1 when it may not even list
 * RUNTIME_DIR: a daemon may run there that it is not allowed to ask. */
unsigned status_socket_ask_all(const char *runtime_dir, status_socket_line_fn each, void *arg,
                               unsigned *denied);

#endif
