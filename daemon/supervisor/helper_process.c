#include "supervisor/helper_process.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/event_loop.h"
#include "core/log.h"
#include "helper/helper_main.h"

#define LINK_BUFFER_BYTES (1024 * 1024)
#define RESTART_BURST 5
#define RESTART_WINDOW_MS 60000
#define STOP_GRACE_MS 3000

struct helper_process {
    pid_t pid;
    int control_fd;
    char *config_path;
    struct grants *grants;
    uint64_t restart_window_start_ms;
    unsigned restarts_in_window;
};

static int fork_helper(struct helper_process *helper, const struct config *config)
{
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0) {
        log_error("second factor helper: socketpair: %s", strerror(errno));
        return -1;
    }
    pid_t pid = fork();
    if (pid < 0) {
        log_error("second factor helper: fork: %s", strerror(errno));
        close(pair[0]);
        close(pair[1]);
        return -1;
    }
    if (pid == 0) {
        close(pair[0]);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        prctl(PR_SET_NAME, "ktlstund-pam");
        _exit(helper_main_run(pair[1], helper->config_path, config, helper->grants));
    }
    close(pair[1]);
    helper->pid = pid;
    helper->control_fd = pair[0];
    return 0;
}

struct helper_process *helper_process_start(const char *config_path, const struct config *config,
                                            struct grants *grants)
{
    struct helper_process *helper = calloc(1, sizeof(*helper));
    if (helper == NULL || (helper->config_path = strdup(config_path)) == NULL) {
        log_error("out of memory");
        free(helper);
        return NULL;
    }
    helper->control_fd = -1;
    helper->grants = grants;
    if (fork_helper(helper, config) < 0) {
        free(helper->config_path);
        free(helper);
        return NULL;
    }
    return helper;
}

int helper_process_new_link(struct helper_process *helper)
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
    char data[1] = { 'L' };
    char control[CMSG_SPACE(sizeof(int))];
    memset(control, 0, sizeof(control));
    struct iovec iov = { .iov_base = data, .iov_len = sizeof(data) };
    struct msghdr hdr = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                          .msg_controllen = sizeof(control) };
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&hdr);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &pair[1], sizeof(int));
    ssize_t sent = sendmsg(helper->control_fd, &hdr, MSG_NOSIGNAL | MSG_DONTWAIT);
    close(pair[1]);
    if (sent != (ssize_t)sizeof(data)) {
        log_error("second factor: cannot hand a worker link to the helper: %s",
                  sent < 0 ? strerror(errno) : "short write");
        close(pair[0]);
        return -1;
    }
    fcntl(pair[0], F_SETFL, O_NONBLOCK);
    return pair[0];
}

void helper_process_close_in_child(struct helper_process *helper)
{
    if (helper != NULL && helper->control_fd >= 0) {
        close(helper->control_fd);
        helper->control_fd = -1;
    }
}

void helper_process_reload(struct helper_process *helper)
{
    if (helper != NULL && helper->pid > 0)
        kill(helper->pid, SIGHUP);
}

int helper_process_running(const struct helper_process *helper)
{
    return helper != NULL && helper->pid > 0;
}

int helper_process_reaped(struct helper_process *helper, pid_t pid, int status,
                          const struct config *config)
{
    if (helper == NULL || helper->pid != pid || pid <= 0)
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
    if (fork_helper(helper, config) == 0)
        log_notice("second factor helper restarted (pid %d)", (int)helper->pid);
    return 1;
}

void helper_process_stop(struct helper_process *helper)
{
    if (helper == NULL)
        return;
    if (helper->pid > 0) {
        kill(helper->pid, SIGTERM);
        int status;
        uint64_t deadline = event_loop_now_ms() + STOP_GRACE_MS;
        while (waitpid(helper->pid, &status, WNOHANG) == 0) {
            if (event_loop_now_ms() >= deadline) {
                kill(helper->pid, SIGKILL);
                waitpid(helper->pid, &status, 0);
                break;
            }
            usleep(10000);
        }
    }
    if (helper->control_fd >= 0)
        close(helper->control_fd);
    free(helper->config_path);
    free(helper);
}
