/* lock_state — the lock table in a file, so locks survive a restart or reboot.
 *
 * The file (state_dir/lockout.state, written by ktlstund and by `ktlstun unlock` while
 * the daemon is stopped) is text: comment lines, the line "ktlstun-lockout 1", then one
 * line per record: "TUNNEL KIND KEY LEVEL LOCKED_UNTIL LAST_LOCK_END COUNT" followed by
 * COUNT "TIME:TAG" fields (TAG in 16 hex digits). KIND is identity, user, source or
 * handshake; KEY is %XX-escaped outside [A-Za-z0-9._@:/+=-]. The reservations of
 * attempts still running are written as failures. Answer hashes are never written. */
#ifndef KTLSTUN_LOCK_STATE_H
#define KTLSTUN_LOCK_STATE_H

#include <stddef.h>

#include "helper/lock_policy.h"

/* Writes TABLE to PATH atomically (temporary file in the same directory, fsync,
 * rename, fsync of the directory). An existing PATH keeps its mode, and its owner and
 * group when the caller may give them (root must: refused otherwise); a new one is
 * mode 0600, owned by the caller. Returns 0, or -1 with the
 * reason in ERR (ERRLEN bytes). */
int lock_state_save(const struct lock_policy *table, const char *path, char *err, size_t errlen);

/* Adds the records of PATH to TABLE. A missing file is an empty table. Returns the
 * number of malformed lines skipped (0 normally, the count also told in ERR), or -1
 * with the reason in ERR when the file cannot be read. */
int lock_state_load(struct lock_policy *table, const char *path, char *err, size_t errlen);

#endif
