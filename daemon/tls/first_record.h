/* first_record — the first bytes a client's server sent, kept with the SSL, so that a
 * failed handshake can tell a server that does not speak TLS (a plain HTTP port) from
 * one that does: OpenSSL's words for it ("wrong version number") say neither. */
#ifndef KTLSTUN_FIRST_RECORD_H
#define KTLSTUN_FIRST_RECORD_H

#include <stddef.h>

#include <openssl/ssl.h>

/* Client SSL, before its handshake: remembers the header of the first record it reads
 * (through SSL's message callback, which it takes). Returns 0, or -1 when out of
 * memory: then nothing is remembered, the handshake is unaffected. */
int first_record_watch(SSL *ssl);

/* Copies into HEAD (LEN bytes) the first bytes SSL's server sent, as far as they were
 * seen (a record header: 5 bytes). Returns how many, 0 when none were. */
size_t first_record_head(const SSL *ssl, unsigned char *head, size_t len);

#endif
