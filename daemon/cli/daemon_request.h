/* daemon_request — one request and one reply over a daemon's SOCK_SEQPACKET socket
 * (the PAM helper's admin socket, a worker's control socket), and the PAM helper's
 * trusted ask on top of it. */
#ifndef KTLSTUN_DAEMON_REQUEST_H
#define KTLSTUN_DAEMON_REQUEST_H

#include <stddef.h>

/* Decides, once connected, whether the process listening on FD may be asked:
 * returns 1 to go on, 0 to give up (EPERM). */
typedef int daemon_request_trust(int fd, const char *path, const void *arg);

/* Sends REQUEST to the socket at PATH and waits up to TIMEOUT_S seconds for the reply,
 * which goes into REPLY (CAP bytes, NUL-terminated). With TRUST, the listener is
 * checked (TRUST(fd, PATH, ARG)) before anything is sent. Returns 0, or -1 with errno
 * when nobody listens there, the listener is not trusted (EPERM) or no reply came
 * (ECONNRESET when the daemon closed first). */
int daemon_request(const char *path, const char *request, int timeout_s,
                   daemon_request_trust *trust, const void *arg, char *reply, size_t cap);

/* Sends REQUEST to the daemon's PAM helper on RUNTIME_DIR/second-factor.sock
 * (admin_protocol) and puts its answer in REPLY (CAP bytes), waiting up to 10 s. Only
 * a listener running as root, as the caller, or as PAM_USER (NULL: the default
 * pam_user) is asked; another (a worker that took the path) is refused with a
 * message on stderr. Returns 0, or -1 with errno as daemon_request (ENAMETOOLONG: the
 * path does not fit a socket address). */
int daemon_request_helper(const char *runtime_dir, const char *pam_user, const char *request,
                          char *reply, size_t cap);

/* Returns 1 when KEY can name what a request acts on (an identity, a fingerprint or an
 * address): not empty, at most LIMIT_IDENTITY bytes, no newline (one line per request);
 * else 0. */
int daemon_request_key_ok(const char *key);

/* Returns what a grant or a lock of KEY is named by: KEY itself, or, when KEY is the
 * subject of a certificate with a CN ("CN=alice,O=Example"), that CN ("alice"),
 * written into BUF (LEN bytes), since grants and locks carry the CN of such a
 * certificate. Returns NULL after telling why on stderr (as COMMAND) when KEY is not
 * daemon_request_key_ok ("'KEY' is not WHAT") or the subject names more than one CN. */
const char *daemon_request_key_of_subject(const char *command, const char *what,
                                          const char *key, char *buf, size_t len);

#endif
