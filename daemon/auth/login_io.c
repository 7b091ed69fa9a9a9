#include "auth/login_io.h"

#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>

int login_io_flush(SSL *ssl, const void *out, size_t *len, size_t *sent)
{
    while (*sent < *len) {
        ERR_clear_error();
        int n = SSL_write(ssl, (const unsigned char *)out + *sent, (int)(*len - *sent));
        if (n > 0) {
            *sent += (size_t)n;
            continue;
        }
        int error = SSL_get_error(ssl, n);
        ERR_clear_error();
        if (error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ)
            return 0;
        return -1;
    }
    *len = *sent = 0;
    return 1;
}

int login_io_read(SSL *ssl, unsigned char *in, size_t cap, size_t *len)
{
    ERR_clear_error();
    int n = SSL_read(ssl, in + *len, (int)(cap - *len));
    if (n > 0) {
        *len += (size_t)n;
        return n;
    }
    int error = SSL_get_error(ssl, n);
    ERR_clear_error();
    return error == SSL_ERROR_WANT_READ || error == SSL_ERROR_WANT_WRITE ? 0 : -1;
}

void login_io_consume(unsigned char *in, size_t *len, size_t handled)
{
    OPENSSL_cleanse(in, handled);
    memmove(in, in + handled, *len - handled);
    *len -= handled;
    OPENSSL_cleanse(in + *len, handled);
}
