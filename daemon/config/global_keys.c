#include "config/global_keys.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config/state_store_keys.h"
#include "core/limits.h"

#define WORKERS_MAX 256
#define DEFAULT_STATE_DIR "/var/lib/ktlstun"
#define DEFAULT_RUNTIME_DIR "/run/ktlstun"
#define DEFAULT_SHUTDOWN_TIMEOUT 30
#define DEFAULT_EXPIRY_WARNING (14ULL * 86400)

static int set_log_level(struct config_loader *ld, const struct ini_section *section,
                         const struct ini_key *key, struct global_config *global)
{
    if (log_level_parse(key->value, &global->log_level) < 0) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "'%s' is not a level (use error, warning, notice, info or debug)",
                            key->value);
        return -1;
    }
    return 0;
}

static int set_directory(struct config_loader *ld, const struct ini_section *section,
                         const struct ini_key *key, char **field)
{
    if (config_loader_require_value(ld, section, key) < 0)
        return -1;
    if (key->value[0] != '/') {
        config_loader_error(ld, key->line, section->name, key->name,
                            "'%s' is not an absolute path", key->value);
        return -1;
    }
    return config_loader_copy_string(ld, section, key, field);
}

static int set_state_dir(struct config_loader *ld, const struct ini_section *section,
                         const struct ini_key *key, struct global_config *global)
{
    return set_directory(ld, section, key, &global->state_dir);
}

static int set_runtime_dir(struct config_loader *ld, const struct ini_section *section,
                           const struct ini_key *key, struct global_config *global)
{
    return set_directory(ld, section, key, &global->runtime_dir);
}

/* getpwnam(3): these errno values, or none, all mean "not found". */
static int lookup_missed(int error)
{
    return error == 0 || error == ENOENT || error == ESRCH || error == EBADF || error == EPERM;
}

/* A typo in user= would otherwise surface only after binding, as a failed drop. */
static int copy_existing_user(struct config_loader *ld, const struct ini_section *section,
                              const struct ini_key *key, char **out)
{
    if (config_loader_require_value(ld, section, key) < 0)
        return -1;
    errno = 0;
    if (getpwnam(key->value) == NULL) {
        int error = errno;
        if (lookup_missed(error))
            config_loader_error(ld, key->line, section->name, key->name, "no such user '%s'",
                                key->value);
        else
            config_loader_error(ld, key->line, section->name, key->name,
                                "cannot look up user '%s': %s", key->value, strerror(error));
        return -1;
    }
    return config_loader_copy_string(ld, section, key, out);
}

static int set_user(struct config_loader *ld, const struct ini_section *section,
                    const struct ini_key *key, struct global_config *global)
{
    return copy_existing_user(ld, section, key, &global->user);
}

static int set_pam_user(struct config_loader *ld, const struct ini_section *section,
                        const struct ini_key *key, struct global_config *global)
{
    return copy_existing_user(ld, section, key, &global->pam_user);
}

static int set_group(struct config_loader *ld, const struct ini_section *section,
                     const struct ini_key *key, struct global_config *global)
{
    if (config_loader_require_value(ld, section, key) < 0)
        return -1;
    errno = 0;
    if (getgrnam(key->value) == NULL) {
        int error = errno;
        if (lookup_missed(error))
            config_loader_error(ld, key->line, section->name, key->name, "no such group '%s'",
                                key->value);
        else
            config_loader_error(ld, key->line, section->name, key->name,
                                "cannot look up group '%s': %s", key->value, strerror(error));
        return -1;
    }
    return config_loader_copy_string(ld, section, key, &global->group);
}

static int set_workers(struct config_loader *ld, const struct ini_section *section,
                       const struct ini_key *key, struct global_config *global)
{
    uint64_t workers;

    if (config_loader_number(key->value, 0, WORKERS_MAX, &workers) < 0) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "'%s' is not a whole number from 0 (one per CPU) to %d", key->value,
                            WORKERS_MAX);
        return -1;
    }
    global->workers = (unsigned)workers;
    return 0;
}

static int set_shutdown_timeout(struct config_loader *ld, const struct ini_section *section,
                                const struct ini_key *key, struct global_config *global)
{
    return config_loader_timeout(ld, section, key, 0, &global->shutdown_timeout);
}

/* A bare port is the safe default: metrics stay on loopback unless an address says
 * otherwise. */
static int set_metrics_listen(struct config_loader *ld, const struct ini_section *section,
                              const struct ini_key *key, struct global_config *global)
{
    char with_host[300];
    const char *text = key->value;
    const char *reason;
    if (text[0] != '\0' && strspn(text, "0123456789") == strlen(text)) {
        snprintf(with_host, sizeof(with_host), "127.0.0.1:%s", text);
        text = with_host;
    }
    if (address_parse(text, &global->metrics_listen, &reason) < 0) {
        config_loader_error(ld, key->line, section->name, key->name, "%s", reason);
        return -1;
    }
    if (global->metrics_listen.kind == ADDRESS_SYSTEMD) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "use an address or a port (systemd: sockets are for tunnels)");
        return -1;
    }
    global->metrics_enabled = 1;
    return 0;
}

static int set_expiry_warning(struct config_loader *ld, const struct ini_section *section,
                              const struct ini_key *key, struct global_config *global)
{
    return config_loader_timeout(ld, section, key, 0, &global->expiry_warning);
}

static int set_lock_table_size(struct config_loader *ld, const struct ini_section *section,
                               const struct ini_key *key, struct global_config *global)
{
    uint64_t size;

    if (config_loader_number(key->value, LIMIT_LOCK_TABLE_MIN, LIMIT_LOCK_TABLE_MAX, &size) < 0) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "'%s' is not a whole number from %d to %d", key->value,
                            LIMIT_LOCK_TABLE_MIN, LIMIT_LOCK_TABLE_MAX);
        return -1;
    }
    global->lock_table_size = (unsigned)size;
    return 0;
}

static const struct config_global_key global_keys[] = {
    { "log_level", set_log_level },
    { "state_dir", set_state_dir },
    { "runtime_dir", set_runtime_dir },
    { "user", set_user },
    { "group", set_group },
    { "pam_user", set_pam_user },
    { "workers", set_workers },
    { "shutdown_timeout", set_shutdown_timeout },
    { "metrics_listen", set_metrics_listen },
    { "expiry_warning", set_expiry_warning },
    { "lock_table_size", set_lock_table_size },
    { "state_store", state_store_keys_set_store },
    { "gateway_name", state_store_keys_set_gateway_name },
};

const struct config_global_key *global_keys_list(size_t *count)
{
    *count = sizeof(global_keys) / sizeof(global_keys[0]);
    return global_keys;
}

void global_keys_defaults(struct config_loader *ld)
{
    struct global_config *global = &ld->config->global;

    global->log_level = LOG_LEVEL_INFO;
    global->workers = 0;
    global->shutdown_timeout = DEFAULT_SHUTDOWN_TIMEOUT;
    global->expiry_warning = DEFAULT_EXPIRY_WARNING;
    global->lock_table_size = LIMIT_LOCK_TABLE_DEFAULT;
    global->state_dir = strdup(DEFAULT_STATE_DIR);
    global->runtime_dir = strdup(DEFAULT_RUNTIME_DIR);
    if (global->state_dir == NULL || global->runtime_dir == NULL)
        ld->out_of_memory = 1;
}

static unsigned online_cpus(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    if (cpus < 1)
        return 1;
    return cpus > WORKERS_MAX ? WORKERS_MAX : (unsigned)cpus;
}

void global_keys_finish(struct global_config *global)
{
    if (global->workers == 0)
        global->workers = online_cpus();
}
