/* seqpacket — one fixed-size message per datagram on a SOCK_SEQPACKET socket, for the
 * processes' message formats (proto/helper_msg, store/store_msg): a message goes whole
 * or not at all, and a datagram of another size cannot pass for one. */
#ifndef KTLSTUN_SEQPACKET_H
#define KTLSTUN_SEQPACKET_H

#include <stddef.h>
#include <sys/types.h>

/* Sends the LEN bytes at MSG on FD as one datagram (never blocking when FD is
 * non-blocking; EINTR retried). Returns 0, or -1 with errno set (EMSGSIZE when only
 * part went). */
int seqpacket_send(int fd, const void *msg, size_t len);

/* Receives one datagram from FD into MSG (LEN bytes). Returns the datagram's real
 * size (larger than LEN when it did not fit: the caller refuses it), 0 at end of
 * stream, or -1 with errno (EINTR retried). */
ssize_t seqpacket_recv(int fd, void *msg, size_t len);

#endif
