/* verified_chains — peer certificate chains that passed verification recently, so a
 * client that reconnects is not verified again.
 *
 * Chain verification costs a signature check per certificate (a quarter of a full
 * mTLS handshake on the server, measured), and its result cannot change while the
 * trust store, the CRLs and the checks stay what they were — which is the life of one
 * TLS context (one generation of one tunnel). So each context keeps one table, keyed on
 * the SHA-256 of every certificate the peer sent, in order; an entry lives no longer
 * than the earliest notAfter in the verified chain, the earliest CRL nextUpdate and the
 * tunnel's `verify_cache` time to live. Only the chain's verdict is kept: allow rules, pins and the
 * second factor still run on every handshake. Failures are never kept.
 *
 * One table belongs to one process (workers fork with a copy); no locking. */
#ifndef KTLSTUN_VERIFIED_CHAINS_H
#define KTLSTUN_VERIFIED_CHAINS_H

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#define VERIFIED_CHAINS_DIGEST_LEN 32
#define VERIFIED_CHAINS_SLOTS 1024        /* 40 KiB per context */

struct verified_chains;

/* Creates a table of SLOTS entries (rounded up to a power of two) whose entries live at
 * most TTL_SECONDS. Returns NULL when out of memory. */
struct verified_chains *verified_chains_create(size_t slots, time_t ttl_seconds);

/* Frees TABLE (NULL is fine). */
void verified_chains_free(struct verified_chains *table);

/* Computes the key of the chain a peer sent: LEAF, then every certificate of SENT
 * (which may repeat LEAF, as OpenSSL's server side does, or be NULL). Returns 0, or -1
 * when a certificate cannot be encoded or hashed. */
int verified_chains_digest(struct verified_chains *table, X509 *leaf, STACK_OF(X509) *sent,
                           unsigned char digest[VERIFIED_CHAINS_DIGEST_LEN]);

/* Returns 1 when DIGEST verified before and its entry is still valid at NOW. */
int verified_chains_contains(const struct verified_chains *table,
                             const unsigned char digest[VERIFIED_CHAINS_DIGEST_LEN], time_t now);

/* Remembers that DIGEST verified at NOW, until UNTIL or the table's time to live,
 * whichever comes first. A full neighbourhood loses its entry that ends
 * soonest. */
void verified_chains_remember(struct verified_chains *table,
                              const unsigned char digest[VERIFIED_CHAINS_DIGEST_LEN], time_t now,
                              time_t until);

/* Returns the earliest notAfter in CHAIN (seconds since the epoch), or NOW when one
 * cannot be read, so that such a chain is not remembered at all. */
time_t verified_chains_chain_end(STACK_OF(X509) *chain, time_t now);

#endif
