/* access_recheck — a worker's live connections keep only the access that still holds:
 * they are checked again against the rules of the newest configuration (a reload:
 * CRL, trust, allow rules, pins, tunnels removed), against the second factor's grants,
 * against max_connection_lifetime, and ended on an administrator's
 * `ktlstun disconnect`. What it ends, it ends through conn_withdraw, with a reason
 * that starts "access withdrawn: " (or names max_connection_lifetime).
 *
 * The rules of a newer configuration come from the parent on this worker's rules link
 * (one end of a SOCK_SEQPACKET pair): one datagram per reload carrying a sealed memfd
 * with the access_rules text. A datagram without one, or rules that do not read, end
 * every connection of the worker: what cannot be checked does not stay. Until rules
 * come, the worker's own generation is the newest. */
#ifndef KTLSTUN_ACCESS_RECHECK_H
#define KTLSTUN_ACCESS_RECHECK_H

#include <stdint.h>

#include "worker/conn.h"

struct access_recheck;

/* Watches LINK (this worker's end of its rules link, or -1 for none) in HOST's loop.
 * Takes LINK in every case. Returns the checker, or NULL after logging. */
struct access_recheck *access_recheck_create(struct conn_host *host, int link);

/* Stops watching the link, closes it and frees CHECKER (NULL is fine). */
void access_recheck_free(struct access_recheck *checker);

/* Once a second: connections past their lifetime or their grant, and those whose
 * handshake ended after the newest rules came, are checked (and ended). */
void access_recheck_sweep(struct access_recheck *checker, uint64_t now_ms);

/* `ktlstun disconnect KEY`: ends the connections whose peer certificate has KEY as its
 * CN, its subject or its SHA-256 fingerprint (hex, colons allowed), or whose peer
 * address is KEY (with or without the port). Returns how many ended. */
unsigned access_recheck_disconnect(struct access_recheck *checker, const char *key);

#endif
