/* tun_request — the messages of a worker's link with the supervisor for network
 * tunnels (worker/tun_link.h, supervisor/tun_service.h): one message per datagram on
 * their SOCK_SEQPACKET socket; a descriptor travels with a reply that has one
 * (core/fd_passing.h).
 *
 * Every message is TAG (1), version (1, = 2), id (4, the worker's, echoed), then:
 *
 *   HUB        'H' worker      tunnel, identity: a hub device for the client whose
 *                              certificate CN is IDENTITY (printable ASCII, blanks
 *                              allowed, 1..TUN_REQUEST_IDENTITY_MAX)
 *   ATTACH     'A' worker      tunnel: the descriptor of its persistent client device
 *   CONFIGURE  'C' worker      tunnel, then the rest of the message is a CONFIG
 *                              payload exactly as proto/tunnel_frame.h encodes it
 *   RELEASE    'L' worker      nothing: the hub connection of ID ended
 *   REPLY      'R' supervisor  status (1: 0 done, 1 refused), device (done: 1..15
 *                              bytes; refused: 0), address count (1, 0..2; refused:
 *                              0) and addresses (family (1: 4 or 6), address, prefix
 *                              length; hosts), reason (refused: 1..REASON_MAX; done: 0)
 *   END        'E' supervisor  reason (1..REASON_MAX): end the connection of ID
 *
 * A tunnel is a length (1, 1..LIMIT_TUNNEL_NAME) and a name (printable ASCII, no
 * blank); a device and a reason are a length (1) and printable ASCII (a reason may
 * hold blanks). Integers are big-endian; nothing may follow. Pure: no I/O, no
 * allocation, so it can be fuzzed. The CONFIG payload is kept as its bytes, checked
 * by tunnel_frame_config_decode. */
#ifndef KTLSTUN_TUN_REQUEST_H
#define KTLSTUN_TUN_REQUEST_H

#include <stddef.h>
#include <stdint.h>

#include "core/ip_prefix.h"
#include "core/limits.h"

#define TUN_REQUEST_VERSION 2
#define TUN_REQUEST_MAX_ADDRESSES 2
#define TUN_REQUEST_DEVICE_MAX 15        /* IFNAMSIZ - 1 */
#define TUN_REQUEST_IDENTITY_MAX 64      /* X.509's upper bound of a CN */
#define TUN_REQUEST_REASON_MAX 200
/* = TUNNEL_CONFIG_MAX_PAYLOAD (checked where both are seen). */
#define TUN_REQUEST_CONFIG_MAX (7 + 66 * 18)
/* The longest message: a CONFIGURE with the longest name and the largest CONFIG. */
#define TUN_REQUEST_MAX_LEN (6 + 1 + LIMIT_TUNNEL_NAME + TUN_REQUEST_CONFIG_MAX)

enum tun_message_type {
    TUN_MESSAGE_HUB = 'H',
    TUN_MESSAGE_ATTACH = 'A',
    TUN_MESSAGE_CONFIGURE = 'C',
    TUN_MESSAGE_RELEASE = 'L',
    TUN_MESSAGE_REPLY = 'R',
    TUN_MESSAGE_END = 'E',
};

/* One message; the fields its type does not carry are zero. */
struct tun_message {
    enum tun_message_type type;
    uint32_t id;
    char tunnel[LIMIT_TUNNEL_NAME + 1];             /* HUB, ATTACH, CONFIGURE */
    char identity[TUN_REQUEST_IDENTITY_MAX + 1];    /* HUB */
    size_t config_len;                              /* CONFIGURE: the CONFIG payload */
    unsigned char config[TUN_REQUEST_CONFIG_MAX];
    int refused;                                    /* REPLY */
    char device[TUN_REQUEST_DEVICE_MAX + 1];        /* REPLY when done */
    size_t address_count;                           /* REPLY when done */
    struct ip_prefix addresses[TUN_REQUEST_MAX_ADDRESSES];
    char reason[TUN_REQUEST_REASON_MAX + 1];        /* REPLY when refused, END */
};

/* Checks MSG as decoding would. Returns 0, or -1 with a static reason in *REASON. */
int tun_request_check(const struct tun_message *msg, const char **reason);

/* Writes MSG into BUF (CAP bytes; TUN_REQUEST_MAX_LEN is enough). A reason that is
 * too long or not printable is cut or has '?' in its place. Returns the length, or 0
 * when MSG fails tun_request_check (after that repair) or does not fit. */
size_t tun_request_encode(const struct tun_message *msg, unsigned char *buf, size_t cap);

/* Decodes a message of LEN bytes into *OUT. Returns 0, or -1 with *OUT unspecified;
 * *REASON (may be NULL) gets a static explanation either way. */
int tun_request_decode(const unsigned char *buf, size_t len, struct tun_message *out,
                       const char **reason);

/* Sets up *MSG as a REPLY to ID: refused with REASON (cut to fit) when
 * DEVICE is NULL, else done with DEVICE and COUNT ADDRESSES (copied; COUNT at most
 * TUN_REQUEST_MAX_ADDRESSES, more are dropped). */
void tun_request_reply(struct tun_message *msg, uint32_t id, const char *device,
                       size_t count, const struct ip_prefix *addresses, const char *reason);

#endif
