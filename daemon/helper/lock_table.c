#include "helper/lock_table.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/log.h"
#include "core/utc_time.h"
#include "helper/lock_state.h"
#include "proto/admin_protocol.h"

struct lock_table {
    struct lock_policy *policy;
    char path[4200];
};

struct lock_table *lock_table_create(void)
{
    struct lock_table *table = calloc(1, sizeof(*table));
    if (table != NULL && (table->policy = lock_policy_create()) == NULL) {
        free(table);
        table = NULL;
    }
    return table;
}

void lock_table_free(struct lock_table *table)
{
    if (table == NULL)
        return;
    lock_policy_free(table->policy);
    free(table);
}

void lock_table_configure(struct lock_table *table, const struct config *config)
{
    lock_policy_set_max_records(table->policy, config->global.lock_table_size);
}

void lock_table_load(struct lock_table *table, const struct config *config)
{
    const char *state_dir = config->global.state_dir;
    char errors[600];
    lock_table_configure(table, config);
    if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
        log_error("cannot create state_dir %s: %s", state_dir, strerror(errno));
    snprintf(table->path, sizeof(table->path), "%s/%s", state_dir, ADMIN_PROTOCOL_STATE_FILE);
    int skipped = lock_state_load(table->policy, table->path, errors, sizeof(errors));
    if (skipped < 0)
        log_error("second factor: starting without the saved locks: %s", errors);
    else if (skipped > 0)
        log_warning("second factor: %s", errors);
}

struct lock_policy *lock_table_policy(struct lock_table *table)
{
    return table->policy;
}

void lock_table_save(struct lock_table *table, const struct config *config)
{
    char err[600];
    uint64_t widest = 0;
    for (size_t i = 0; i < config->tunnel_count; i++)
        if (config->tunnels[i].failure_window > widest)
            widest = config->tunnels[i].failure_window;
    lock_policy_prune(table->policy, utc_time_now(), widest);
    if (lock_state_save(table->policy, table->path, err, sizeof(err)) < 0)
        log_error("second factor: lock state not saved (a restart would forget it): %s", err);
}
