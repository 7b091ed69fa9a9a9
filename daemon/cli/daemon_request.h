/* daemon_request — one request and one reply over a daemon's SOCK_SEQPACKET socket
 * (the PAM helper's admin socket, a worker's control socket). */
#ifndef KTLSTUN_DAEMON_REQUEST_H
#define KTLSTUN_DAEMON_REQUEST_H

#include <stddef.h>

/* Sends REQUEST to the socket at PATH and waits up to TIMEOUT_S seconds for the reply,
 * which goes into REPLY (CAP bytes, NUL-terminated). Returns 0, or -1 with errno when
 * nobody listens there or no reply came (ECONNRESET when the daemon closed first). */
int daemon_request(const char *path, const char *request, int timeout_s, char *reply,
                   size_t cap);

#endif
