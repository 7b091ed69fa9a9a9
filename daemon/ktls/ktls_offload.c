#include "ktls/ktls_offload.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include <openssl/crypto.h>

#include "kmod_load.h"
#include "ktls_uapi.h"
#include "ktls/ktls_crypto_info.h"
#include "core/log.h"


static int secrets_index = -1;

static void note_keylog_line(const SSL *ssl, const char *line)
{
    struct ktls_secrets *secrets = SSL_get_ex_data(ssl, secrets_index);
    if (secrets != NULL)
        ktls_keys_note_keylog_line(secrets, line);
}

void ktls_offload_prepare_context(SSL_CTX *ctx)
{
    if (secrets_index < 0)
        secrets_index = SSL_get_ex_new_index(0, "ktls secrets", NULL, NULL, NULL);
    SSL_CTX_set_keylog_callback(ctx, note_keylog_line);
}

void ktls_offload_collect_secrets(SSL *ssl, struct ktls_secrets *secrets)
{
    SSL_set_ex_data(ssl, secrets_index, secrets);
}

int ktls_offload_kernel_ready(char *reason, size_t len)
{
    char ulps[256];
    int has_tls = kmod_load_available_ulps(ulps, sizeof(ulps));
    if (has_tls == 1)
        return 1;
    if (has_tls == 0)
        snprintf(reason, len, "the kernel offers no tls ULP (available: %s)", ulps[0] ? ulps : "none");
    else
        snprintf(reason, len, "cannot read the kernel's ULP list: %s", ulps);
    return 0;
}

int ktls_offload_attach(int fd, char *reason, size_t len)
{
    if (setsockopt(fd, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) < 0) {
        snprintf(reason, len, "setsockopt(TCP_ULP, tls): %s", strerror(errno));
        return -1;
    }
    return 0;
}

static int install_direction(int fd, int optname, const struct ktls_suite *suite,
                             const struct ktls_direction_keys *keys, uint64_t sequence)
{
    struct ktls_crypto_info info;
    const void *optval;
    socklen_t optlen;
    int result = -1;
    if (ktls_crypto_info_fill(&info, suite, keys, sequence, &optval, &optlen) == 0)
        result = setsockopt(fd, SOL_TLS, optname, optval, optlen);
    int saved = errno;
    ktls_crypto_info_wipe(&info);
    errno = saved;
    return result;
}

int ktls_offload_install(SSL *ssl, int fd, struct ktls_secrets *secrets,
                         struct ktls_offload_state *state, char *reason, size_t len)
{
    int result = -1;
    struct ktls_keys keys;
    memset(&keys, 0, sizeof(keys));
    memset(state, 0, sizeof(*state));
    state->role = SSL_is_server(ssl) ? KTLS_ROLE_SERVER : KTLS_ROLE_CLIENT;

    /* Bytes OpenSSL already pulled off the socket would be lost to the kernel. */
    if (SSL_has_pending(ssl)) {
        snprintf(reason, len, "TLS data already buffered in userspace");
        goto out;
    }
    if (ktls_keys_suite_from_ssl_cipher(SSL_get_current_cipher(ssl), &state->suite) < 0) {
        snprintf(reason, len, "cipher %s cannot be offloaded", SSL_get_cipher_name(ssl));
        goto out;
    }
    struct ktls_randoms randoms;
    if (ktls_keys_randoms_from_ssl(ssl, &randoms) < 0 ||
        ktls_keys_derive(secrets, &state->suite, state->role, &randoms, &keys) < 0) {
        snprintf(reason, len, "traffic keys could not be derived");
        goto out;
    }
    /* With no tickets and no resumption, TLS 1.3 application records start at 0; in
     * TLS 1.2 each side's Finished took sequence number 0. */
    uint64_t first_sequence = state->suite.tls_version == TLS1_3_VERSION ? 0 : 1;
    if (install_direction(fd, TLS_TX, &state->suite, &keys.tx, first_sequence) < 0) {
        /* A ULP with no keys is a plain TCP socket still: the userspace relay works. */
        snprintf(reason, len, "kernel refused TLS_TX for %s: %s", SSL_get_cipher_name(ssl),
                 strerror(errno));
        goto out;
    }
    if (install_direction(fd, TLS_RX, &state->suite, &keys.rx, first_sequence) < 0) {
        snprintf(reason, len, "kernel refused TLS_RX for %s after accepting TLS_TX: %s",
                 SSL_get_cipher_name(ssl), strerror(errno));
        result = -2;
        goto out;
    }
    result = 0;
out:
    ktls_keys_wipe_keys(&keys);
    /* TLS 1.3 keeps the traffic secrets while a KeyUpdate may need them: for the
     * connection's life, unless this kernel already refused a new key. */
    if (result != 0 || state->suite.tls_version != TLS1_3_VERSION || ktls_rekey_kernel_refused())
        ktls_keys_wipe(secrets);
    return result;
}

/* Replaces DIRECTION's key of FD with the next generation (sequence numbers restart
 * at 0 under a new key, RFC 8446 section 5.3). */
static int rekey_direction(int fd, struct ktls_secrets *secrets, struct ktls_offload_state *state,
                           enum ktls_direction direction, char *reason, size_t len)
{
    struct ktls_direction_keys next;
    memset(&next, 0, sizeof(next));
    int result = -1;
    if (ktls_rekey_kernel_refused()) {
        snprintf(reason, len, "this kernel cannot rekey kTLS (needs Linux 6.14)");
        goto out;
    }
    if (ktls_keys_update(secrets, &state->suite, state->role, direction, &next) < 0) {
        snprintf(reason, len, "next traffic key could not be derived");
        goto out;
    }
    if (install_direction(fd, direction == KTLS_DIRECTION_RX ? TLS_RX : TLS_TX, &state->suite,
                          &next, 0) < 0) {
        int error = errno;
        /* EBUSY: a kernel before 6.14 takes keys once per socket. */
        if (error == EBUSY || !state->rekey_supported)
            ktls_rekey_note_kernel(0);
        snprintf(reason, len, "this kernel cannot rekey kTLS (needs Linux 6.14): %s",
                 strerror(error));
        goto out;
    }
    state->rekey_supported = 1;
    ktls_rekey_note_kernel(1);
    result = 0;
out:
    OPENSSL_cleanse(&next, sizeof(next));
    /* A connection that cannot rekey is ending: its secrets have no further use. */
    if (result != 0)
        ktls_keys_wipe(secrets);
    return result;
}

int ktls_offload_rekey_rx(int fd, struct ktls_secrets *secrets, struct ktls_offload_state *state,
                          char *reason, size_t len)
{
    if (rekey_direction(fd, secrets, state, KTLS_DIRECTION_RX, reason, len) < 0)
        return -1;
    state->rx_rekeys++;
    return 0;
}

int ktls_offload_rekey_tx(int fd, struct ktls_secrets *secrets, struct ktls_offload_state *state,
                          char *reason, size_t len)
{
    if (rekey_direction(fd, secrets, state, KTLS_DIRECTION_TX, reason, len) < 0)
        return -1;
    state->tx_rekeys++;
    return 0;
}
