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
    int unreadable;           /* the file exists but could not be read: no logins */
    unsigned max_records;     /* lock_table_size */
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
    table->max_records = config->global.lock_table_size;
    lock_policy_set_max_records(table->policy, table->max_records);
}

void lock_table_load(struct lock_table *table, const struct config *config)
{
    const char *state_dir = config->global.state_dir;
    char errors[600];
    lock_table_configure(table, config);
    if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
        log_error("cannot create state_dir %s: %s", state_dir, strerror(errno));
    if (config->global.state_store != NULL) {
        /* The store holds the fleet's history of failures and locks: the table is
         * rebuilt from it (lock_table_reset, then its events), never from a file that
         * another gateway's failures never reached. */
        table->path[0] = '\0';
        log_info("second factor: failures and locks come from the shared state store");
        return;
    }
    snprintf(table->path, sizeof(table->path), "%s/%s", state_dir, ADMIN_PROTOCOL_STATE_FILE);
    int skipped = lock_state_load(table->policy, table->path, errors, sizeof(errors));
    table->unreadable = skipped < 0;
    if (skipped < 0)
        log_error("second factor unavailable: lock state unreadable: %s; logins are refused "
                  "until it can be read", errors);
    else if (skipped > 0)
        log_warning("second factor: %s", errors);
}

int lock_table_available(struct lock_table *table, char *why, size_t whylen)
{
    if (!table->unreadable)
        return 0;
    /* Read into a fresh table: what was counted meanwhile is not saved anywhere, and
     * the file is what holds the locks. */
    struct lock_policy *fresh = lock_policy_create();
    if (fresh == NULL) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    lock_policy_set_max_records(fresh, table->max_records);
    int skipped = lock_state_load(fresh, table->path, why, whylen);
    if (skipped < 0) {
        lock_policy_free(fresh);
        return -1;
    }
    lock_policy_free(table->policy);
    table->policy = fresh;
    table->unreadable = 0;
    log_notice("second factor: %s is readable again; logins resume", table->path);
    if (skipped > 0)
        log_warning("second factor: %s", why);
    return 0;
}

int lock_table_reset(struct lock_table *table)
{
    struct lock_policy *fresh = lock_policy_create();
    if (fresh == NULL)
        return -1;
    lock_policy_set_max_records(fresh, table->max_records);
    lock_policy_free(table->policy);
    table->policy = fresh;
    table->unreadable = 0;
    return 0;
}

struct lock_policy *lock_table_policy(struct lock_table *table)
{
    return table->policy;
}

void lock_table_save(struct lock_table *table, const struct config *config)
{
    char err[600];
    if (table->unreadable) {
        log_error("second factor: lock state not saved: %s could not be read, and writing it "
                  "would drop the locks it holds", table->path);
        return;
    }
    if (table->path[0] == '\0')
        return;   /* kept by the shared state store */
    uint64_t widest = 0;
    for (size_t i = 0; i < config->tunnel_count; i++)
        if (config->tunnels[i].failure_window > widest)
            widest = config->tunnels[i].failure_window;
    lock_policy_prune(table->policy, utc_time_now(), widest);
    if (lock_state_save(table->policy, table->path, err, sizeof(err)) < 0)
        log_error("second factor: lock state not saved (a restart would forget it): %s", err);
}
