#include "supervisor/generation.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check/config_check.h"
#include "supervisor/listener.h"
#include "tls/access_rules.h"
#include "tls/tls_context.h"
#include "core/log.h"
#include "core/utc_time.h"

static int same_address(const struct address *a, const struct address *b)
{
    if (a->kind != b->kind)
        return 0;
    if (a->kind == ADDRESS_UNIX)
        return strcmp(a->path, b->path) == 0;
    if (a->kind == ADDRESS_SYSTEMD)
        return strcmp(a->fd_name, b->fd_name) == 0;
    return a->port == b->port && strcmp(a->host, b->host) == 0;
}

/* Takes the previous generation's socket for ADDR so the parent never closes it. */
static int adopt_listener(struct generation *previous, const struct address *addr)
{
    if (previous == NULL)
        return -1;
    for (size_t i = 0; i < previous->tunnel_count; i++) {
        struct tunnel *old = &previous->tunnels[i];
        if (old->listen_fd >= 0 && same_address(&old->config->listen, addr)) {
            int fd = old->listen_fd;
            old->listen_fd = -1;
            return fd;
        }
    }
    return -1;
}

struct generation *generation_create(struct config *config, struct generation *previous,
                                     struct conn_limit *limits, struct stats *stats)
{
    struct generation *gen = calloc(1, sizeof(*gen));
    if (gen == NULL) {
        log_error("out of memory");
        config_free(config);
        return NULL;
    }
    gen->config = config;
    gen->number = previous != NULL ? previous->number + 1 : 1;
    gen->tunnels = calloc(config->tunnel_count, sizeof(*gen->tunnels));
    if (gen->tunnels == NULL) {
        log_error("out of memory");
        goto fail;
    }
    for (size_t i = 0; i < config->tunnel_count; i++)
        gen->tunnels[i].listen_fd = -1;
    gen->tunnel_count = config->tunnel_count;

    char err[256];
    if (privdrop_resolve(config->global.user, config->global.group, &gen->run_as, err,
                         sizeof(err)) < 0) {
        log_error("%s: [global] user/group: %s", config->path, err);
        goto fail;
    }
    int failed = 0;
    for (size_t i = 0; i < config->tunnel_count; i++) {
        struct tunnel *tunnel = &gen->tunnels[i];
        tunnel->config = &config->tunnels[i];
        tunnel->ssl_ctx = tls_context_create(tunnel->config);
        if (tunnel->ssl_ctx == NULL)
            failed = 1;
        int fresh;
        tunnel->limit_slot = conn_limit_tunnel_slot(limits, tunnel->config->name, &fresh);
        if (fresh)
            stats_reset_tunnel(stats, tunnel->limit_slot);
        if (tunnel->limit_slot < 0) {
            log_error("[%s] too many tunnels (at most %d)", tunnel->config->name,
                      CONN_LIMIT_TUNNEL_SLOTS);
            failed = 1;
        }
    }
    if (failed)
        goto fail;
    /* Listeners last: a config whose keys do not load never steals a socket. */
    for (size_t i = 0; i < config->tunnel_count; i++) {
        struct tunnel *tunnel = &gen->tunnels[i];
        if (!config_tunnel_listens(tunnel->config))
            continue;
        tunnel->listen_fd = adopt_listener(previous, &tunnel->config->listen);
        if (tunnel->listen_fd >= 0)
            continue;
        tunnel->listen_fd = listener_open(&tunnel->config->listen, err, sizeof(err));
        if (tunnel->listen_fd < 0) {
            char where[300];
            log_error("[%s] listen %s: %s", tunnel->config->name,
                      address_format(&tunnel->config->listen, where, sizeof(where)), err);
            failed = 1;
        }
    }
    if (failed)
        goto fail_return_listeners;
    return gen;

fail_return_listeners:
    /* Hand adopted sockets back so the running generation keeps serving them. */
    if (previous != NULL) {
        for (size_t i = 0; i < gen->tunnel_count; i++) {
            struct tunnel *tunnel = &gen->tunnels[i];
            for (size_t j = 0; j < previous->tunnel_count && tunnel->listen_fd >= 0; j++) {
                struct tunnel *old = &previous->tunnels[j];
                if (old->listen_fd < 0 && same_address(&old->config->listen, &tunnel->config->listen)) {
                    old->listen_fd = tunnel->listen_fd;
                    tunnel->listen_fd = -1;
                }
            }
        }
    }
fail:
    generation_free(gen);
    return NULL;
}

int generation_share_access_rules(const struct generation *gen)
{
    int fd = memfd_create("ktlstun-access-rules", MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0) {
        log_error("cannot hand the reloaded access rules to older workers: memfd_create: %s",
                  strerror(errno));
        return -1;
    }
    errno = 0;
    int copy = dup(fd);
    FILE *out = copy >= 0 ? fdopen(copy, "w") : NULL;
    int failed = out == NULL;
    if (out == NULL && copy >= 0)
        close(copy);
    if (out != NULL) {
        failed = access_rules_write_header(out, gen->number, utc_time_now()) < 0;
        for (size_t i = 0; i < gen->tunnel_count && !failed; i++)
            failed = access_rules_write_tunnel(out, gen->tunnels[i].config, gen->tunnels[i].ssl_ctx) < 0;
        failed |= fclose(out) != 0;
    }
    /* Sealed: every older worker maps the same file, and none may change it for the
     * others. */
    if (!failed && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
        failed = 1;
    if (failed) {
        log_error("cannot hand the reloaded access rules to older workers: %s",
                  errno != 0 ? strerror(errno) : "write failed");
        close(fd);
        return -1;
    }
    return fd;
}

int generation_check(const struct generation *current, const struct config *config)
{
    int result = -1;
    char (*held)[300] = calloc(current->tunnel_count + 1, sizeof(*held));
    const char **names = calloc(current->tunnel_count + 1, sizeof(*names));
    if (held == NULL || names == NULL) {
        log_error("out of memory");
        goto out;
    }
    size_t count = 0;
    for (size_t i = 0; i < current->tunnel_count; i++) {
        if (current->tunnels[i].listen_fd < 0)
            continue;
        names[count] = address_format(&current->tunnels[i].config->listen, held[count],
                                      sizeof(held[count]));
        count++;
    }
    result = config_check_loaded(config, names, count);
out:
    free(names);
    free(held);
    return result;
}

void generation_free(struct generation *gen)
{
    if (gen == NULL)
        return;
    for (size_t i = 0; i < gen->tunnel_count; i++) {
        struct tunnel *tunnel = &gen->tunnels[i];
        SSL_CTX_free(tunnel->ssl_ctx);
        if (tunnel->listen_fd >= 0)
            listener_close(tunnel->listen_fd, &tunnel->config->listen);
    }
    free(gen->tunnels);
    config_free(gen->config);
    free(gen);
}

void generation_close_listener_copies(struct generation *gen)
{
    for (size_t i = 0; i < gen->tunnel_count; i++) {
        if (gen->tunnels[i].listen_fd >= 0) {
            close(gen->tunnels[i].listen_fd);
            gen->tunnels[i].listen_fd = -1;
        }
    }
}
