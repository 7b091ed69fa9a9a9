/* lock_table — the PAM helper's one lock table (lock_policy) and its file,
 * state_dir/lockout.state (lock_state): loaded at start, pruned and saved after each
 * change, with what goes wrong logged. */
#ifndef KTLSTUN_LOCK_TABLE_H
#define KTLSTUN_LOCK_TABLE_H

#include "config/config.h"
#include "helper/lock_policy.h"

struct lock_table;

/* Returns an empty table, or NULL when out of memory. */
struct lock_table *lock_table_create(void);

/* Frees TABLE (NULL is fine). */
void lock_table_free(struct lock_table *table);

/* Sizes TABLE for CONFIG (lock_table_size), creates its state_dir when missing and
 * loads the saved locks from it into TABLE. What cannot be read is logged and left
 * out: the helper starts without it. */
void lock_table_load(struct lock_table *table, const struct config *config);

/* Applies CONFIG's lock_table_size to TABLE (after a reload). */
void lock_table_configure(struct lock_table *table, const struct config *config);

/* Returns the locks of TABLE, for lock_policy_* (TABLE keeps them). */
struct lock_policy *lock_table_policy(struct lock_table *table);

/* Drops what the widest failure_window of CONFIG no longer needs, then saves TABLE to
 * the file it was loaded from; a failure is logged (the locks stay in memory). */
void lock_table_save(struct lock_table *table, const struct config *config);

#endif
