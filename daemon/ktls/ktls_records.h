/* ktls_records — the records of an offloaded socket that are not application data,
 * shared by the relays on the kTLS path (relay/relay_splice.c, iprelay/packet_relay.c).
 *
 * Once the keys are in the kernel (ktls_offload_install), a record of another type
 * reaches us through recvmsg with its type in a TLS_GET_RECORD_TYPE cmsg, and we send
 * one with TLS_SET_RECORD_TYPE. Here: sending and receiving such records, the
 * handshake messages after the handshake (NewSessionTicket dropped, the peer's
 * KeyUpdate installed for RX, anything else ends the connection), our own KeyUpdate
 * before more data (the peer asked, the cipher's record limit, rekey_bytes or
 * rekey_interval; ktls/ktls_rekey.c decides), and the alert a record that fails to
 * decrypt calls for. What ends the connection is described in END for the relay's
 * words; the relay decides how it ends. */
#ifndef KTLSTUN_KTLS_RECORDS_H
#define KTLSTUN_KTLS_RECORDS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ktls/ktls_keys.h"
#include "ktls/ktls_offload.h"

/* Why a call below ended the connection. */
struct ktls_records_end {
    const char *what;           /* a sentence (static), NULL while nothing ended */
    char detail[160];           /* more words, or "" */
    int clean;                  /* we close cleanly ourselves: nothing was cut */
};

struct ktls_records {
    int fd;                     /* the offloaded TCP socket (not owned) */
    struct ktls_offload_state *offload;
    struct ktls_secrets *secrets; /* TLS 1.3: for KeyUpdate */
    int *tx_shut;               /* the owner's flag: our direction has ended (nothing more
                                   is sent once set) */
    uint64_t tx_records;        /* upper bound of records sent under the current key */
    uint64_t tx_record_limit;   /* rekey (or close) before this; 0 = none */
    struct ktls_records_end end;
};

/* Sets K up for FD with OFFLOAD and SECRETS (neither owned) and the owner's TX_SHUT
 * flag; starts the clock of the current sending key. */
void ktls_records_init(struct ktls_records *k, int fd, struct ktls_offload_state *offload,
                       struct ktls_secrets *secrets, int *tx_shut);

/* Sends one record of TYPE (a TLS_RECORD_* of ktls/tls_record.h) with PAYLOAD through
 * the kernel on FD, without blocking. Returns 0, 1 if it would block, -1 (errno). */
int ktls_records_send(int fd, unsigned char type, const void *payload, size_t len);

/* Reads the next record(s) of one type from FD into BUF (CAP bytes), without
 * blocking; *TYPE gets the record type. Returns the bytes, 0 at end of stream, or -1
 * (errno: EAGAIN when nothing waits, EBADMSG for a record that failed to decrypt). */
ssize_t ktls_records_recv(int fd, void *buf, size_t cap, unsigned char *type);

/* A record failed to decrypt: sends the bad_record_mac alert TLS asks for (RFC 8446
 * 6.2), unless our direction ended, and ends it; nothing may follow. */
void ktls_records_fail_decrypt(struct ktls_records *k);

/* Sends the fatal alert DESCRIPTION unless our direction ended, and ends it. Best
 * effort: a peer whose socket buffer is full misses the alert, not the end. */
void ktls_records_alert(struct ktls_records *k, unsigned char description);

/* Sends the fatal alert DESCRIPTION on FD, whatever was sent before. Returns as
 * ktls_records_close_notify. */
int ktls_records_send_alert(int fd, unsigned char description);

/* Sends close_notify. Returns 0, 1 if it would block, -1 (errno). */
int ktls_records_close_notify(int fd);

/* Handles the plaintext DATA (LEN bytes) of one handshake record. Returns 0, or -1
 * when the connection ends (END says why; for a message that breaks the protocol the
 * fatal alert went out). */
int ktls_records_handshake(struct ktls_records *k, const unsigned char *data, size_t len);

/* Before more data goes out (and whenever the peer asked for our KeyUpdate): sends
 * our KeyUpdate when it is due. Returns 1 when data may go, 0 when the socket would
 * block (nothing sent), -1 when the connection ends (END says why). */
int ktls_records_before_data(struct ktls_records *k);

/* BYTES of data went out in one send: counts them against the current key. */
void ktls_records_sent(struct ktls_records *k, size_t bytes);

#endif
