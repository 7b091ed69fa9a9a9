#include "proto/status_socket.h"

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

/* Reads one status socket to its "end" line. Returns 0, -2 when this process may not
 * connect to it, or -1 (not answering, or EACH stopped it). */
static int ask(const char *path, status_socket_line_fn each, void *arg)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(addr.sun_path))
        return -1;
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval timeout = { .tv_sec = 3 };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        int denied = errno == EACCES || errno == EPERM;
        close(fd);
        return denied ? -2 : -1;
    }
    FILE *in = fdopen(fd, "r");
    if (in == NULL) {
        close(fd);
        return -1;
    }
    char *line = NULL;
    size_t size = 0;
    ssize_t len;
    int ended = 0, stopped = 0;
    while (!ended && !stopped && (len = getline(&line, &size, in)) > 0) {
        if (line[len - 1] == '\n')
            line[len - 1] = '\0';
        if (strcmp(line, "end") == 0)
            ended = 1;
        else
            stopped = each(line, arg) < 0;
    }
    free(line);
    fclose(in);
    return ended ? 0 : -1;
}

unsigned status_socket_ask_all(const char *runtime_dir, status_socket_line_fn each, void *arg,
                               unsigned *denied)
{
    char pattern[4200];
    snprintf(pattern, sizeof(pattern), "%s/status-*.sock", runtime_dir);
    glob_t found;
    unsigned answered = 0;
    if (denied != NULL)
        *denied = access(runtime_dir, R_OK | X_OK) < 0 && errno == EACCES ? 1 : 0;
    if (glob(pattern, 0, NULL, &found) != 0)
        return 0;
    for (size_t i = 0; i < found.gl_pathc; i++) {
        int asked = ask(found.gl_pathv[i], each, arg);
        if (asked == 0)
            answered++;
        else if (asked == -2 && denied != NULL)
            (*denied)++;
    }
    globfree(&found);
    return answered;
}
