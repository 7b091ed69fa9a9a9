/* post_handshake — the handshake messages a TLS peer may send once the handshake is
 * over, read from the plaintext of one handshake record (what recvmsg returns when
 * the kernel meets a record that is not application data on a kTLS socket).
 *
 * Pure: no I/O, no keys, no state. The caller reads a record one message at a time
 * and acts on each in order: a NewSessionTicket is dropped (nothing here resumes
 * sessions), a KeyUpdate rekeys, anything else ends the connection. */
#ifndef KTLSTUN_POST_HANDSHAKE_H
#define KTLSTUN_POST_HANDSHAKE_H

#include <stddef.h>

/* HandshakeType (1 byte) and length (3 bytes, big-endian) before each body. */
#define POST_HANDSHAKE_HEADER_LEN 4

enum post_handshake_kind {
    POST_HANDSHAKE_TICKET,      /* NewSessionTicket: drop it */
    POST_HANDSHAKE_KEY_UPDATE,  /* KeyUpdate with its one-byte body */
    POST_HANDSHAKE_INCOMPLETE,  /* the message goes on past the bytes given */
    POST_HANDSHAKE_MALFORMED,   /* a KeyUpdate whose body is not one byte */
    POST_HANDSHAKE_UNEXPECTED,  /* any other type: nothing else may follow the handshake */
};

struct post_handshake_message {
    enum post_handshake_kind kind;
    unsigned type;              /* HandshakeType; 0 when even the header is cut short */
    size_t length;              /* bytes the whole message takes, header included (for
                                   INCOMPLETE: what it needs; POST_HANDSHAKE_HEADER_LEN
                                   when the header itself is cut short) */
    int update_requested;       /* KEY_UPDATE: 1 when the peer asks us to update ours
                                   (request_update = update_requested), else 0 */
};

/* Reads the message at the start of DATA (LEN bytes, any content) into *MSG. Reads
 * nothing past LEN. Returns MSG->kind; for TICKET and KEY_UPDATE the next message
 * starts MSG->length bytes on, which is never past LEN. */
enum post_handshake_kind post_handshake_parse(const unsigned char *data, size_t len,
                                              struct post_handshake_message *msg);

#endif
