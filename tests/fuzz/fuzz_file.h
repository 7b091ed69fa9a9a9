/* fuzz_file — for targets whose parser reads a file by name (the lock state, the user
 * map, the INI source): the input as a file in memory, opened through /proc. Each
 * open of /proc/self/fd/N starts at offset 0, so a parser that opens the path twice
 * (ini_source: our index, then libiniparser) reads the same bytes both times. */
#ifndef KTLSTUN_FUZZ_FILE_H
#define KTLSTUN_FUZZ_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

/* Returns a path whose file holds exactly the SIZE bytes at DATA, valid until the
 * next call. Aborts when the file cannot be written. */
static const char *fuzz_file_path(const uint8_t *data, size_t size)
{
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz-input", MFD_CLOEXEC);
        if (fd < 0)
            abort();
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    }
    if (ftruncate(fd, 0) < 0)
        abort();
    size_t done = 0;
    while (done < size) {
        ssize_t n = pwrite(fd, data + done, size - done, (off_t)done);
        if (n <= 0)
            abort();
        done += (size_t)n;
    }
    return path;
}

#endif
