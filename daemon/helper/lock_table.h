/* lock_table — the PAM helper's one lock table (lock_policy) and its file,
 * state_dir/lockout.state (lock_state): loaded at start, pruned and saved after each
 * change, with what goes wrong logged. */
#ifndef KTLSTUN_LOCK_TABLE_H
#define KTLSTUN_LOCK_TABLE_H

#include <stddef.h>

#include "config/config.h"
#include "helper/lock_policy.h"

struct lock_table;

/* Returns an empty table, or NULL when out of memory. */
struct lock_table *lock_table_create(void);

/* Frees TABLE (NULL is fine). */
void lock_table_free(struct lock_table *table);

/* Sizes TABLE for CONFIG (lock_table_size), creates its state_dir when missing and
 * loads the saved locks from it into TABLE (with a shared state store: nothing is
 * loaded or saved, the store's events fill TABLE). Malformed lines are logged and left out.
 * A file that exists but cannot be read is logged, and leaves TABLE unavailable
 * (lock_table_available) rather than empty. */
void lock_table_load(struct lock_table *table, const struct config *config);

/* Applies CONFIG's lock_table_size to TABLE (after a reload). */
void lock_table_configure(struct lock_table *table, const struct config *config);

/* Returns 0 when TABLE holds the saved locks: loaded at start, or read now after an
 * earlier failure (logged). Returns -1 with the reason in WHY (WHYLEN bytes) while the
 * file still cannot be read: no login may run then. */
int lock_table_available(struct lock_table *table, char *why, size_t whylen);

/* Empties TABLE (its size kept), before the shared state store's history of failures
 * and locks is applied to it. Returns 0, or -1 when out of memory (TABLE unchanged). */
int lock_table_reset(struct lock_table *table);

/* Returns the locks of TABLE, for lock_policy_* (TABLE keeps them). */
struct lock_policy *lock_table_policy(struct lock_table *table);

/* Drops what the widest failure_window of CONFIG no longer needs, then saves TABLE to
 * the file it was loaded from; a failure is logged (the locks stay in memory). While
 * TABLE is unavailable nothing is written: the unread file keeps its locks. */
void lock_table_save(struct lock_table *table, const struct config *config);

#endif
