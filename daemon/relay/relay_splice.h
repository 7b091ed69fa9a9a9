/* relay_splice — the kTLS path: splice() through a pipe each way, so payload moves
 * kernel to kernel and never through this process's memory.
 *
 * The TLS socket has kTLS on both directions. Records that are not application data
 * make splice fail; they are read with recvmsg and handled: close_notify → half-close,
 * fatal alert → abort, NewSessionTicket → dropped, KeyUpdate → rekey where the kernel
 * can, else a clean close. A reset, or a FIN without close_notify, from the TLS peer
 * fails the relay as an abort (kind in end, as in relay.h). Our own end is close_notify
 * (a type-21 record) + FIN, or a fatal alert (relay_splice_abort) when the peer's
 * access was withdrawn or the tunnel aborts. */
#ifndef KTLSTUN_RELAY_SPLICE_H
#define KTLSTUN_RELAY_SPLICE_H

#include <stddef.h>
#include <stdint.h>

#include "ktls/ktls_keys.h"
#include "ktls/ktls_offload.h"
#include "ktls/ktls_records.h"
#include "relay/relay.h"
#include "relay/splice_pipe.h"

struct splice_direction {
    int pipe_read, pipe_write;
    size_t in_pipe;           /* bytes spliced in and not yet out */
    size_t capacity;          /* what the pipe holds (F_GETPIPE_SZ) */
    struct splice_pipe_spill spill;   /* part of a record read by us, not yet in the pipe */
    int eof;
    int shut;
    uint64_t bytes;           /* delivered to the destination */
};

struct splice_relay {
    int tls_fd;
    int plain_fd;
    struct splice_direction from_tls;
    struct splice_direction to_tls;
    struct ktls_offload_state *offload;
    struct ktls_secrets *secrets;       /* TLS 1.3: for KeyUpdate */
    struct ktls_records records;        /* the records that are not data, our rekeys */
    uint64_t userspace_bytes;           /* payload that did pass through our memory */
    uint64_t decrypt_errors;
    int moved;
    char close_reason[320];
    struct relay_end end;               /* how it failed, noted with close_reason */
};

/* Opens the two pipes. Returns 0, or -1 with REASON. */
int relay_splice_init(struct splice_relay *r, int tls_fd, int plain_fd,
                      struct ktls_offload_state *offload, struct ktls_secrets *secrets,
                      char *reason, size_t len);

/* Records AES-GCM/CCM may safely encrypt under one key (RFC 8446 section 5.5, with a
 * margin); 0 for ciphers without such a limit. */
uint64_t relay_splice_record_limit(enum ktls_cipher cipher);

/* Same contract as relay_pump (relay.h). */
enum relay_status relay_splice_pump(struct splice_relay *r);

/* We end the connection ourselves (KeyUpdate on an old kernel, record limit,
 * timeout, shutdown): sends close_notify through the kernel unless our direction
 * already ended, so the peer sees a clean close rather than a truncation. */
void relay_splice_close_notify(struct splice_relay *r);

/* We end the connection because its peer lost its access: sends the fatal alert
 * DESCRIPTION (a TLS_ALERT_* of ktls/tls_record.h) through the kernel on TLS_FD, unless
 * our direction already ended, and never close_notify: the peer must not take the end
 * of its stream for a clean one. TLS_FD is passed because R may not be initialised yet
 * (offloaded while the target connect is pending). */
void relay_splice_abort(struct splice_relay *r, int tls_fd, unsigned char description);

/* Closes the pipes. */
void relay_splice_release(struct splice_relay *r);

#endif
