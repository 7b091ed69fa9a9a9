/* fd_passing — one datagram over a Unix socket with a file descriptor attached
 * (SCM_RIGHTS): how one process hands another an open descriptor. */
#ifndef KTLSTUN_FD_PASSING_H
#define KTLSTUN_FD_PASSING_H

#include <stddef.h>
#include <sys/types.h>

/* Sends DATA (LEN bytes, at least 1) on the Unix socket SOCK as one message with FD
 * attached (-1: none), with FLAGS for sendmsg (MSG_NOSIGNAL is always added). FD stays
 * the caller's: the receiver gets its own copy. Returns 0, or -1 with errno (EIO when
 * only part was sent). */
int fd_passing_send(int sock, const void *data, size_t len, int fd, int flags);

/* Receives one message into BUF (CAP bytes) from the Unix socket SOCK, with FLAGS for
 * recvmsg. *FD gets the descriptor it carried (close-on-exec; the caller owns it) or
 * -1; any further descriptors are closed. Returns the length; 0 when the peer is gone;
 * -1 with errno, *FD -1 and nothing kept (EMSGSIZE: the message or its descriptors did
 * not fit). */
ssize_t fd_passing_recv(int sock, void *buf, size_t cap, int *fd, int flags);

#endif
