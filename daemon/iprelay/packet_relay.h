/* packet_relay — one network tunnel connection's packets between its TUN descriptor
 * and its TLS session, in the worker's event loop. Two transports: userspace
 * (SSL_read/SSL_write) or kTLS (the keys in the kernel: send and recvmsg on the
 * socket, records that are not data handled by ktls/ktls_records.c).
 *
 * From the TUN: packets read until the descriptor is empty (at most
 * PACKET_RELAY_READS_PER_CALL a call), checked, TCP SYNs clamped to the MTU (when
 * mss_clamp is set), and batched into frames (proto/tunnel_frame.h) so that one
 * write, one TLS record, carries many. While a batch waits for the socket the TUN is not read: its queue is
 * the buffer. From the session: frames read as the records come, each packet checked
 * (on the hub also its source, against the client's address and networks; IPv6
 * link-local sources are dropped and counted apart from forged ones) and written
 * to the TUN; a packet the TUN cannot take now is dropped, never waited for. Control
 * frames go to the caller's callback. Every drop is counted.
 *
 * On kTLS a batch is one send(), one record (MSG_MORE only while another batch
 * follows in the same call); what the kernel did not take waits for writability as
 * a refused SSL_write does. Records that are not data: close_notify ends the
 * session, a fatal alert fails it, NewSessionTicket is dropped, the peer's KeyUpdate
 * installs its next key; our own KeyUpdate goes before the data when the peer asks,
 * or the cipher's record limit or the rekey policy (offload->policy) says so. A
 * record that fails to decrypt is answered with bad_record_mac.
 *
 * Neither descriptor nor session belongs to the relay; both must be non-blocking. The
 * session is read until it would block or a read of its socket comes back short
 * (edge-triggered readiness will do; the relay sets the callback of the session's
 * read BIO while it lives); the TUN at most PACKET_RELAY_READS_PER_CALL packets a call,
 * so register it level-triggered. When the last call found one packet alone, the
 * first packet of the next goes out at once and that call ends there (unless lone
 * packets come faster than one a millisecond: then it reads on and batches). */
#ifndef KTLSTUN_PACKET_RELAY_H
#define KTLSTUN_PACKET_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "core/ip_prefix.h"
#include "ktls/ktls_keys.h"
#include "ktls/ktls_offload.h"
#include "ktls/ktls_records.h"
#include "proto/tunnel_frame.h"

#define PACKET_RELAY_READS_PER_CALL 64
#define PACKET_RELAY_MAX_ALLOWED (TUNNEL_CONFIG_MAX_ADDRESSES + TUNNEL_CONFIG_MAX_ROUTES)

struct packet_relay_config {
    int hub;                          /* this end is the hub: it checks sources */
    int mss_clamp;                    /* clamp the MSS of TCP SYNs leaving the TUN */
    unsigned mtu;                     /* TUNNEL_MTU_MIN..TUNNEL_MTU_MAX */
    const struct ip_prefix *allowed;  /* hub: the sources the client may use (copied) */
    size_t allowed_count;             /* at most PACKET_RELAY_MAX_ALLOWED */
    /* Called with each control frame the peer sends (CONFIG, keepalives); the frame
     * is valid during the call only. */
    void (*on_control)(void *arg, const struct tunnel_frame *frame);
    void *arg;
};

struct packet_relay_counters {
    uint64_t sent_packets;            /* read from the TUN, sent to the peer */
    uint64_t sent_batches;            /* batches (SSL_write calls, kTLS sends) that carried them */
    uint64_t received_packets;        /* from the peer, written to the TUN */
    uint64_t sent_bytes, received_bytes;   /* the IP packets' bytes of the two above */
    uint64_t dropped_invalid;         /* not a well-formed IP packet, or above the MTU */
    uint64_t dropped_source;          /* hub: a source the client may not use */
    uint64_t dropped_link_local;      /* hub: IPv6 link-local sources (what the client's
                                         kernel sends on its own), not counted as forged */
    uint64_t decrypt_errors;          /* kTLS: records that failed to decrypt */
    uint64_t dropped_tun;             /* the TUN did not take it */
    uint64_t clamped;                 /* SYNs whose MSS was lowered */
    uint64_t skipped_optional;        /* optional frames of a type this end does not
                                         know, skipped */
};

enum packet_relay_status {
    PACKET_RELAY_OK,                  /* wait for readability as usual */
    PACKET_RELAY_WANT_WRITE,          /* call again once the socket is writable; do not
                                         poll the TUN meanwhile */
    PACKET_RELAY_CLOSED,              /* the session ends cleanly: the peer closed it,
                                         or (kTLS) we close it because our key is used
                                         up and this kernel takes no new one */
    PACKET_RELAY_ERROR,               /* see packet_relay_error */
};

