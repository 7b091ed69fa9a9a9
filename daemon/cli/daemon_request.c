#include "cli/daemon_request.h"

#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "config/config.h"
#include "core/identity.h"
#include "core/limits.h"
#include "proto/admin_protocol.h"

int daemon_request(const char *path, const char *request, int timeout_s,
                   daemon_request_trust *trust, const void *arg, char *reply, size_t cap)
{
    struct sockaddr_un addr = { .sun_family = AF_UNIX };
    size_t len = strlen(path);
    if (len >= sizeof(addr.sun_path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(addr.sun_path, path, len + 1);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval timeout = { .tv_sec = timeout_s };
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    int result = -1;
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
        goto out;
    if (trust != NULL && !trust(fd, path, arg)) {
        errno = EPERM;
        goto out;
    }
    if (send(fd, request, strlen(request), MSG_NOSIGNAL) < 0)
        goto out;
    ssize_t got = recv(fd, reply, cap - 1, 0);
    if (got > 0) {
        reply[got] = '\0';
        result = 0;
    } else if (got == 0) {
        errno = ECONNRESET;
    }
out:;
    int saved = errno;
    close(fd);
    errno = saved;
    return result;
}

/* Returns 1 when the process listening on FD is the PAM helper's user, root, or
 * whoever runs this (a daemon started by hand as that user); 0 for anyone else, such
 * as a worker that took the socket's path, whose answers would be lies. */
static int trusted_listener(int fd, const char *path, const void *arg)
{
    const char *pam_user = arg;
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
        return 0;
    if (cred.uid == 0 || cred.uid == getuid())
        return 1;
    const struct passwd *pw = getpwnam(pam_user != NULL ? pam_user : CONFIG_DEFAULT_PAM_USER);
    if (pw != NULL && pw->pw_uid == cred.uid)
        return 1;
    fprintf(stderr, "ktlstun: %s is served by uid %u, neither root nor the PAM helper's user "
                    "(%s): not asking it\n", path, (unsigned)cred.uid,
            pam_user != NULL ? pam_user : CONFIG_DEFAULT_PAM_USER);
    return 0;
}

int daemon_request_helper(const char *runtime_dir, const char *pam_user, const char *request,
                          char *reply, size_t cap)
{
    char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
    if ((size_t)snprintf(path, sizeof(path), "%s/%s", runtime_dir, ADMIN_PROTOCOL_SOCKET) >=
        sizeof(path)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return daemon_request(path, request, 10, trusted_listener, pam_user, reply, cap);
}

int daemon_request_key_ok(const char *key)
{
    return key[0] != '\0' && strlen(key) <= LIMIT_IDENTITY && strchr(key, '\n') == NULL;
}

const char *daemon_request_key_of_subject(const char *command, const char *what,
                                          const char *key, char *buf, size_t len)
{
    if (!daemon_request_key_ok(key)) {
        fprintf(stderr, "%s: '%s' is not %s\n", command, key, what);
        return NULL;
    }
    switch (identity_subject_cn(key, buf, len)) {
    case 1:
        return buf;
    case 0:
        return key;
    default:
        fprintf(stderr, "%s: '%s' names more than one CN, or one too long; give the CN the "
                        "grant or lock carries, or the certificate's fingerprint\n", command, key);
        return NULL;
    }
}
