/* packet_relay — one network tunnel connection's packets between its TUN descriptor
 * and its TLS session (userspace: SSL_read/SSL_write), in the worker's event loop.
 *
 * From the TUN: packets read until the descriptor is empty (at most
 * PACKET_RELAY_READS_PER_CALL a call), checked, TCP SYNs clamped to the MTU, and
 * batched into frames (proto/tunnel_frame.h) so that one SSL_write, one TLS record,
 * carries many. While a batch waits for the socket the TUN is not read: its queue is
 * the buffer. From the session: frames read as the records come, each packet checked
 * (on the hub also its source, against the client's address and networks) and written
 * to the TUN; a packet the TUN cannot take now is dropped, never waited for. Control
 * frames go to the caller's callback. Every drop is counted.
 *
 * Neither descriptor nor session belongs to the relay; both must be non-blocking. The
 * session is read until it would block (edge-triggered readiness will do); the TUN at
 * most PACKET_RELAY_READS_PER_CALL packets a call, so register it level-triggered. */
#ifndef KTLSTUN_PACKET_RELAY_H
#define KTLSTUN_PACKET_RELAY_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "core/ip_prefix.h"
#include "proto/tunnel_frame.h"

#define PACKET_RELAY_READS_PER_CALL 64
#define PACKET_RELAY_MAX_ALLOWED (TUNNEL_CONFIG_MAX_ADDRESSES + TUNNEL_CONFIG_MAX_ROUTES)

struct packet_relay_config {
    int hub;                          /* this end is the hub: it checks sources */
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
    uint64_t sent_batches;            /* SSL_write calls that carried them */
    uint64_t received_packets;        /* from the peer, written to the TUN */
    uint64_t dropped_invalid;         /* not a well-formed IP packet, or above the MTU */
    uint64_t dropped_source;          /* hub: a source the client may not use */
    uint64_t dropped_tun;             /* the TUN did not take it */
    uint64_t clamped;                 /* SYNs whose MSS was lowered */
};

enum packet_relay_status {
    PACKET_RELAY_OK,                  /* wait for readability as usual */
    PACKET_RELAY_WANT_WRITE,          /* call again once the socket is writable; do not
                                         poll the TUN meanwhile */
    PACKET_RELAY_CLOSED,              /* the peer closed the session */
    PACKET_RELAY_ERROR,               /* see packet_relay_error */
};

struct packet_relay;

/* Makes a relay between TUN_FD and SSL (neither owned) with CONFIG. Returns it (free
 * with packet_relay_free) or NULL when CONFIG is out of bounds or memory is short. */
struct packet_relay *packet_relay_new(int tun_fd, SSL *ssl,
                                      const struct packet_relay_config *config);

/* Frees R. NULL is a no-op. */
void packet_relay_free(struct packet_relay *r);

/* Moves what the TUN holds to the peer (the TUN is readable, or the socket became
 * writable after PACKET_RELAY_WANT_WRITE). Returns OK, WANT_WRITE or ERROR. */
enum packet_relay_status packet_relay_from_tun(struct packet_relay *r);

/* Moves what the peer sent to the TUN (the socket is readable), until the session
 * would block. Returns OK, WANT_WRITE (the session must write first), CLOSED (with
 * close_notify, or without: then packet_relay_error says so) or ERROR. */
enum packet_relay_status packet_relay_from_tls(struct packet_relay *r);

/* Sends a keepalive (a reply when REPLY is set) carrying VALUE, with what is batched.
 * Returns OK, WANT_WRITE (not sent: a batch is waiting; try again once writable) or
 * ERROR. */
enum packet_relay_status packet_relay_send_keepalive(struct packet_relay *r, int reply,
                                                     uint64_t value);

/* Sends CONFIG (the hub's first frame). Returns OK, WANT_WRITE (as above) or ERROR
 * (also when CONFIG is invalid). */
enum packet_relay_status packet_relay_send_config(struct packet_relay *r,
                                                  const struct tunnel_frame_config *config);

/* Returns R's counters. */
const struct packet_relay_counters *packet_relay_counters(const struct packet_relay *r);

/* Returns why the last call returned PACKET_RELAY_ERROR (a sentence, owned by R). */
const char *packet_relay_error(const struct packet_relay *r);

#endif
