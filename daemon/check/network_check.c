#include "check/network_check.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "addrplan/address_plan.h"
#include "core/ip_prefix.h"

#define TUN_DEVICE_PATH "/dev/net/tun"

static int overlap(const struct ip_prefix *a, const struct ip_prefix *b)
{
    if (a->family != b->family)
        return 0;
    const struct ip_prefix *wider = a->len <= b->len ? a : b;
    const struct ip_prefix *narrower = wider == a ? b : a;
    return ip_prefix_contains(wider, narrower->family, narrower->addr);
}

/* ERR is address_plan_build's "FILE:LINE: [tunnel] key: reason": the problem is added
 * at that line and key with the reason alone, as every check reports. */
static void add_plan_error(const struct tunnel_config *tunnel, const char *err,
                           struct check_report *report)
{
    size_t source_len = strlen(tunnel->source);
    const char *rest = err;
    int line = tunnel->line;
    if (strncmp(err, tunnel->source, source_len) == 0 && err[source_len] == ':') {
        char *end;
        long parsed = strtol(err + source_len + 1, &end, 10);
        if (end != err + source_len + 1 && parsed > 0 && parsed <= 0x7fffffff)
            line = (int)parsed;
        rest = end;
    }
    const char *key_start = strstr(rest, "] ");
    const char *key_end = key_start != NULL ? strstr(key_start + 2, ": ") : NULL;
    if (key_end == NULL) {
        check_report_add(report, CHECK_ERROR, tunnel->source, line, tunnel->name, NULL, "%s",
                         err);
        return;
    }
    char key[64];
    size_t key_len = (size_t)(key_end - (key_start + 2));
    if (key_len >= sizeof(key))
        key_len = sizeof(key) - 1;
    memcpy(key, key_start + 2, key_len);
    key[key_len] = '\0';
    check_report_add(report, CHECK_ERROR, tunnel->source, line, tunnel->name, key, "%s",
                     key_end + 2);
}

static void check_push_routes(const struct tunnel_config *tunnel, struct check_report *report)
{
    const struct network_config *net = &tunnel->network;
    char route[IP_PREFIX_TEXT_MAX], other[IP_PREFIX_TEXT_MAX];
    for (size_t i = 0; i < net->push_route_count; i++) {
        const struct ip_prefix *r = &net->push_routes[i];
        ip_prefix_format(r, route, sizeof(route));
        for (size_t j = 0; j < net->hub_address_count; j++) {
            struct ip_prefix pool = ip_prefix_network(&net->hub_addresses[j]);
            if (overlap(r, &pool))
                check_report_tunnel(report, CHECK_WARNING, tunnel, "push_routes",
                                    "%s overlaps the pool %s: clients reach the pool through "
                                    "the tunnel already; route only the networks behind the hub",
                                    route, ip_prefix_format(&pool, other, sizeof(other)));
        }
        for (size_t j = 0; j < net->client_network_count; j++) {
            const struct network_client_entry *e = &net->client_networks[j];
            if (overlap(r, &e->prefix))
                check_report_tunnel(report, CHECK_WARNING, tunnel, "push_routes",
                                    "%s overlaps %s behind %s: that client would route its own "
                                    "network into the tunnel", route,
                                    ip_prefix_format(&e->prefix, other, sizeof(other)),
                                    e->identity);
        }
    }
}

void network_check_config(const struct config *config, struct check_report *report)
{
    const struct tunnel_config *first = NULL;
    char err[512];
    for (size_t i = 0; i < config->tunnel_count; i++) {
        const struct tunnel_config *tunnel = &config->tunnels[i];
        if (tunnel->type != TUNNEL_TYPE_NETWORK)
            continue;
        if (first == NULL)
            first = tunnel;
        if (tunnel->mode != TUNNEL_MODE_SERVER)
            continue;
        struct address_lease *plan = address_plan_build(tunnel, err, sizeof(err));
        if (plan == NULL)
            add_plan_error(tunnel, err, report);
        address_lease_free(plan);
        check_push_routes(tunnel, report);
    }
    if (first != NULL && access(TUN_DEVICE_PATH, F_OK) != 0)
        check_report_tunnel(report, CHECK_WARNING, first, "type",
                            "network, but this host has no " TUN_DEVICE_PATH ": no TUN device "
                            "can be made (load the tun module; in a container, pass the "
                            "device in)");
}
