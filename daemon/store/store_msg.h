/* store_msg — the one fixed-size message between the PAM helper and its store process
 * (store_process), over a SOCK_SEQPACKET socketpair.
 *
 *   helper → store   EVENT (a grant this gateway made, a withdrawal): publish it
 *   store → helper   EVENT (another gateway's grant, withdrawal or disconnect): apply it
 *                    STATE (up: the store is reachable; text: where, or why not)
 *                    RESET_LOCKS (empty the lock table: the store's history of it follows)
 *   both ways        ALERT (a lock this gateway made: helper → store, claim its alert;
 *                    store → helper, raise it), with the lock's alert_kind, failures in
 *                    event.counted, level in event.tag, its end in event.expires_at
 *                    LEASE (a network hub's lease_msg: helper → store, TAKE, RELEASE or
 *                    RELEASE_ALL from the supervisor; store → helper, the RESULT of a
 *                    TAKE, for the supervisor)
 *
 * A receiver drops the peer on a message of another size, an unknown type or kind, or
 * a string not terminated inside its array. */
#ifndef KTLSTUN_STORE_MSG_H
#define KTLSTUN_STORE_MSG_H

#include <stddef.h>
#include <stdint.h>

#include "proto/lease_msg.h"
#include "store/store_events.h"

enum store_msg_type {
    STORE_MSG_EVENT = 1,
    STORE_MSG_STATE = 2,
    STORE_MSG_RESET_LOCKS = 3,
    STORE_MSG_ALERT = 4,
    STORE_MSG_LEASE = 5,
};

struct store_msg {
    uint32_t type;
    uint32_t up;                 /* STATE: 1 reachable, 0 not */
    uint32_t alert_kind;         /* ALERT: enum alert_kind, a lock of identity, user or
                                    source (0, 1, 2) */
    struct store_event event;    /* EVENT */
    struct lease_msg lease;      /* LEASE */
    char text[256];              /* STATE: "HOST:PORT" when up, the reason when not */
};

/* Returns 1 when MSG (as received, LEN bytes) is well-formed, else 0. */
int store_msg_valid(const struct store_msg *msg, size_t len);

/* Sends MSG on FD whole (never blocking when FD is non-blocking). Returns 0, or -1
 * with errno set. */
int store_msg_send(int fd, const struct store_msg *msg);

/* Receives one message from FD into MSG. Returns 1 for a valid message, 0 at end of
 * stream, -1 with errno (EAGAIN: nothing yet; EBADMSG: malformed). */
int store_msg_recv(int fd, struct store_msg *msg);

#endif
