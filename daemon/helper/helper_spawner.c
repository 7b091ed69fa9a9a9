#include "helper/helper_spawner.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"
#include "helper/admin_socket.h"
#include "helper/helper_main.h"

/* Listening sockets inherited from the parent (tunnel listeners, systemd's) must not
 * stay open here or in a helper: a removed tunnel's port would stay bound. */
static void close_inherited_listeners(int keep)
{
    for (int fd = 3; fd < 4096; fd++) {
        if (fd == keep)
            continue;
        int listening = 0;
        socklen_t len = sizeof(listening);
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening)
            close(fd);
    }
}

/* The helper's user must own a state_dir made here: only it reads and writes the
 * lock state. One that exists is left as it is. */
static void prepare_state_dir(const char *dir, const struct privdrop_target *user)
{
    if (mkdir(dir, 0700) < 0) {
        if (errno != EEXIST)
            log_error("cannot create state_dir %s: %s", dir, strerror(errno));
        return;
    }
    if (user->enabled && geteuid() == 0 && chown(dir, user->uid, user->gid) < 0)
        log_error("state_dir %s: chown: %s", dir, strerror(errno));
}

/* Starts one helper on CONTROL_FD as a child of the supervisor. Returns its pid, or
 * -1 after logging. */
static pid_t start_helper(const struct helper_spawner_params *p, int control_fd, int admin_fd)
{
    /* Raw clone with no new stack behaves like fork. */
    pid_t pid = (pid_t)syscall(SYS_clone, CLONE_PARENT | SIGCHLD, NULL, NULL, NULL, NULL);
    if (pid < 0) {
        log_error("second factor helper: clone: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* A helper must not be able to start helpers of its own. */
        close(p->request_fd);
        prctl(PR_SET_NAME, "ktlstund-pam");
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        _exit(helper_main_run(control_fd, p->config_path, p->config, p->grants, admin_fd));
    }
    return pid;
}

/* Returns the descriptor a request carried, 0 when the supervisor is gone, or -1
 * for a request without one (ignored). */
static int receive_request(int fd, int *received)
{
    char byte;
    union { char bytes[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.bytes,
                          .msg_controllen = sizeof(control.bytes) };
    ssize_t got;
    do
        got = recvmsg(fd, &msg, MSG_CMSG_CLOEXEC);
    while (got < 0 && errno == EINTR);
    if (got <= 0)
        return 0;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (c == NULL || c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
        c->cmsg_len != CMSG_LEN(sizeof(int)))
        return -1;
    memcpy(received, CMSG_DATA(c), sizeof(int));
    return 1;
}

int helper_spawner_run(const struct helper_spawner_params *p)
{
    prctl(PR_SET_NAME, "ktlstund-spawn");
    close_inherited_listeners(p->request_fd);
    int admin_fd = admin_socket_bind(p->config->global.runtime_dir);
    prepare_state_dir(p->config->global.state_dir, &p->user);
    /* Without a user of its own the helper stays as it was started (a root helper
     * keeps what root's PAM modules may need); with one it gives up everything. */
    if (p->user.enabled ? privdrop_apply(&p->user) < 0 : privdrop_clear_capabilities(0) < 0) {
        log_error("second factor: the PAM helper cannot run as %s; logins stay unavailable",
                  p->user.enabled ? p->user.user : "the daemon's user without capabilities");
        return EXIT_FAILURE;
    }
    /* Listening only now: a client's SO_PEERCRED names the listener at listen(), and
     * `ktlstun unlock` must find the helper's user there, not the workers'. */
    if (admin_fd >= 0 && admin_socket_listen(admin_fd) < 0) {
        close(admin_fd);
        admin_fd = -1;
    }
    /* After the drop, which clears it. */
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    for (;;) {
        int control_fd = -1;
        int got = receive_request(p->request_fd, &control_fd);
        if (got == 0)
            break;
        if (got < 0)
            continue;
        int32_t pid = start_helper(p, control_fd, admin_fd);
        close(control_fd);
        if (send(p->request_fd, &pid, sizeof(pid), MSG_NOSIGNAL) != (ssize_t)sizeof(pid))
            break;
    }
    if (admin_fd >= 0)
        close(admin_fd);
    return EXIT_SUCCESS;
}
