/* tls_context — one SSL_CTX per tunnel: certificate chain, key, trust, CRL, policy,
 * and the verification step that turns every refusal into a reason. */
#ifndef KTLSTUN_TLS_CONTEXT_H
#define KTLSTUN_TLS_CONTEXT_H

#include <openssl/ssl.h>

#include "config/config.h"
#include "core/identity.h"

/* What the verification step learned about the peer, kept with each SSL. The chain
 * outlives the SSL (a session handed to the kernel frees it), so that the peer's
 * access can be checked again while it stays connected. */
struct tls_peer {
    struct identity *identity;    /* set once the chain verified (owned)          */
    X509 *leaf;                   /* the peer's certificate, once verified (owned) */
    STACK_OF(X509) *sent;         /* the rest of the chain it sent (owned), or NULL */
    char refusal[512];            /* set when verification refused the peer       */
};

/* The second factor's hooks into every context. The daemon registers them
 * (auth/second_factor) before it builds a context; the CLI builds contexts only to
 * check them and registers none. A gated tunnel never gets a context without them. */
struct tls_gate {
    /* Called last when building a gated tunnel's CTX; 0, or -1 after logging. */
    int (*prepare_ctx)(SSL_CTX *ctx, const struct tunnel_config *tunnel);
    /* From verification, once the chain and allow rules passed: 1 admits, 0 refuses
     * after writing the reason into REFUSAL. */
    int (*admit)(SSL *ssl, const struct tunnel_config *tunnel, const struct identity *id,
                 char *refusal, size_t refusal_len);
};

/* Registers GATE (static storage, not copied) for every context built after. */
void tls_context_set_gate(const struct tls_gate *gate);

/* Builds the SSL_CTX for TUNNEL: loads cert chain, key, CA, CRL; sets versions,
 * ciphers (TLS 1.2: ECDHE with AES-GCM or ChaCha20-Poly1305 unless `ciphers` is set),
 * groups, security level 2, no tickets/resumption/renegotiation, peer verification
 * (server mode demands a client certificate; a CA certificate is never accepted as the
 * peer's leaf, nor in server mode a subject with more than one CN). Returns the
 * context, or NULL after logging "[tunnel] cert FILE: reason" style errors. TUNNEL must
 * outlive the context (the verify step reads its allow rules). */
SSL_CTX *tls_context_create(const struct tunnel_config *tunnel);

/* Gives CTX, built by tls_context_create for TUNNEL, its private key when that is in
 * a TPM (key = handle:…): the process's own connection to the TPM, so a worker calls
 * it after its fork, before it serves (tls/tpm_key.h). Does nothing for other keys.
 * Returns 0, or -1 after logging at the line of `key`. */
int tls_context_attach_tpm_key(SSL_CTX *ctx, const struct tunnel_config *tunnel);

/* Creates an SSL for one connection on fd FD, with PEER as the place where
 * verification writes its verdict (PEER must outlive the SSL). Client mode also
 * sets SNI and the expected server name. Returns NULL after logging. */
SSL *tls_context_new_ssl(SSL_CTX *ctx, const struct tunnel_config *tunnel, int fd,
                         struct tls_peer *peer);

/* Frees what PEER holds (identity and chain) and empties it. */
void tls_context_forget_peer(struct tls_peer *peer);

/* Checks PEER, admitted earlier on a tunnel of the same name, again against TUNNEL
 * and STORE as they are now (a reloaded configuration: its trust, CRLs and CRL flags
 * in STORE, its allow rules and pins in TUNNEL), as the handshake would: the chain
 * (purpose, security level 2, expected server name in client mode), a CA certificate
 * as the leaf, then allow_check. Not the second factor. Returns 1 when PEER still
 * passes. Otherwise returns 0, writes the reason into REASON (as the handshake's
 * refusal would word it) and into *VERIFY_ERROR the X509_V_ERR_* code, or X509_V_OK
 * when the allow rules or pins refused (and when the check could not be made at all,
 * which refuses too). */
int tls_context_recheck_peer(X509_STORE *store, const struct tunnel_config *tunnel,
                             const struct tls_peer *peer, int *verify_error, char *reason,
                             size_t len);

/* Writes into BUF why the handshake on SSL failed, after SSL_do_handshake returned
 * SSL_ERROR_SSL or SSL_ERROR_SYSCALL: the verification verdict when there is one,
 * otherwise "no client certificate", "peer sent alert: ...", OpenSSL's reason or the
 * socket error. Empties OpenSSL's error queue. */
void tls_context_handshake_failure(SSL *ssl, const struct tls_peer *peer, int ssl_error,
                                   char *buf, size_t len);

/* Returns the notAfter of the tunnel's own certificate as seconds since the epoch, or
 * -1 (used for expiry warnings). */
long long tls_context_cert_not_after(SSL_CTX *ctx);

/* Returns the earliest nextUpdate among the CRLs loaded into CTX as seconds since the
 * epoch, or -1 when there is none. */
long long tls_context_crl_next_update(SSL_CTX *ctx);

#endif
