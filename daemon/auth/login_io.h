/* login_io — the TLS side both logins share (the `ktlstun login` channel and the
 * browser login page): flushing queued output, reading into a bounded buffer, and
 * dropping what was handled, with what was read wiped (it may hold one-time
 * passwords). Userspace TLS only: neither login is ever offloaded. */
#ifndef KTLSTUN_LOGIN_IO_H
#define KTLSTUN_LOGIN_IO_H

#include <stddef.h>

#include <openssl/ssl.h>

/* Writes OUT[*SENT..LEN) to SSL. Returns 1 once all of it went (then *SENT and *LEN
 * are 0), 0 while the session waits, -1 when the client is gone. */
int login_io_flush(SSL *ssl, const void *out, size_t *len, size_t *sent);

/* Reads what SSL has into IN[*LEN..CAP). Returns the bytes read (> 0), 0 when nothing
 * is pending, -1 when the client closed or failed. CAP must exceed *LEN. */
int login_io_read(SSL *ssl, unsigned char *in, size_t cap, size_t *len);

/* Drops the first HANDLED bytes of IN (*LEN long), wiping them and the freed tail. */
void login_io_consume(unsigned char *in, size_t *len, size_t handled);

#endif
