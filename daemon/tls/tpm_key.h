/* tpm_key — private keys kept in a TPM 2.0 under a persistent handle
 * (key = handle:0x81…), used through OpenSSL's tpm2 provider (tpm2-openssl). The
 * provider opens its own connection to the TPM (TPM2OPENSSL_TCTI, else the kernel's
 * /dev/tpmrm0) when it is loaded, and a connection shared across fork() would
 * interleave the commands of several processes: a process that forks (the
 * supervisor) loads it only into a short-lived library context of its own, and each
 * worker loads it after its fork. Only the key's signatures go to the TPM: the TLS
 * context stays in OpenSSL's default library context, so that digests, ciphers, key
 * exchange and the verification of the peer's signatures never reach it. */
#ifndef KTLSTUN_TPM_KEY_H
#define KTLSTUN_TPM_KEY_H

#include <stddef.h>

#include <openssl/ssl.h>

/* Opens the key URI (handle:0x81…) in a library context of its own with the tpm2
 * provider, and copies its public half out. The provider, and with it the connection
 * to the TPM, is unloaded before this returns. Returns the public key (the caller
 * frees it), or NULL with the reason for users in REASON (also for a key that is not
 * an EC key). OpenSSL's error queue is left empty. */
EVP_PKEY *tpm_key_public(const char *uri, char *reason, size_t len);

/* Loads the tpm2 provider into a library context of this process (once), loads the
 * key URI through it and makes CTX's private key one whose signatures the TPM makes
 * (CTX must hold the key's certificate already). A test signature, verified with the
 * certificate's public key, shows that the key belongs to it. For a worker, after its
 * fork. Returns 0, or -1 with the reason in REASON. OpenSSL's error queue is left
 * empty. */
int tpm_key_attach(SSL_CTX *ctx, const char *uri, char *reason, size_t len);

#endif
