/* key_file — what a cert or key file holds, judged by its content without a
 * passphrase: a PKCS#12 bundle, an encrypted PEM key, a TPM-wrapped key (TSS2 PRIVATE
 * KEY), or anything else (PEM certificates and plain keys, or garbage). The loader
 * decides by it whether `key` may be left out; tls/key_source decides how to open it. */
#ifndef KTLSTUN_KEY_FILE_H
#define KTLSTUN_KEY_FILE_H

enum key_file_kind {
    KEY_FILE_UNREAD,         /* cannot be opened or read                           */
    KEY_FILE_PKCS12,         /* a DER PFX                                          */
    KEY_FILE_ENCRYPTED,      /* ENCRYPTED PRIVATE KEY, or Proc-Type: 4,ENCRYPTED   */
    KEY_FILE_TSS2,           /* TSS2 PRIVATE KEY: a blob only its TPM can use      */
    KEY_FILE_OTHER,
};

/* Why a TSS2 PRIVATE KEY file is refused, and what to give instead. Measured with
 * swtpm: such a key is loaded under a transient primary, and verifying the client's
 * CertificateVerify goes to the TPM too, which runs out of object slots; a persistent
 * key leaves them free. */
#define KEY_FILE_TSS2_REFUSED                                                              \
    "give the key's persistent handle instead: make the key persistent with "              \
    "tpm2_evictcontrol -C o -c KEY.ctx 0x81000001, then key = handle:0x81000001"

/* Reads the beginning of PATH (up to 1 MiB) and says what it holds. The bytes read
 * are wiped before they are freed; OpenSSL's error queue is left empty. */
enum key_file_kind key_file_sniff(const char *path);

#endif
