#include "worker/status_server.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "worker/conn_limit.h"
#include "core/log.h"
#include "auth/second_factor.h"
#include "proto/status_record.h"

void status_server_path(const char *runtime_dir, int pid, char *buf, size_t len)
{
    snprintf(buf, len, "%s/status-worker-%d.sock", runtime_dir, pid);
}

int status_server_open(const char *runtime_dir, char *path, size_t len)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    status_server_path(runtime_dir, (int)getpid(), path, len);
    if (strlen(path) >= sizeof(addr.sun_path)) {
        log_warning("status socket %s: path too long; `ktlstun status` will not see this worker",
                    path);
        return -1;
    }
    memcpy(addr.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        goto fail;
    unlink(path);
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 || chmod(path, 0660) < 0 ||
        listen(fd, 16) < 0) {
        close(fd);
        goto fail;
    }
    return fd;
fail:
    log_warning("status socket %s: %s; `ktlstun status` will not see this worker", path,
                strerror(errno));
    return -1;
}

static void describe_tunnels(FILE *out, const struct generation *gen)
{
    for (size_t i = 0; i < gen->tunnel_count; i++) {
        const struct tunnel_config *t = gen->tunnels[i].config;
        char listen[300], target[300];
        status_record_begin(out, "tunnel");
        status_record_text(out, "name", t->name);
        status_record_text(out, "mode", config_mode_name(t->mode));
        status_record_text(out, "listen", address_format(&t->listen, listen, sizeof(listen)));
        status_record_text(out, "target", address_format(&t->target, target, sizeof(target)));
        status_record_text(out, "ktls", config_ktls_name(t->ktls));
        status_record_number(out, "generation", gen->number);
        status_record_end(out);
    }
}

void status_server_answer(int listen_fd, const struct generation *gen,
                          const struct conn_host *host, int draining)
{
    int client = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    if (client < 0)
        return;
    char *text = NULL;
    size_t text_len = 0;
    FILE *out = open_memstream(&text, &text_len);
    if (out == NULL) {
        close(client);
        return;
    }
    status_record_begin(out, "worker");
    status_record_number(out, "pid", (uint64_t)getpid());
    status_record_number(out, "generation", gen->number);
    status_record_number(out, "draining", (uint64_t)draining);
    status_record_number(out, "connections", host->live_count);
    status_record_end(out);
    describe_tunnels(out, gen);
    conn_describe_all(host, out);
    second_factor_describe_grants(out);
    fputs("end\n", out);
    fclose(out);
    /* Blocking with a deadline: the reader is our CLI, but a stuck one must not hold
     * the event loop for long. */
    struct timeval second = { .tv_sec = 1 };
    setsockopt(client, SOL_SOCKET, SO_SNDTIMEO, &second, sizeof(second));
    size_t sent = 0;
    while (sent < text_len) {
        ssize_t n = send(client, text + sent, text_len - sent, MSG_NOSIGNAL);
        if (n <= 0)
            break;
        sent += (size_t)n;
    }
    free(text);
    close(client);
}
