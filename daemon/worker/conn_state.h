/* conn_state — the record of one connection, shared by the worker modules that run it
 * (conn.c, its state machine) and report on it (conn_report.c). Nothing outside
 * worker/conn*.c includes this: everyone else holds a struct conn as opaque. */
#ifndef KTLSTUN_CONN_STATE_H
#define KTLSTUN_CONN_STATE_H

#include <stdint.h>

#include <openssl/ssl.h>

#include "auth/auth_channel.h"
#include "core/event_loop.h"
#include "ktls/ktls_keys.h"
#include "ktls/ktls_offload.h"
#include "relay/relay.h"
#include "relay/relay_splice.h"
#include "tls/tls_context.h"
#include "worker/admission.h"
#include "worker/conn.h"

enum conn_state { CONN_CONNECTING, CONN_HANDSHAKING, CONN_RELAYING, CONN_LOGIN, CONN_CLOSED };

struct conn_network;
struct conn_preamble;

struct conn {
    struct conn *prev, *next;
    struct conn *next_pending;          /* host->pending list */
    int queued;                         /* on host->pending */
    struct conn_host *host;
    const struct tunnel *tunnel;
    enum conn_state state;
    struct event_source tls_events;
    struct event_source plain_events;
    int tls_fd;
    int plain_fd;
    SSL *ssl;
    struct tls_peer peer;
    struct relay relay;                 /* userspace path */
    struct splice_relay splice;         /* kTLS path */
    struct ktls_secrets secrets;        /* from the keylog callback, wiped after use */
    struct ktls_offload_state offload;
    int ulp_error;                      /* errno of attaching the tls ULP, 0 if attached */
    int ulp_attached;
    struct auth_channel *login;         /* CONN_LOGIN: the second-factor login channel */
    struct web_login *web;              /* CONN_LOGIN: or the browser login page */
    struct conn_network *net;           /* a network tunnel's (worker/conn_network.h) */
    struct conn_preamble *preamble;     /* PROXY header or CONNECT under way (conn_preamble.h) */
    int offloaded;
    int handshake_done;
    int timed_out;                      /* closed by the sweep: its refusal line is rate-limited */
    struct admission_ticket admission;
    unsigned char abort_alert;          /* ending with this fatal alert, not close_notify */
    struct conn_access access;
    char peer_address[80];
    char tls_version[16];
    char cipher[64];
    uint64_t reported_in, reported_out;  /* bytes already added to the shared stats */
    uint64_t started_ms;
    uint64_t deadline_ms;
    uint64_t last_activity_ms;
};

#endif
