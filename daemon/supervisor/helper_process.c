#include "supervisor/helper_process.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/event_loop.h"
#include "core/log.h"
#include "core/privdrop.h"
#include "helper/helper_main.h"
#include "helper/helper_spawner.h"
#include "supervisor/daemonize.h"
#include "supervisor/runtime_lock.h"
#include "proto/admin_protocol.h"

#define LINK_BUFFER_BYTES (1024 * 1024)
#define RESTART_BURST 5
#define RESTART_WINDOW_MS 60000
#define STOP_GRACE_MS 3000
#define SPAWN_ANSWER_MS 5000

struct helper_process {
    pid_t pid;                /* the helper */
    int control_fd;
    pid_t spawner_pid;        /* helper_spawner, which starts every helper */
    int spawner_fd;
    unsigned reloads;         /* since start: a restarted helper must read the config */
    char admin_path[4200];    /* the admin socket the spawner made, removed at stop */
    uint64_t restart_window_start_ms;
    unsigned restarts_in_window;
};

/* Sends one byte, with FD attached when it is not -1. Returns 0 or -1 (errno). */
static int send_byte(int sock, char byte, int fd)
{
    union { char bytes[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
    struct msghdr hdr = { .msg_iov = &iov, .msg_iovlen = 1 };
    if (fd >= 0) {
        memset(&control, 0, sizeof(control));
        hdr.msg_control = control.bytes;
        hdr.msg_controllen = sizeof(control.bytes);
        struct cmsghdr *cmsg = CMSG_FIRSTHDR(&hdr);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    }
    ssize_t sent = sendmsg(sock, &hdr, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (sent == 1)
        return 0;
    if (sent >= 0)
        errno = EIO;
    return -1;
}

/* Asks the spawner for a helper. Returns 0, or -1 after logging. */
static int spawn_helper(struct helper_process *helper)
{
    int pair[2];
    if (helper->spawner_fd < 0) {
        log_error("second factor helper: its launcher is gone; logins stay unavailable until "
                  "the next restart of ktlstund");
        return -1;
    }
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
        log_error("second factor helper: socketpair: %s", strerror(errno));
        return -1;
    }
    int rc = send_byte(helper->spawner_fd, 'S', pair[1]);
    close(pair[1]);
    int32_t pid = -1;
    struct pollfd pfd = { .fd = helper->spawner_fd, .events = POLLIN };
    if (rc == 0 && poll(&pfd, 1, SPAWN_ANSWER_MS) == 1 &&
        recv(helper->spawner_fd, &pid, sizeof(pid), MSG_DONTWAIT) == (ssize_t)sizeof(pid) &&
        pid > 0) {
        helper->pid = pid;
        helper->control_fd = pair[0];
        return 0;
    }
    log_error("second factor helper: its launcher did not start it (%s)",
              rc < 0 ? strerror(errno) : "no answer");
    close(pair[0]);
    return -1;
}

/* The helper's user: pam_user, by default ktlstun-pam where it exists, as long as
 * ktlstund may switch users. Returns 0, or -1 after logging. */
static int helper_user(const struct config *config, struct privdrop_target *user)
{
    char err[256];
    const char *name = config->global.pam_user != NULL ? config->global.pam_user
                                                        : CONFIG_DEFAULT_PAM_USER;
    memset(user, 0, sizeof(*user));
    if (!privdrop_can_switch()) {
        struct privdrop_target wanted;
        if (config->global.pam_user != NULL &&
            (privdrop_resolve(name, NULL, &wanted, err, sizeof(err)) < 0 ||
             wanted.uid != geteuid())) {
            log_error("[global] pam_user = %s needs ktlstund started as root or with "
                      "CAP_SETUID and CAP_SETGID; logins stay unavailable", name);
            return -1;
        }
        for (size_t i = 0; i < config->tunnel_count; i++) {
            if (config->tunnels[i].second_factor == SECOND_FACTOR_PAM) {
                log_warning("second factor: the PAM helper runs as ktlstund's own user, like "
                            "the workers, so a compromised worker could reach the one-time "
                            "password secrets: start ktlstund as root or with CAP_SETUID and "
                            "CAP_SETGID (the shipped unit) to run it as %s", name);
                break;
            }
        }
        return 0;
    }
    if (privdrop_resolve_member(name, user, err, sizeof(err)) == 0)
        return 0;
    if (config->global.pam_user != NULL) {
        log_error("[global] pam_user: %s; logins stay unavailable", err);
        return -1;
    }
    memset(user, 0, sizeof(*user));
    log_warning("second factor: the PAM helper keeps ktlstund's user: %s (create it with "
                "`systemd-sysusers ktlstun.conf`, or set [global] pam_user)", err);
    return 0;
}

struct helper_process *helper_process_start(const char *config_path, const struct config *config,
                                            struct grants *grants)
{
    struct helper_spawner_params params = { .config_path = config_path, .config = config,
                                            .grants = grants };
    if (helper_user(config, &params.user) < 0)
        return NULL;
    struct helper_process *helper = calloc(1, sizeof(*helper));
    if (helper == NULL) {
        log_error("out of memory");
        return NULL;
    }
    helper->control_fd = helper->spawner_fd = -1;
    snprintf(helper->admin_path, sizeof(helper->admin_path), "%s/%s",
             config->global.runtime_dir, ADMIN_PROTOCOL_SOCKET);
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
        log_error("second factor helper: socketpair: %s", strerror(errno));
        free(helper);
        return NULL;
    }
    pid_t pid = fork();
    if (pid < 0) {
        log_error("second factor helper: fork: %s", strerror(errno));
        close(pair[0]);
        close(pair[1]);
        free(helper);
        return NULL;
    }
    if (pid == 0) {
        daemonize_forget();
        runtime_lock_close_in_child();
        close(pair[0]);
        params.request_fd = pair[1];
        _exit(helper_spawner_run(&params));
    }
    close(pair[1]);
    helper->spawner_pid = pid;
    helper->spawner_fd = pair[0];
    if (spawn_helper(helper) < 0) {
        helper_process_stop(helper);
        return NULL;
    }
    return helper;
}

/* A new socketpair: one end goes to the helper with BYTE ('L': a worker's link). */
static int hand_link(struct helper_process *helper, char byte)
{
    if (helper == NULL || helper->pid <= 0)
        return -1;
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
        log_error("second factor: socketpair: %s", strerror(errno));
        return -1;
    }
    int size = LINK_BUFFER_BYTES;
    for (int i = 0; i < 2; i++)
        setsockopt(pair[i], SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    int rc = send_byte(helper->control_fd, byte, pair[1]);
    close(pair[1]);
    if (rc < 0) {
        log_error("second factor: cannot hand a link to the helper: %s", strerror(errno));
        close(pair[0]);
        return -1;
    }
    fcntl(pair[0], F_SETFL, O_NONBLOCK);
    return pair[0];
}

int helper_process_new_link(struct helper_process *helper)
{
    return hand_link(helper, 'L');
}

int helper_process_new_lease_link(struct helper_process *helper)
{
    return hand_link(helper, HELPER_MAIN_LEASE_LINK);
}

void helper_process_close_in_child(struct helper_process *helper)
{
    if (helper == NULL)
        return;
    /* A worker holding the launcher's socket could start helpers of its own. */
    if (helper->spawner_fd >= 0)
        close(helper->spawner_fd);
    if (helper->control_fd >= 0)
        close(helper->control_fd);
    helper->spawner_fd = helper->control_fd = -1;
}

void helper_process_reload(struct helper_process *helper)
{
    if (helper == NULL)
        return;
    helper->reloads++;
    /* A message, not SIGHUP: the helper runs as another user, whom this process may
     * not be allowed to signal. */
    if (helper->pid > 0 && send_byte(helper->control_fd, HELPER_MAIN_RELOAD, -1) < 0)
        log_error("second factor helper: cannot ask it to reload: %s", strerror(errno));
}

int helper_process_running(const struct helper_process *helper)
{
    return helper != NULL && helper->pid > 0;
}

int helper_process_reaped(struct helper_process *helper, pid_t pid, int status,
                          const struct config *config)
{
    if (helper == NULL || pid <= 0)
        return 0;
    if (pid == helper->spawner_pid) {
        helper->spawner_pid = 0;
        if (helper->spawner_fd >= 0)
            close(helper->spawner_fd);
        helper->spawner_fd = -1;
        if (config != NULL)
            log_error("second factor: the helper's launcher %d ended (status %d); a helper "
                      "that stops is not started again", (int)pid, status);
        return 0;
    }
    if (helper->pid != pid)
        return 0;
    helper->pid = 0;
    if (helper->control_fd >= 0) {
        close(helper->control_fd);
        helper->control_fd = -1;
    }
    if (config == NULL)
        return 1;   /* the daemon is stopping: no new helper */
    if (WIFSIGNALED(status))
        log_error("second factor helper %d killed by signal %d", (int)pid, WTERMSIG(status));
    else
        log_error("second factor helper %d exited with status %d", (int)pid, WEXITSTATUS(status));
    uint64_t now = event_loop_now_ms();
    if (now - helper->restart_window_start_ms > RESTART_WINDOW_MS) {
        helper->restart_window_start_ms = now;
        helper->restarts_in_window = 0;
    }
    if (++helper->restarts_in_window > RESTART_BURST) {
        log_error("second factor helper keeps dying: logins stay unavailable until the next "
                  "restart of ktlstund");
        return 1;
    }
    if (spawn_helper(helper) == 0) {
        log_notice("second factor helper restarted (pid %d)", (int)helper->pid);
        /* It starts with the configuration ktlstund started with. */
        if (helper->reloads > 0 && send_byte(helper->control_fd, HELPER_MAIN_RELOAD, -1) < 0)
            log_error("second factor helper: cannot ask it to reload: %s", strerror(errno));
    }
    return 1;
}

/* Ends PID, which was asked to stop: SIGTERM where this process may signal it, then
 * SIGKILL after a few seconds. Gives up waiting when it may not (the helper's user
 * differs; it stops by itself when its channel closes, and systemd's KillMode= ends
 * what is left). */
static void end_process(pid_t pid)
{
    int status;
    int may_signal = kill(pid, SIGTERM) == 0;
    uint64_t deadline = event_loop_now_ms() + STOP_GRACE_MS;
    while (waitpid(pid, &status, WNOHANG) == 0) {
        if (event_loop_now_ms() >= deadline) {
            if (may_signal && kill(pid, SIGKILL) == 0)
                waitpid(pid, &status, 0);
            else
                log_warning("second factor: process %d did not stop", (int)pid);
            return;
        }
        usleep(10000);
    }
}

void helper_process_stop(struct helper_process *helper)
{
    if (helper == NULL)
        return;
    /* Closing the channels is the stop request both processes understand. */
    if (helper->control_fd >= 0)
        close(helper->control_fd);
    if (helper->spawner_fd >= 0)
        close(helper->spawner_fd);
    if (helper->pid > 0)
        end_process(helper->pid);
    if (helper->spawner_pid > 0)
        end_process(helper->spawner_pid);
    unlink(helper->admin_path);
    free(helper);
}
