/* post_handshake — the handshake messages a TLS peer may send once the handshake is
 * over, read from the plaintext of one handshake record (what recvmsg returns when
 * the kernel meets a record that is not application data on a kTLS socket).
 *
 * post_handshake_parse is pure: no I/O, no keys, no state. post_handshake_feed
 * joins messages that a peer split across records (RFC 8446 section 5.1 allows it) in
 * a small bounded buffer and hands each whole message on in order: a NewSessionTicket
 * is dropped (nothing here resumes sessions), a KeyUpdate rekeys, anything else ends
 * the connection. */
#ifndef KTLSTUN_POST_HANDSHAKE_H
#define KTLSTUN_POST_HANDSHAKE_H

#include <stddef.h>

/* The largest message post_handshake_feed joins across records; a larger one (a
 * NewSessionTicket this size is already absurd) ends the connection. */
#define POST_HANDSHAKE_MAX_MESSAGE 8192

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

/* The part of a message that an earlier record left. Zero-initialise it; free it
 * with post_handshake_buffer_free. Empty, it holds no memory. */
struct post_handshake_buffer {
    unsigned char *bytes;       /* POST_HANDSHAKE_MAX_MESSAGE bytes while a message is open */
    size_t len;
};

/* Called by post_handshake_feed for each whole message (MSG parsed, DATA its
 * MSG->length bytes); returns 0 to go on, or non-zero to stop. */
typedef int (*post_handshake_handler)(void *ctx, const unsigned char *data,
                                      const struct post_handshake_message *msg);

enum post_handshake_feed_result {
    POST_HANDSHAKE_FED,         /* every whole message handled; a tail may wait in BUFFER */
    POST_HANDSHAKE_STOPPED,     /* the handler returned non-zero */
    POST_HANDSHAKE_OVERSIZE,    /* a message longer than POST_HANDSHAKE_MAX_MESSAGE */
    POST_HANDSHAKE_NO_MEMORY,   /* the buffer could not be allocated */
    POST_HANDSHAKE_UNALIGNED,   /* bytes follow a KeyUpdate in its record (RFC 8446 5.1:
                                   a key change ends the record) */
};

/* Feeds the plaintext of one handshake record (DATA, LEN bytes; LEN 0 is refused by
 * TLS and treated as nothing): completes the message BUFFER holds, then calls HANDLER
 * with CTX for every whole message, and keeps an unfinished last one in BUFFER. After
 * anything but POST_HANDSHAKE_FED the connection ends; BUFFER is then to be freed. */
enum post_handshake_feed_result post_handshake_feed(struct post_handshake_buffer *buffer,
                                                    const unsigned char *data, size_t len,
                                                    post_handshake_handler handler, void *ctx);

/* Whether BUFFER holds part of a message (the record stream must not end there). */
int post_handshake_buffer_pending(const struct post_handshake_buffer *buffer);

/* Frees BUFFER's memory (wiped first) and empties it. */
void post_handshake_buffer_free(struct post_handshake_buffer *buffer);

#endif
