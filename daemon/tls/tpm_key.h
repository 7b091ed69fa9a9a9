/* tpm_key — private keys kept in a TPM 2.0 under a persistent handle
 * (key = handle:0x81…), used through OpenSSL's tpm2 provider (tpm2-openssl). The
 * provider opens its own connection to the TPM (TPM2OPENSSL_TCTI, else the kernel's
 * /dev/tpmrm0) when it is loaded, and a connection shared across fork() would
 * interleave the commands of several processes. So a process that forks (the
 * supervisor) only ever loads it into a short-lived library context of its own,
 * and the TLS contexts of TPM tunnels live in a separate library context with the
 * default provider alone, into which each worker loads the tpm2 provider after its
 * fork (its own connection) and then the key. */
#ifndef KTLSTUN_TPM_KEY_H
#define KTLSTUN_TPM_KEY_H

#include <stddef.h>

#include <openssl/ssl.h>

/* The property query of TPM tunnels: signatures made by the TPM, while digests,
 * ciphers, random numbers and ephemeral keys stay with the default provider. */
#define TPM_KEY_PROPQ "?tpm2.signature=yes,tpm2.digest!=yes,tpm2.cipher!=yes,tpm2.rand!=yes"

/* Returns the process's library context for TPM tunnels (made on first use, with the
 * default provider; the tpm2 provider is added by tpm_key_attach only), or NULL when
 * it cannot be made. Owned by the module; lives as long as the process. */
OSSL_LIB_CTX *tpm_key_libctx(void);

/* Opens the key URI (handle:0x81…) in a library context of its own with the tpm2
 * provider, and copies its public half out. The provider, and with it the connection
 * to the TPM, is unloaded before this returns. Returns the public key (the caller
 * frees it), or NULL with the reason for users in REASON. OpenSSL's error queue is left
 * empty. */
EVP_PKEY *tpm_key_public(const char *uri, char *reason, size_t len);

/* Loads the tpm2 provider into tpm_key_libctx() (once per process), loads the key URI
 * through it and makes it CTX's private key (CTX must have been made in
 * tpm_key_libctx() with TPM_KEY_PROPQ and hold its certificate), checking that it
 * belongs to the certificate. For a worker, after its fork. Returns 0, or -1 with the
 * reason in REASON. OpenSSL's error queue is left empty. */
int tpm_key_attach(SSL_CTX *ctx, const char *uri, char *reason, size_t len);

#endif
