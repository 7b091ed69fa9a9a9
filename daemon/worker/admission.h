/* admission — whether a connection just accepted may open: the tunnel's
 * max_connections (exact across the workers, worker/conn_limit.h), then, on server
 * tunnels, the per-source limits (worker/source_table.h). Every connection counts,
 * logins (ALPN ktlstun-auth/1) included: the decision is made before any byte is
 * read. */
#ifndef KTLSTUN_ADMISSION_H
#define KTLSTUN_ADMISSION_H

#include <sys/socket.h>

#include "worker/conn.h"
#include "worker/source_table.h"

/* What an admitted connection holds, to be given back when it ends. */
struct admission_ticket {
    struct source_key source;
    int source_counted;           /* counted in the per-source table */
};

/* Decides for a connection from PEER (PEER_LEN bytes, shown as PEER_ADDRESS) on
 * TUNNEL. Returns 1 and fills TICKET when it may open (hand TICKET to
 * admission_release when it ends); returns 0 after counting the refusal
 * (over_limit) and logging it (rate-limited), and the caller closes it. */
int admission_admit(struct conn_host *host, const struct tunnel *tunnel, const struct sockaddr *peer,
                    socklen_t peer_len, const char *peer_address, struct admission_ticket *ticket);

/* Gives back what TICKET holds on TUNNEL. */
void admission_release(struct conn_host *host, const struct tunnel *tunnel,
                       const struct admission_ticket *ticket);

#endif
