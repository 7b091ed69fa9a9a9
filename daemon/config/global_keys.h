/* global_keys — internal to daemon/config/: the keys of [global] (log_level,
 * state_dir, runtime_dir, user, group, workers, shutdown_timeout, metrics_listen,
 * expiry_warning, lock_table_size), their setters and defaults. */
#ifndef KTLSTUN_GLOBAL_KEYS_H
#define KTLSTUN_GLOBAL_KEYS_H

#include <stddef.h>

#include "config/config_loader.h"

/* Returns the key table (static) and its size in *COUNT. */
const struct config_global_key *global_keys_list(size_t *count);

/* Sets the defaults of ld->config->global; sets ld->out_of_memory when a copy fails. */
void global_keys_defaults(struct config_loader *ld);

/* Runs once every section is read: workers = 0 becomes the number of online CPUs. */
void global_keys_finish(struct global_config *global);

#endif