struct packet_relay;

/* Makes a relay between TUN_FD and SSL (neither owned) with CONFIG. Returns it (free
 * with packet_relay_free) or NULL when CONFIG is out of bounds or memory is short. */
struct packet_relay *packet_relay_new(int tun_fd, SSL *ssl,
                                      const struct packet_relay_config *config);

/* Makes a relay between TUN_FD and SOCK_FD, a TCP socket that ktls_offload_install
 * handed to the kernel both ways (neither owned), with the OFFLOAD state it filled
 * (its policy set) and the SECRETS it kept for KeyUpdate (both must outlive the relay;
 * the caller wipes SECRETS), and CONFIG. Returns it (free with packet_relay_free) or
 * NULL when CONFIG is out of bounds or memory is short. */
struct packet_relay *packet_relay_new_ktls(int tun_fd, int sock_fd,
                                           struct ktls_offload_state *offload,
                                           struct ktls_secrets *secrets,
                                           const struct packet_relay_config *config);

/* Frees R (and, on kTLS, the part of a handshake message its offload state kept). NULL
 * is a no-op. */
void packet_relay_free(struct packet_relay *r);

/* Gives back OpenSSL's buffers of R's userspace session, kept while packets flow, and
 * lets OpenSSL free them after each record until R moves packets again; call it once
 * the tunnel idles. Returns 1 when they were freed, 0 otherwise (kTLS, already freed,
 * or a record half read). */
int packet_relay_trim(struct packet_relay *r);

/* Moves what the TUN holds to the peer (the TUN is readable, or the socket became
 * writable after PACKET_RELAY_WANT_WRITE). Returns OK, WANT_WRITE, CLOSED (kTLS: our
 * key is used up, see above; end with packet_relay_close_notify) or ERROR. */
enum packet_relay_status packet_relay_from_tun(struct packet_relay *r);

/* Moves what the peer sent to the TUN (the socket is readable), until the session
 * would block or (userspace) a read of its socket came back short. Returns OK, WANT_WRITE (the session must write first), CLOSED (with
 * close_notify, or without, or in the middle of a frame: then packet_relay_error says
 * so, and the end is no clean one; on kTLS also the peer's
 * KeyUpdate on a kernel that takes no new key, said likewise) or ERROR. */
enum packet_relay_status packet_relay_from_tls(struct packet_relay *r);

/* Sends a keepalive (a reply when REPLY is set) carrying VALUE, with what is batched.
 * Returns OK, WANT_WRITE (not sent: a batch is waiting; try again once writable),
 * CLOSED (kTLS, as packet_relay_from_tun) or ERROR. */
enum packet_relay_status packet_relay_send_keepalive(struct packet_relay *r, int reply,
                                                     uint64_t value);

/* Sends CONFIG (the hub's first frame). Returns OK, WANT_WRITE, CLOSED (as above) or
 * ERROR (also when CONFIG is invalid). */
enum packet_relay_status packet_relay_send_config(struct packet_relay *r,
                                                  const struct tunnel_frame_config *config);

/* We end the session cleanly: close_notify (kTLS: unless our direction ended), best
 * effort. */
void packet_relay_close_notify(struct packet_relay *r);

/* We end the session because something failed (an ERROR, a withdrawn peer): on kTLS
 * the fatal alert ALERT (0: internal_error) unless our direction ended, never
 * close_notify; on both transports the socket is set to reset when the caller closes
 * it. */
void packet_relay_abort(struct packet_relay *r, unsigned char alert);

/* Returns the kTLS offload state R runs on (its rekey counts), or NULL on userspace. */
const struct ktls_offload_state *packet_relay_offload(const struct packet_relay *r);

/* Sets the MTU R checks and clamps the packets it reads from the TUN to (a client
 * learns it from the hub's CONFIG); MTU out of TUNNEL_MTU_MIN..TUNNEL_MTU_MAX is
 * ignored. What R reads from the session keeps the limit it was made with. */
void packet_relay_set_mtu(struct packet_relay *r, unsigned mtu);

/* Returns R's counters. */
const struct packet_relay_counters *packet_relay_counters(const struct packet_relay *r);

/* Returns why the last call returned PACKET_RELAY_ERROR (a sentence, owned by R). */
const char *packet_relay_error(const struct packet_relay *r);

#endif
