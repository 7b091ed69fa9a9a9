#include "relay/splice_pipe.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/log.h"

#define PIPE_SOFT_SYSCTL "/proc/sys/fs/pipe-user-pages-soft"

static int warned;

static void warn_small_pipe(size_t size)
{
    char value[32] = "unknown";
    FILE *f = fopen(PIPE_SOFT_SYSCTL, "re");
    if (f != NULL) {
        if (fgets(value, sizeof(value), f) == NULL)
            snprintf(value, sizeof(value), "unknown");
        value[strcspn(value, "\n")] = '\0';
        fclose(f);
    }
    log_warning("relay pipes hold %zu bytes instead of %d: this user's pipes passed "
                "fs.pipe-user-pages-soft = %s pages; connections go on, more slowly; raise "
                "that sysctl for this many offloaded connections",
                size, SPLICE_PIPE_DEFAULT_SIZE, value);
}

size_t splice_pipe_capacity(int pipe_fd)
{
    int size = fcntl(pipe_fd, F_GETPIPE_SZ);
    if (size <= 0)
        return SPLICE_PIPE_DEFAULT_SIZE;
    /* Once per process: an operator needs the sysctl's name, not a line per pipe. */
    if (size < SPLICE_PIPE_DEFAULT_SIZE && !warned) {
        warned = 1;
        warn_small_pipe((size_t)size);
    }
    return (size_t)size;
}

ssize_t splice_pipe_write(int pipe_fd, struct splice_pipe_spill *spill, const void *data,
                          size_t len)
{
    ssize_t n = write(pipe_fd, data, len);
    if (n < 0) {
        if (errno != EAGAIN)
            return -1;
        n = 0;
    }
    if ((size_t)n == len)
        return n;
    spill->data = malloc(len - (size_t)n);
    if (spill->data == NULL) {
        errno = ENOMEM;
        return -1;
    }
    memcpy(spill->data, (const unsigned char *)data + n, len - (size_t)n);
    spill->len = len - (size_t)n;
    spill->off = 0;
    return n;
}

ssize_t splice_pipe_flush(int pipe_fd, struct splice_pipe_spill *spill)
{
    if (spill->data == NULL)
        return 0;
    ssize_t n = write(pipe_fd, spill->data + spill->off, spill->len - spill->off);
    if (n < 0)
        return errno == EAGAIN ? 0 : -1;
    spill->off += (size_t)n;
    if (spill->off == spill->len)
        splice_pipe_spill_free(spill);
    return n;
}

void splice_pipe_spill_free(struct splice_pipe_spill *spill)
{
    free(spill->data);
    spill->data = NULL;
    spill->len = spill->off = 0;
}
