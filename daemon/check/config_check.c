#include "check/config_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "check/cert_check.h"
#include "check/crl_check.h"
#include "check/host_check.h"
#include "check/key_pair_check.h"
#include "check/listen_check.h"
#include "check/network_check.h"
#include "core/log.h"
#include "proto/status_record.h"
#include "proto/status_socket.h"
#include "tls/tls_context.h"

int config_check_run(const struct config *config, enum config_check_caller caller,
                     const struct listen_check_held *held, struct check_report *report)
{
    /* Only root is sure to be able to do what the daemon started as root would. */
    enum check_severity privilege = caller == CONFIG_CHECK_CLI && geteuid() != 0 ? CHECK_WARNING
                                                                                : CHECK_ERROR;
    time_t now = time(NULL);
    int result = 0;
    host_check_user(config, privilege, report);
    for (size_t i = 0; i < config->tunnel_count; i++) {
        const struct tunnel_config *tunnel = &config->tunnels[i];
        /* A pair that would not load is reported with its fix, not in OpenSSL's words
         * from a context built anyway. */
        SSL_CTX *ctx = NULL;
        if (key_pair_check_tunnel(tunnel, report) == 0)
            ctx = tls_context_create(tunnel);
        if (ctx == NULL)
            result = -1;
        cert_check_tunnel(tunnel, ctx, now, config->global.expiry_warning, report);
        if (ctx != NULL)
            crl_check_store(tunnel, SSL_CTX_get_cert_store(ctx), now, report);
        SSL_CTX_free(ctx);
    }
    host_check_ktls(config, report);
    listen_check_config(config, held, privilege, report);
    network_check_config(config, report);
    return result;
}

struct held_addresses {
    char **list;
    size_t count, capacity;
};

/* A "tunnel" line of a worker's status: its listen address is held. */
static int note_listen(char *line, void *arg)
{
    struct held_addresses *held = arg;
    struct status_record record;
    if (status_record_parse(line, &record) < 0 || strcmp(record.kind, "tunnel") != 0)
        return 0;
    const char *listen = status_record_get(&record, "listen", NULL);
    if (listen == NULL)
        return 0;
    if (held->count == held->capacity) {
        size_t capacity = held->capacity == 0 ? 16 : 2 * held->capacity;
        char **grown = realloc(held->list, capacity * sizeof(*grown));
        if (grown == NULL)
            return -1;
        held->list = grown;
        held->capacity = capacity;
    }
    if ((held->list[held->count] = strdup(listen)) == NULL)
        return -1;
    held->count++;
    return 0;
}

static void print_problems(const struct check_report *report)
{
    for (size_t i = 0; i < report->count; i++) {
        const struct check_problem *problem = &report->problems[i];
        fprintf(stderr, "%s: %s%s\n", problem->where,
                problem->severity == CHECK_WARNING ? "warning: " : "", problem->reason);
    }
    if (report->out_of_memory)
        fprintf(stderr, "out of memory: some problems are not shown\n");
}

int config_check_file(const char *path, enum config_check_caller caller)
{
    log_use_plain_stderr();
    char *errors = NULL;
    struct config *config = config_load(path, &errors);
    if (config == NULL) {
        fprintf(stderr, "%s", errors != NULL ? errors : "configuration could not be loaded\n");
        free(errors);
        return 1;
    }
    /* Run beside the daemon (the unit's ExecReload=), -t must not take the listeners
     * the daemon holds, and keeps on reload, for someone else's. */
    struct held_addresses held = { 0 };
    unsigned denied = 0;
    status_socket_ask_all(config->global.runtime_dir, note_listen, &held, &denied);
    struct listen_check_held listeners = { .addresses = (const char *const *)held.list,
                                           .count = held.count, .unknown = denied > 0 };
    struct check_report report = { 0 };
    int failed = config_check_run(config, caller, &listeners, &report) < 0;
    print_problems(&report);
    if (check_report_errors(&report) > 0)
        failed = 1;
    check_report_free(&report);
    for (size_t i = 0; i < held.count; i++)
        free(held.list[i]);
    free(held.list);
    config_free(config);
    if (failed)
        return 1;
    printf("configuration %s is ok\n", path);
    return 0;
}

int config_check_loaded(const struct config *config, const char *const *held, size_t held_count)
{
    struct listen_check_held listeners = { .addresses = held, .count = held_count };
    struct check_report report = { 0 };
    int failed = config_check_run(config, CONFIG_CHECK_DAEMON, &listeners, &report) < 0;
    for (size_t i = 0; i < report.count; i++) {
        const struct check_problem *problem = &report.problems[i];
        log_msg(problem->severity == CHECK_WARNING ? LOG_LEVEL_WARNING : LOG_LEVEL_ERROR, "%s: %s",
                problem->where, problem->reason);
    }
    if (report.out_of_memory)
        log_error("out of memory while checking %s", config->path);
    if (check_report_errors(&report) > 0)
        failed = 1;
    check_report_free(&report);
    return failed ? -1 : 0;
}
