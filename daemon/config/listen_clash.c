#include "config/listen_clash.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

struct bound_listen {
    const struct tunnel_config *tunnel;
    int line;
    struct sockaddr_storage addr;
    socklen_t len;
};

static int is_any_address(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
    return 0;
}

static int same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr
               == ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
    return strcmp(((const struct sockaddr_un *)a)->sun_path,
                  ((const struct sockaddr_un *)b)->sun_path) == 0;
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_port;
    if (ss->ss_family == AF_INET6)
        return ((const struct sockaddr_in6 *)ss)->sin6_port;
    return 0;
}

/* Two sockets that would share clients. An IPv6 wildcard also takes IPv4 connections
 * (net.ipv6.bindv6only = 0, Linux's default), so it overlaps IPv4 addresses too. */
static int listens_overlap(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family == AF_UNIX || b->ss_family == AF_UNIX)
        return same_address(a, b);
    if (port_of(a) != port_of(b))
        return 0;
    if (a->ss_family == b->ss_family)
        return same_address(a, b) || is_any_address(a) || is_any_address(b);
    return is_any_address(a->ss_family == AF_INET6 ? a : b);
}

/* Two tunnels cannot share one socket systemd passed. */
static void check_systemd_name_clash(struct config_loader *ld, const struct tunnel_config *tunnel,
                                     int line)
{
    for (size_t i = 0; i < ld->config->tunnel_count; i++) {
        const struct tunnel_config *other = &ld->config->tunnels[i];
        if (other == tunnel)
            return;
        if (other->listen.kind == ADDRESS_SYSTEMD &&
            strcmp(other->listen.fd_name, tunnel->listen.fd_name) == 0) {
            config_loader_error(ld, line, tunnel->name, "listen",
                                "systemd:%s is already the listen socket of [%s]",
                                tunnel->listen.fd_name, other->name);
            return;
        }
    }
}

/* Also refuses a wildcard and a specific address on one port: with SO_REUSEPORT both
 * binds would succeed and the kernel would split one port's clients between tunnels. */
void listen_clash_check(struct config_loader *ld, const struct ini_source *source)
{
    struct bound_listen *bound = calloc(ld->config->tunnel_count + 1, sizeof(*bound));
    size_t bound_count = 0;
    char error[512];

    if (bound == NULL) {
        ld->out_of_memory = 1;
        return;
    }
    for (size_t t = 0; t < ld->config->tunnel_count; t++) {
        const struct tunnel_config *tunnel = &ld->config->tunnels[t];
        const struct ini_section *section = NULL;
        for (size_t s = 0; s < source->section_count && section == NULL; s++)
            if (strcmp(source->sections[s].name, tunnel->name) == 0)
                section = &source->sections[s];
        const struct ini_key *key = section ? ini_source_find_key(section, "listen") : NULL;
        /* address_parse never leaves an empty host: empty means listen had an error. */
        if (key == NULL || (tunnel->listen.kind == ADDRESS_INET && tunnel->listen.host[0] == '\0'))
            continue;
        if (tunnel->listen.kind == ADDRESS_SYSTEMD) {
            check_systemd_name_clash(ld, tunnel, key->line);
            continue;
        }

        struct bound_listen *mine = &bound[bound_count];
        mine->tunnel = tunnel;
        mine->line = key->line;
        if (address_resolve(&tunnel->listen, &mine->addr, &mine->len, error, sizeof(error)) < 0) {
            config_loader_error(ld, key->line, tunnel->name, "listen", "%s", error);
            continue;
        }
        for (size_t i = 0; i < bound_count; i++) {
            const struct bound_listen *other = &bound[i];
            if (!listens_overlap(&other->addr, &mine->addr))
                continue;
            char shown[300], other_shown[300];
            address_format(&tunnel->listen, shown, sizeof(shown));
            address_format(&other->tunnel->listen, other_shown, sizeof(other_shown));
            if (same_address(&other->addr, &mine->addr))
                config_loader_error(ld, key->line, tunnel->name, "listen",
                                    "%s is already the listen address of [%s] (line %d)", shown,
                                    other->tunnel->name, other->line);
            else
                config_loader_error(ld, key->line, tunnel->name, "listen",
                                    "%s overlaps %s, the listen address of [%s] (line %d)", shown,
                                    other_shown, other->tunnel->name, other->line);
        }
        bound_count++;
    }
    free(bound);
}
