#include "tls/first_record.h"

#include <string.h>

#include <openssl/crypto.h>

#define HEADER_LEN 5

struct seen {
    size_t len;
    unsigned char bytes[HEADER_LEN];
};

static CRYPTO_ONCE index_once = CRYPTO_ONCE_STATIC_INIT;
static int seen_index = -1;

static void free_seen(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    OPENSSL_free(ptr);
}

static void make_index(void)
{
    seen_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, free_seen);
}

/* OpenSSL reports each record header it reads (SSL3_RT_HEADER) before it checks it,
 * so the header of a reply that is no TLS at all is seen too. */
static void on_message(int write_p, int version, int content_type, const void *buf, size_t len,
                       SSL *ssl, void *arg)
{
    (void)version, (void)arg;
    if (write_p || content_type != SSL3_RT_HEADER)
        return;
    struct seen *seen = SSL_get_ex_data(ssl, seen_index);
    if (seen == NULL || seen->len > 0)
        return;
    seen->len = len < HEADER_LEN ? len : HEADER_LEN;
    memcpy(seen->bytes, buf, seen->len);
}

int first_record_watch(SSL *ssl)
{
    if (!CRYPTO_THREAD_run_once(&index_once, make_index) || seen_index < 0)
        return -1;
    struct seen *seen = OPENSSL_zalloc(sizeof(*seen));
    if (seen == NULL || !SSL_set_ex_data(ssl, seen_index, seen)) {
        OPENSSL_free(seen);
        return -1;
    }
    SSL_set_msg_callback(ssl, on_message);
    return 0;
}

size_t first_record_head(const SSL *ssl, unsigned char *head, size_t len)
{
    const struct seen *seen = seen_index >= 0 ? SSL_get_ex_data(ssl, seen_index) : NULL;
    if (seen == NULL)
        return 0;
    size_t n = seen->len < len ? seen->len : len;
    memcpy(head, seen->bytes, n);
    return n;
}
