/* ktls_offload — hands an established TLS session to the kernel.
 *
 * The traffic secrets come from OpenSSL's keylog callback; record keys are derived
 * (ktls_keys) and installed with setsockopt(SOL_TLS, TLS_TX / TLS_RX), after which
 * the SSL object can be freed: the socket itself now speaks TLS records. */
#ifndef KTLSTUN_KTLS_OFFLOAD_H
#define KTLSTUN_KTLS_OFFLOAD_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "ktls/ktls_keys.h"
#include "ktls/ktls_rekey.h"
#include "ktls/post_handshake.h"

/* What the relay needs to know about an offloaded socket. */
struct ktls_offload_state {
    struct ktls_suite suite;
    enum ktls_role role;
    int rekey_supported;       /* the kernel accepted a new key (set on first rekey) */
    struct ktls_rekey_policy policy; /* our own rekeys beyond the cipher's limit; the
                                        caller sets it after ktls_offload_install */
    int tx_update_requested;   /* the peer asked for our KeyUpdate: it goes out before
                                  any more data */
    uint64_t rx_rekeys;        /* peer KeyUpdates taken */
    uint64_t tx_rekeys;        /* our KeyUpdates sent */
    struct ktls_rekey_usage tx_usage; /* how far our current key has gone */
    struct post_handshake_buffer handshake; /* a message split across records */
};

/* Makes CTX report traffic secrets to ktls_offload_note_secrets' storage. */
void ktls_offload_prepare_context(SSL_CTX *ctx);

/* Tells the keylog callback where SSL's secrets go (SECRETS must outlive SSL's
 * handshake; NULL to stop collecting). */
void ktls_offload_collect_secrets(SSL *ssl, struct ktls_secrets *secrets);

/* Returns 1 when this kernel offers the tls ULP, 0 when not (REASON says why). */
int ktls_offload_kernel_ready(char *reason, size_t len);

/* Attaches the tls ULP to FD, which must be a connected TCP socket and still
 * ESTABLISHED: the kernel refuses it once the peer has sent FIN (CLOSE_WAIT), which a
 * fast client does before our handshake ends. So this runs before the handshake; with
 * no keys set yet the socket still behaves as plain TCP for OpenSSL. Returns 0, or -1
 * with REASON. */
int ktls_offload_attach(int fd, char *reason, size_t len);

/* Installs kTLS on FD (ULP attached with ktls_offload_attach) for SSL's completed
 * handshake. Returns 0 (STATE filled; SSL can
 * be freed), -1 when nothing was changed on the socket (the userspace relay can carry
 * on; REASON says why), or -2 when the socket was changed halfway and the connection
 * must be closed. SECRETS are wiped, except TLS 1.3 traffic secrets after a success on
 * a kernel that has not refused a new key: a KeyUpdate derives the next key from them,
 * and the caller wipes them with the connection. Keys are never logged. */
int ktls_offload_install(SSL *ssl, int fd, struct ktls_secrets *secrets,
                         struct ktls_offload_state *state, char *reason, size_t len);

/* TLS 1.3 KeyUpdate received: derives the peer's next key and installs it for RX.
 * Returns 0, or -1 when the kernel cannot rekey (before Linux 6.14) or derivation
 * failed (REASON says which). SECRETS keep the current generation; the next key is
 * wiped once the kernel has it. */
int ktls_offload_rekey_rx(int fd, struct ktls_secrets *secrets, struct ktls_offload_state *state,
                          char *reason, size_t len);

/* Our KeyUpdate record has just been sent under the current key: derives our next
 * key and installs it for TX, so every later record uses it. Returns 0, or -1 (REASON
 * says why; the connection must end without another record, since the peer now
 * expects the new key). */
int ktls_offload_rekey_tx(int fd, struct ktls_secrets *secrets, struct ktls_offload_state *state,
                          char *reason, size_t len);

#endif
