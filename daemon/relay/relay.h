/* relay — the userspace path: SSL_read/SSL_write between a TLS socket and a plain one.
 *
 * One bounded buffer per direction, kept while the tunnel is busy and given back by
 * relay_trim once it idles, so an idle tunnel costs no buffer memory; a slow reader
 * stops the writer (backpressure).
 * Half-close is mirrored: plain EOF becomes close_notify + FIN, close_notify from the
 * TLS peer becomes shutdown(SHUT_WR) on the plain socket. A peer that ends otherwise
 * (a reset, a fatal alert, a FIN without close_notify) fails the relay with the kind
 * of abort noted, so that its owner ends the other side with an abort too. */
#ifndef KTLSTUN_RELAY_H
#define KTLSTUN_RELAY_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>

#define RELAY_BUFFER_SIZE 65536   /* four full TLS records of plaintext */
/* The records of one SSL_write of RELAY_BUFFER_SIZE, with room for their overhead. */
#define RELAY_WRITE_BUFFER_SIZE (RELAY_BUFFER_SIZE + 4096)
/* OpenSSL's read-ahead buffer: several records per read() instead of one. */
#define RELAY_READ_AHEAD_SIZE (RELAY_BUFFER_SIZE + 4096)

/* Who ended a relay that failed, and how; kept with its first reason. */
enum relay_abort {
    RELAY_ABORT_LOCAL,          /* our own failure: memory, a record we refuse, ... */
    RELAY_ABORT_PLAIN_RESET,    /* the plain peer reset its connection */
    RELAY_ABORT_TLS_RESET,      /* the TLS peer reset its connection */
    RELAY_ABORT_TLS_ALERT,      /* the TLS peer sent a fatal alert (peer_alert) */
    RELAY_ABORT_TLS_TRUNCATED,  /* the TLS peer ended without close_notify */
    RELAY_ABORT_NONE            /* no abort: we close cleanly ourselves (close_notify),
                                 * e.g. at a KeyUpdate the kernel cannot follow */
};

/* The kind of the first failure of a relay, beside its close reason. */
struct relay_end {
    enum relay_abort abort;
    unsigned char peer_alert;   /* RELAY_ABORT_TLS_ALERT: its description */
};

struct relay_direction {
    char *buffer;         /* NULL until needed and again after relay_trim */
    size_t start, end;    /* pending bytes are buffer[start..end) */
    int eof;              /* the source side said it is done */
    int shut;             /* we passed that on to the destination */
    uint64_t bytes;       /* delivered to the destination */
};

struct relay {
    SSL *ssl;
    int tls_fd;
    int plain_fd;
    struct relay_direction from_tls;   /* SSL_read -> send(plain_fd) */
    struct relay_direction to_tls;     /* recv(plain_fd) -> SSL_write */
    /* Collects the records of one SSL_write for a single send (OpenSSL's socket BIO
     * makes one write() per 16 KiB record). In the SSL's write BIO chain, owned by
     * the SSL; NULL until a write of more than one record and again after
     * relay_trim. */
    BIO *write_buffer;
    int close_notify_sent;
    /* Set when a read filled the whole buffer, cleared by relay_trim. Only a bulk
     * relay keeps OpenSSL's buffers between reads, with a read buffer of
     * RELAY_READ_AHEAD_SIZE; small-message tunnels keep OpenSSL's defaults. */
    int bulk;
    int read_ahead_grown;              /* OpenSSL's read buffer has RELAY_READ_AHEAD_SIZE */
    int moved;                         /* bytes moved in the last relay_pump */
    /* A side is read only while epoll said it is readable and no read has found it
     * empty since (EAGAIN; or a short recv when no hang-up was reported, as a FIN
     * arriving later brings its own event): no read() is made just to see EAGAIN. */
    int tls_readable, plain_readable;
    int tls_hangup, plain_hangup;      /* the latest event reported a hang-up */
    char close_reason[160];            /* first notable event, for the audit line */
    struct relay_end end;              /* how it failed, noted with close_reason */
};

/* How much one connection may move before the event loop serves the others: on
 * loopback a single transfer would otherwise never see EAGAIN and starve every
 * handshake on its worker. */
#define RELAY_TURN_BYTES (256ULL * 1024)

enum relay_status {
    RELAY_RUNNING,    /* waiting for its sockets */
    RELAY_YIELDED,    /* moved a turn's worth and can go on: run it again soon */
    RELAY_FINISHED,
    RELAY_FAILED
};

/* One turn of a relay on either path: its two pumps (each moves what it can in one
 * direction of RELAY and returns 1 on progress, 0 when waiting, -1 on failure) and the
 * counters they advance. */
struct relay_turn {
    void *relay;
    int (*pump_from_tls)(void *relay);
    int (*pump_to_tls)(void *relay);
    const uint64_t *from_tls_bytes, *to_tls_bytes;   /* delivered so far */
    const int *from_tls_shut, *to_tls_shut;
    char *close_reason;                              /* "closed by both sides" at the end */
    size_t close_reason_len;
};

/* Pumps both directions until neither moves or RELAY_TURN_BYTES moved. Returns
 * RELAY_FAILED, RELAY_YIELDED, RELAY_FINISHED (both directions shut) or RELAY_RUNNING. */
enum relay_status relay_take_turn(const struct relay_turn *turn);

/* Keeps the first notable event of a relay in REASON (LEN bytes): "WHAT" or
 * "WHAT: DETAIL"; later calls leave it alone. Shared by both relay paths. */
void relay_note_reason(char *reason, size_t len, const char *what, const char *detail);

/* As relay_note_reason, and notes in END the kind of abort (ABORT, with ALERT for
 * RELAY_ABORT_TLS_ALERT) when this is the first notable event. */
void relay_note_abort(char *reason, size_t len, struct relay_end *end, enum relay_abort abort,
                      unsigned char alert, const char *what, const char *detail);

/* Whether ERROR (an errno) says the peer reset the connection. */
int relay_is_reset(int error);

/* Prepares R for SSL (on TLS_FD) and PLAIN_FD; owns neither. */
void relay_init(struct relay *r, SSL *ssl, int tls_fd, int plain_fd);

/* Moves what can move now without blocking, up to RELAY_TURN_BYTES. Returns
 * RELAY_FINISHED once both directions are closed and flushed, RELAY_FAILED on an
 * error (reason in close_reason), RELAY_YIELDED when the turn's budget ran out with
 * work left, RELAY_RUNNING otherwise. */
enum relay_status relay_pump(struct relay *r);

/* Notes what epoll reported (EVENTS) for the TLS side (TLS_SIDE) or the plain side
 * of R; call before relay_pump. */
void relay_note_events(struct relay *r, int tls_side, uint32_t events);

/* Frees the buffers that hold nothing, OpenSSL's too, for a tunnel gone idle; the
 * next read takes new ones. Returns how many it freed. */
int relay_trim(struct relay *r);

/* Bytes of buffer R holds now, OpenSSL's kept read buffer included (for status). */
size_t relay_buffer_bytes(const struct relay *r);

/* Frees the buffers. */
void relay_release(struct relay *r);

#endif
