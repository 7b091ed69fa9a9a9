/* conn — one tunnelled connection: TLS handshake, verification verdict, target
 * connect, relay, timeouts, and the audit line when it ends.
 *
 * Server mode: the accepted socket speaks TLS, the target is plain.
 * Client mode: the accepted socket is plain, the target speaks TLS. */
#ifndef KTLSTUN_CONN_H
#define KTLSTUN_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "worker/conn_limit.h"
#include "core/event_loop.h"
#include "supervisor/generation.h"
#include "tls/tls_context.h"
#include "worker/stats.h"

struct conn;
struct pam_link;

/* What a worker lends its connections. */
struct conn_host {
    struct event_loop *loop;
    struct conn_limit *limits;
    struct stats *stats;
    struct pam_link *pam_link;   /* to the PAM helper, for login channels; NULL: none */
    struct tun_link *tun_link;   /* to the supervisor, for network devices; NULL: none */
    int worker_slot;
    struct conn *live;        /* every connection not yet closed */
    struct conn *closed;      /* closed during this event batch, freed after it */
    struct conn *pending;     /* relays that yielded with work left: run again */
    size_t live_count;
};

/* What the access checks keep with each connection (conn stores it, they fill it). */
struct conn_access {
    unsigned rules_checked;       /* generation of the rules last checked against */
    uint64_t grant_until_ms;      /* its second-factor grant is known to last until then */
};

/* A connection past its handshake, as the access checks see it. */
struct conn_view {
    const struct tunnel *tunnel;  /* the tunnel (of its own generation) it came in on */
    const struct tls_peer *peer;  /* identity and chain of its TLS peer */
    const char *peer_address;     /* the accepted peer, "ADDRESS:PORT" */
    int tls_fd;                   /* the socket that speaks TLS */
    int login;                    /* a second-factor login channel, not a data tunnel */
    uint32_t network_request;     /* a network hub's device request (0: none) */
    uint64_t started_ms;
    struct conn_access *access;
};

/* How a connection a check refuses ends. */
struct conn_ending {
    enum stats_result result;     /* STATS_RESULT_WITHDRAWN unless the check sets another */
    unsigned char alert;          /* the fatal alert (TLS_ALERT_*, set by the verdict) */
    char reason[700];             /* the audit line's close reason */
};

/* Decides on one connection: 1 ends it as ENDING says, 0 leaves it. */
typedef int (*conn_verdict)(void *arg, const struct conn_view *view, struct conn_ending *ending);

/* Asks VERDICT (with ARG) about every connection of HOST past its handshake and ends
 * those it refuses: audit line with the reason, a fatal alert on the kTLS path, never
 * close_notify (an end imposed on the peer is not a clean end of its stream). Returns
 * how many ended. */
unsigned conn_withdraw(struct conn_host *host, conn_verdict verdict, void *arg);

/* Takes over FD, just accepted on TUNNEL from PEER, and starts its handshake (server
 * mode) or its target connect (client mode). Past max_connections or a per-source
 * limit (worker/admission.h) the connection is refused and closed at once. Never
 * fails: problems are logged and the fd closed. */
void conn_accept(struct conn_host *host, const struct tunnel *tunnel, int fd,
                 const struct sockaddr *peer, socklen_t peer_len);

/* Connects TUNNEL (a network client tunnel) to its hub, relaying with TUN_FD (not
 * owned) once connected; ENDED (with ARG) is called when the connection ends, with
 * whether it got the hub's configuration. Returns 0, or -1 when nothing was started
 * (ENDED is not called then). */
int conn_dial(struct conn_host *host, const struct tunnel *tunnel, int tun_fd,
              void (*ended)(void *arg, int configured), void *arg);

/* Closes connections whose handshake or idle deadline passed before NOW_MS. */
void conn_sweep_timeouts(struct conn_host *host, uint64_t now_ms);

/* Closes every live connection, logging REASON as their close reason. */
void conn_close_all(struct conn_host *host, const char *reason);

/* Writes one status_record "conn" line per live connection to OUT. */
void conn_describe_all(const struct conn_host *host, FILE *out);

/* Gives every relay that yielded its turn another one. Returns 1 while some still
 * have work left (the worker then polls without sleeping). */
int conn_run_pending(struct conn_host *host);

/* Frees connections closed during the last event batch (their fds may still have had
 * events queued in that batch, so they must outlive it). */
void conn_free_closed(struct conn_host *host);

#endif
