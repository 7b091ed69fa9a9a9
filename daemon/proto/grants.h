/* grants — who passed the second factor, in memory shared by fork.
 *
 * The parent maps the table before it forks anything; the PAM helper is its only
 * writer, and every worker reads it, through a view it cannot write
 * (grants_make_read_only), from inside certificate verification, which is
 * synchronous: no IPC and no lock on that path. Each slot carries a sequence counter
 * (core/seqlock: odd while the helper rewrites it), so a reader never acts on a
 * half-written grant, and one a dead helper left half-written counts as no grant.
 * Grants live in memory only: a daemon restart asks everyone to log in again.
 * Times are CLOCK_MONOTONIC milliseconds (event_loop_now_ms), immune to clock steps. */
#ifndef KTLSTUN_GRANTS_H
#define KTLSTUN_GRANTS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define GRANTS_CAPACITY 4096

struct grants;

/* Maps an empty table, writable, from a memfd (parent, before the first fork). NULL
 * after logging. */
struct grants *grants_create(void);

/* Worker, after fork: replaces this process's writable view of TABLE by one mapped
 * through a read-only reopen of the memfd (/proc/self/fd/N), which mprotect() cannot
 * make writable (EACCES), and closes the memfd, so nothing here can write the table
 * again. Returns 0, or -1 after logging: the worker must not serve then. */
int grants_make_read_only(struct grants *table);

/* Unmaps this process's view of TABLE, closes its memfd and frees the handle (NULL is
 * fine). */
void grants_free(struct grants *table);

/* Writes one status_record "grant" line (tunnel, identity, sha256, source,
 * expires_in seconds) per live grant at NOW_MS to OUT. */
void grants_describe(const struct grants *table, uint64_t now_ms, FILE *out);

/* Helper: records that the certificate SHA256 (64 lowercase hex digits) may use
 * TUNNEL until EXPIRES_MS, logged in as IDENTITY from SOURCE (an address without
 * port). Replaces that certificate's previous grant on TUNNEL; when the table is
 * full, the grant closest to expiry gives way. Returns 0, or -1 for arguments too
 * long. */
int grants_put(struct grants *table, const char *tunnel, const char *sha256,
               const char *identity, const char *source, uint64_t expires_ms, uint64_t now_ms);

/* Worker: returns 1 when SHA256 holds a grant on TUNNEL live at NOW_MS (and, when
 * SOURCE is not NULL, made from SOURCE), setting *EXPIRES_MS if not NULL; else 0. */
int grants_check(const struct grants *table, const char *tunnel, const char *sha256,
                 const char *source, uint64_t now_ms, uint64_t *expires_ms);

/* Helper, at start: clears the slots a helper that died left half-written (readers
 * treat those as no grant until then). Returns how many it cleared. */
unsigned grants_recover(struct grants *table);

/* Returns a number that moves after every write that may end a live grant before its
 * time (a withdrawal, an eviction from a full table, a grant moved to another address
 * or shortened), never after a new grant or a renewal: a reader may keep what
 * grants_check told it until this moves or the grant's end comes. */
uint64_t grants_withdrawals(const struct grants *table);

/* Helper: withdraws the grants of IDENTITY (on TUNNEL, or on every tunnel when TUNNEL
 * is NULL). Returns how many were live at NOW_MS. */
unsigned grants_revoke_identity(struct grants *table, const char *tunnel, const char *identity,
                                uint64_t now_ms);

/* Helper: withdraws the grants of the certificate SHA256 (64 lowercase hex digits)
 * when SHA256 is not NULL, else those logged in as IDENTITY, on TUNNEL (on every
 * tunnel when TUNNEL is NULL). BY_ADMIN: an administrator revoked them, which
 * grants_revoked_by_admin tells until that certificate logs in again on the tunnel
 * (or its slot is taken by another grant). Returns how many were live at NOW_MS. */
unsigned grants_withdraw(struct grants *table, const char *tunnel, const char *identity,
                         const char *sha256, int by_admin, uint64_t now_ms);

/* Worker: returns 1 when the last grant of SHA256 on TUNNEL was revoked by an
 * administrator (grants_withdraw) and no login has replaced it since; else 0. */
int grants_revoked_by_admin(const struct grants *table, const char *tunnel, const char *sha256);

/* The shared state store as the helper last saw it (for /readyz). */
enum grants_store_state {
    GRANTS_STORE_NONE = 0,       /* state in files: no store */
    GRANTS_STORE_UP,             /* reachable; text: HOST:PORT */
    GRANTS_STORE_DOWN,           /* unreachable; text: why */
};
#define GRANTS_STORE_TEXT 256

/* Helper: records the store's STATE and TEXT (cut at GRANTS_STORE_TEXT - 1 bytes). */
void grants_set_store_state(struct grants *table, enum grants_store_state state, const char *text);

/* Returns the store's state with its text in TEXT (LEN bytes); DOWN while a write is
 * half done or was abandoned by a dead helper. */
enum grants_store_state grants_store_state(const struct grants *table, char *text, size_t len);

#endif
