/* socket_reply — the reply datagram of the daemon's request sockets (the PAM helper's
 * admin socket, a worker's control socket): a status word, a newline, then text. */
#ifndef KTLSTUN_SOCKET_REPLY_H
#define KTLSTUN_SOCKET_REPLY_H

#include <stddef.h>

/* Sends "STATUS\nTEXT" on FD as one datagram of at most MAX bytes (the text is cut to
 * fit), without blocking and without SIGPIPE; a client that went away is not an error
 * worth telling anyone. */
void socket_reply_send(int fd, const char *status, const char *text, size_t max);

#endif
