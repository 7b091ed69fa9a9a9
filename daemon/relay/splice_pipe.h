/* splice_pipe — the pipes of the kTLS relay as the kernel actually gives them: their
 * size (one page once the user's pipe pages pass fs.pipe-user-pages-soft) and the part
 * of a record written into a pipe that had no room for all of it. */
#ifndef KTLSTUN_SPLICE_PIPE_H
#define KTLSTUN_SPLICE_PIPE_H

#include <stddef.h>
#include <sys/types.h>

/* Linux's default pipe size, what every relay pipe is meant to hold. */
#define SPLICE_PIPE_DEFAULT_SIZE 65536

/* Bytes written by us (not spliced) that the pipe had no room for yet. */
struct splice_pipe_spill {
    unsigned char *data;     /* owned; NULL when nothing waits */
    size_t len;
    size_t off;
};

/* The size of the pipe PIPE_FD (F_GETPIPE_SZ); SPLICE_PIPE_DEFAULT_SIZE when the
 * kernel will not say. The first time in this process that a pipe comes back smaller,
 * logs a warning naming fs.pipe-user-pages-soft and its value. */
size_t splice_pipe_capacity(int pipe_fd);

/* Writes LEN bytes of DATA into PIPE_FD (non-blocking); what it has no room for is
 * copied into SPILL, which must be empty. Returns the bytes written (0 when the pipe
 * was full), or -1 with errno on a write error or ENOMEM. */
ssize_t splice_pipe_write(int pipe_fd, struct splice_pipe_spill *spill, const void *data,
                          size_t len);

/* Writes what SPILL holds into PIPE_FD, freeing it once all went. Returns the bytes
 * written (0 when none waits or the pipe is full), or -1 with errno. */
ssize_t splice_pipe_flush(int pipe_fd, struct splice_pipe_spill *spill);

/* Frees what SPILL holds (nothing written). */
void splice_pipe_spill_free(struct splice_pipe_spill *spill);

#endif
