/* tun_request — a worker asks the supervisor for a hub's TUN device for one client
 * connection, and the supervisor answers; the device's descriptor travels with a
 * successful reply (core/fd_passing.h). One message each way, on the socket the two
 * share.
 *
 * Request: 'Q', version (1, = 1), id (4, echoed in the reply), MTU (2), tunnel name
 * length (1, 1..LIMIT_TUNNEL_NAME) and name (printable ASCII, no blank), address count
 * (1, 1..2, at most one per family), network count (1, 0..TUN_REQUEST_MAX_NETWORKS),
 * then the client's addresses (hosts: /32, /128) and the networks behind it (no host
 * bits), each family (1: 4 or 6), address (4 or 16 bytes), prefix length (1).
 *
 * Reply: 'R', version (1), id (4), status (1: 0 done, 1 refused), device name length
 * (1, 1..15 when done, 0 when refused) and name, reason length (1, 0 when done,
 * 1..TUN_REQUEST_REASON_MAX when refused) and reason (printable ASCII).
 *
 * Integers are big-endian; nothing may follow. Pure: no I/O, no allocation. */
#ifndef KTLSTUN_TUN_REQUEST_H
#define KTLSTUN_TUN_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "core/ip_prefix.h"
#include "core/limits.h"

#define TUN_REQUEST_VERSION 1
#define TUN_REQUEST_MAX_ADDRESSES 2
#define TUN_REQUEST_MAX_NETWORKS 64
#define TUN_REQUEST_DEVICE_MAX 15        /* IFNAMSIZ - 1 */
#define TUN_REQUEST_REASON_MAX 200
#define TUN_REQUEST_ENTRY_MAX 18
/* The fixed part, the longest name, an IPv4 and an IPv6 address, IPv6 networks. */
#define TUN_REQUEST_MAX_LEN \
    (11 + LIMIT_TUNNEL_NAME + 6 + TUN_REQUEST_ENTRY_MAX + \
     TUN_REQUEST_MAX_NETWORKS * TUN_REQUEST_ENTRY_MAX)
#define TUN_REPLY_MAX_LEN (9 + TUN_REQUEST_DEVICE_MAX + TUN_REQUEST_REASON_MAX)

struct tun_request {
    uint32_t id;
    char tunnel[LIMIT_TUNNEL_NAME + 1];
    unsigned mtu;                      /* TUNNEL_MTU_MIN..TUNNEL_MTU_MAX */
    size_t address_count;
    struct ip_prefix addresses[TUN_REQUEST_MAX_ADDRESSES];
    size_t network_count;
    struct ip_prefix networks[TUN_REQUEST_MAX_NETWORKS];
};

struct tun_reply {
    uint32_t id;
    int refused;                       /* 0: done, the descriptor attached */
    char device[TUN_REQUEST_DEVICE_MAX + 1];
    char reason[TUN_REQUEST_REASON_MAX + 1];
};

/* Checks REQ as decoding would. Returns 0, or -1 with a static reason in *REASON. */
int tun_request_check(const struct tun_request *req, const char **reason);

/* Writes REQ into BUF (CAP bytes; TUN_REQUEST_MAX_LEN is enough). Returns the length,
 * or 0 when REQ fails tun_request_check or does not fit. */
size_t tun_request_encode(const struct tun_request *req, unsigned char *buf, size_t cap);

/* Decodes a request of LEN bytes into *OUT. Returns 0, or -1 with *OUT unspecified;
 * *REASON (may be NULL) gets a static explanation either way. */
int tun_request_decode(const unsigned char *buf, size_t len, struct tun_request *out,
                       const char **reason);

/* Writes REPLY into BUF (CAP bytes; TUN_REPLY_MAX_LEN is enough). A reason that does not
 * fit or is not printable is cut or has '?' in its place. Returns the length, or 0
 * when the device name is not valid for the status or BUF is too small. */
size_t tun_request_reply_encode(const struct tun_reply *reply, unsigned char *buf, size_t cap);

/* Decodes a reply of LEN bytes into *OUT. Returns 0, or -1 with *OUT unspecified;
 * *REASON (may be NULL) gets a static explanation either way. */
int tun_request_reply_decode(const unsigned char *buf, size_t len, struct tun_reply *out,
                             const char **reason);

#endif
