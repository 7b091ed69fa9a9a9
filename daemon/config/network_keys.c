#include "config/network_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "core/ip_prefix.h"
#include "core/string_list.h"

#define MTU_MIN 576        /* what every IPv4 host must take */
#define MTU_MAX 9000       /* jumbo frames */
#define MTU_MIN_IPV6 1280  /* IPv6's minimum link MTU */
#define KEEPALIVE_MAX 3600
#define RECONNECT_MAX_MAX 3600
#define DEVICE_PREFIX "ktl"
#define DEVICE_NAME_MAX 15 /* IFNAMSIZ less its NUL */

/* The keys only a network tunnel has, "type" aside. */
static const char *const network_only[] = {
    "address", "push_routes", "client_address", "client_networks", "mtu",
    "keepalive", "mss_clamp", "device", "reconnect_max",
};

static int is_network_only(const char *name)
{
    for (size_t i = 0; i < sizeof(network_only) / sizeof(network_only[0]); i++)
        if (strcmp(network_only[i], name) == 0)
            return 1;
    return 0;
}

/* The rules of netdev/tun_device.c's tun_device_name_valid, which config/ may not
 * include: 1..15 bytes of printable ASCII but '/', ':' and blanks; not "." or "..". */
static int device_char_valid(unsigned char c)
{
    return c > ' ' && c < 0x7f && c != '/' && c != ':';
}

static int device_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > DEVICE_NAME_MAX || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!device_char_valid((unsigned char)name[i]))
            return 0;
    return 1;
}

static int has_ipv6(const struct network_config *net)
{
    for (size_t i = 0; i < net->hub_address_count; i++)
        if (net->hub_addresses[i].family == AF_INET6)
            return 1;
    for (size_t i = 0; i < net->push_route_count; i++)
        if (net->push_routes[i].family == AF_INET6)
            return 1;
    for (size_t i = 0; i < net->fixed_count; i++)
        if (net->fixed[i].prefix.family == AF_INET6)
            return 1;
    for (size_t i = 0; i < net->client_network_count; i++)
        if (net->client_networks[i].prefix.family == AF_INET6)
            return 1;
    return 0;
}

/* Parses TEXT into *OUT; a NETWORK must have no host bits, a host (not NETWORK) must
 * be one address (/32, /128). Returns 0, or -1 after reporting why not. */
static int parse_prefix(struct config_loader *ld, const struct ini_section *section,
                        const struct ini_key *key, const char *text, int network,
                        struct ip_prefix *out)
{
    const char *reason = NULL;
    char shown[IP_PREFIX_TEXT_MAX];
    if (ip_prefix_parse(text, out, &reason) != 0) {
        config_loader_error(ld, key->line, section->name, key->name, "'%s': %s", text, reason);
        return -1;
    }
    if (network && !ip_prefix_is_network(out)) {
        struct ip_prefix net = ip_prefix_network(out);
        config_loader_error(ld, key->line, section->name, key->name,
                            "'%s' is not a network, it has host bits set (write %s)", text,
                            ip_prefix_format(&net, shown, sizeof(shown)));
        return -1;
    }
    if (!network && out->len != ip_prefix_max_len(out->family)) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "'%s' is not one address (leave out the /%u)", text, out->len);
        return -1;
    }
    return 0;
}

static int set_type(struct config_loader *ld, const struct ini_section *section,
                    const struct ini_key *key, struct tunnel_config *tunnel)
{
    if (strcasecmp(key->value, "stream") == 0)
        tunnel->type = TUNNEL_TYPE_STREAM;
    else if (strcasecmp(key->value, "network") == 0)
        tunnel->type = TUNNEL_TYPE_NETWORK;
    else {
        config_loader_error(ld, key->line, section->name, key->name,
                            "'%s' is not a tunnel type (use stream or network)", key->value);
        return -1;
    }
    return 0;
}

/* A hub's address per family, its length the pool's. The pool's own rules (room for a
 * client, the hub inside and not its first or last) are address_plan_build's. */
static int set_hub_address(struct config_loader *ld, const struct ini_section *section,
                           const struct ini_key *key, struct tunnel_config *tunnel)
{
    struct network_config *net = &tunnel->network;
    struct string_list items = { 0 };
    int result = -1;
    net->hub_address_count = 0;
    if (config_loader_list(ld, section, key, &items) < 0)
        goto out;
    result = 0;
    for (size_t i = 0; i < items.count; i++) {
        struct ip_prefix p;
        const char *reason = NULL;
        if (ip_prefix_parse(items.items[i], &p, &reason) != 0) {
            config_loader_error(ld, key->line, section->name, key->name, "'%s': %s",
                                items.items[i], reason);
            result = -1;
            continue;
        }
        int twice = 0;
        for (size_t j = 0; j < net->hub_address_count; j++)
            twice |= net->hub_addresses[j].family == p.family;
        if (twice) {
            config_loader_error(ld, key->line, section->name, key->name,
                                "'%s': one address per family (IPv4, IPv6)", items.items[i]);
            result = -1;
            continue;
        }
        net->hub_addresses[net->hub_address_count++] = p;
    }
out:
    string_list_clear(&items);
    return result;
}

static int same_prefix(const struct ip_prefix *a, const struct ip_prefix *b)
{
    return a->family == b->family && a->len == b->len
           && memcmp(a->addr, b->addr, ip_prefix_addr_len(a->family)) == 0;
}

static int set_push_routes(struct config_loader *ld, const struct ini_section *section,
                           const struct ini_key *key, struct tunnel_config *tunnel)
{
    struct network_config *net = &tunnel->network;
    struct string_list items = { 0 };
    int result = -1;
    net->push_route_count = 0;
    if (config_loader_list(ld, section, key, &items) < 0)
        goto out;
    if (items.count > NETWORK_MAX_PUSH_ROUTES) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "%zu routes, at most %d", items.count, NETWORK_MAX_PUSH_ROUTES);
        goto out;
    }
    result = 0;
    for (size_t i = 0; i < items.count; i++) {
        struct ip_prefix p;
        if (parse_prefix(ld, section, key, items.items[i], 1, &p) < 0) {
            result = -1;
            continue;
        }
        int twice = 0;
        for (size_t j = 0; j < net->push_route_count; j++)
            twice |= same_prefix(&net->push_routes[j], &p);
        if (twice) {
            config_loader_error(ld, key->line, section->name, key->name, "'%s' is listed twice",
                                items.items[i]);
            result = -1;
            continue;
        }
        net->push_routes[net->push_route_count++] = p;
    }
out:
    string_list_clear(&items);
    return result;
}

static void free_entries(struct network_client_entry *entries, size_t count)
{
    for (size_t i = 0; i < count; i++)
        free(entries[i].identity);
    free(entries);
}

/* KEY's "CN=PREFIX" entries (the rightmost '=' splits: a CN may hold one) into
 * *ENTRIES and *COUNT, each PREFIX a NETWORK or a host. Returns 0, or -1 after
 * reporting a problem or setting out_of_memory. */
static int set_entries(struct config_loader *ld, const struct ini_section *section,
                       const struct ini_key *key, int network,
                       struct network_client_entry **entries, size_t *count)
{
    struct string_list items = { 0 };
    int result = -1;
    free_entries(*entries, *count);
    *entries = NULL;
    *count = 0;
    if (config_loader_list(ld, section, key, &items) < 0)
        goto out;
    if ((*entries = calloc(items.count, sizeof(**entries))) == NULL) {
        ld->out_of_memory = 1;
        goto out;
    }
    result = 0;
    for (size_t i = 0; i < items.count; i++) {
        char *item = items.items[i];
        char *equals = strrchr(item, '=');
        struct network_client_entry *e = &(*entries)[*count];
        if (equals == NULL || equals == item || equals[1] == '\0') {
            config_loader_error(ld, key->line, section->name, key->name,
                                "'%s' is not CN=%s", item, network ? "NETWORK" : "ADDRESS");
            result = -1;
            continue;
        }
        *equals = '\0';
        /* Blanks around '=' are the writer's, not the certificate's. */
        size_t cn_len = strlen(item);
        while (cn_len > 0 && (item[cn_len - 1] == ' ' || item[cn_len - 1] == '\t'))
            item[--cn_len] = '\0';
        const char *text = equals + 1;
        while (*text == ' ' || *text == '\t')
            text++;
        /* string_list_split trimmed the item: a CN of blanks alone cannot be left. */
        if (parse_prefix(ld, section, key, text, network, &e->prefix) < 0) {
            result = -1;
            continue;
        }
        if (!network) {
            int twice = 0;
            for (size_t j = 0; j < *count; j++)
                twice |= strcmp((*entries)[j].identity, item) == 0
                         && (*entries)[j].prefix.family == e->prefix.family;
            if (twice) {
                config_loader_error(ld, key->line, section->name, key->name,
                                    "%s has an %s address already (one per family)", item,
                                    e->prefix.family == AF_INET ? "IPv4" : "IPv6");
                result = -1;
                continue;
            }
        }
        if ((e->identity = strdup(item)) == NULL) {
            ld->out_of_memory = 1;
            result = -1;
            goto out;
        }
        e->line = key->line;
        (*count)++;
    }
out:
    string_list_clear(&items);
    return result;
}

static int set_client_address(struct config_loader *ld, const struct ini_section *section,
                              const struct ini_key *key, struct tunnel_config *tunnel)
{
    return set_entries(ld, section, key, 0, &tunnel->network.fixed, &tunnel->network.fixed_count);
}

static int set_client_networks(struct config_loader *ld, const struct ini_section *section,
                               const struct ini_key *key, struct tunnel_config *tunnel)
{
    return set_entries(ld, section, key, 1, &tunnel->network.client_networks,
                       &tunnel->network.client_network_count);
}

static int set_mtu(struct config_loader *ld, const struct ini_section *section,
                   const struct ini_key *key, struct tunnel_config *tunnel)
{
    uint64_t mtu;
    if (config_loader_number(key->value, MTU_MIN, MTU_MAX, &mtu) < 0) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "'%s' is not a whole number from %d to %d", key->value, MTU_MIN,
                            MTU_MAX);
        return -1;
    }
    tunnel->network.mtu = (unsigned)mtu;
    return 0;
}

/* A duration from 1s to MAX seconds into *SECONDS. */
static int set_interval(struct config_loader *ld, const struct ini_section *section,
                        const struct ini_key *key, uint64_t max, uint64_t *seconds)
{
    uint64_t value;
    if (config_loader_timeout(ld, section, key, 1, &value) < 0)
        return -1;
    if (value > max) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "too large (at most %llus)", (unsigned long long)max);
        return -1;
    }
    *seconds = value;
    return 0;
}

static int set_keepalive(struct config_loader *ld, const struct ini_section *section,
                         const struct ini_key *key, struct tunnel_config *tunnel)
{
    uint64_t seconds;
    if (set_interval(ld, section, key, KEEPALIVE_MAX, &seconds) < 0)
        return -1;
    tunnel->network.keepalive = (unsigned)seconds;
    return 0;
}

static int set_mss_clamp(struct config_loader *ld, const struct ini_section *section,
                         const struct ini_key *key, struct tunnel_config *tunnel)
{
    return config_loader_yes_no(ld, section, key, &tunnel->network.mss_clamp);
}

static int set_device(struct config_loader *ld, const struct ini_section *section,
                      const struct ini_key *key, struct tunnel_config *tunnel)
{
    if (!device_name_valid(key->value)) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "'%s' is not a device name (1 to %d characters, no '/', ':' or "
                            "blanks)", key->value, DEVICE_NAME_MAX);
        return -1;
    }
    snprintf(tunnel->network.device, sizeof(tunnel->network.device), "%s", key->value);
    return 0;
}

static int set_reconnect_max(struct config_loader *ld, const struct ini_section *section,
                             const struct ini_key *key, struct tunnel_config *tunnel)
{
    return set_interval(ld, section, key, RECONNECT_MAX_MAX, &tunnel->network.reconnect_max);
}

static const struct config_tunnel_key network_keys[] = {
    { "type", SCOPE_ANY, 0, set_type },
    { "address", SCOPE_SERVER, 0, set_hub_address },
    { "push_routes", SCOPE_SERVER, 0, set_push_routes },
    { "client_address", SCOPE_SERVER, 0, set_client_address },
    { "client_networks", SCOPE_SERVER, 0, set_client_networks },
    { "mtu", SCOPE_SERVER, 0, set_mtu },
    { "keepalive", SCOPE_SERVER, 0, set_keepalive },
    { "mss_clamp", SCOPE_ANY, 0, set_mss_clamp },
    { "device", SCOPE_CLIENT, 0, set_device },
    { "reconnect_max", SCOPE_CLIENT, 0, set_reconnect_max },
};

const struct config_tunnel_key *network_keys_list(size_t *count)
{
    *count = sizeof(network_keys) / sizeof(network_keys[0]);
    return network_keys;
}

void network_keys_defaults(struct tunnel_config *tunnel)
{
    tunnel->type = TUNNEL_TYPE_STREAM;
    tunnel->network.mtu = NETWORK_DEFAULT_MTU;
    tunnel->network.keepalive = NETWORK_DEFAULT_KEEPALIVE;
    tunnel->network.mss_clamp = 1;
    tunnel->network.reconnect_max = NETWORK_DEFAULT_RECONNECT_MAX;
}

int network_keys_type(struct config_loader *ld, const struct ini_section *section,
                      struct tunnel_config *tunnel)
{
    const struct ini_key *type = ini_source_find_key(section, "type");
    if (type == NULL || type->value == NULL)
        return 0;
    if (set_type(ld, section, type, tunnel) < 0)
        return -1;
    if (tunnel->key_line_count < CONFIG_MAX_KEY_LINES)
        tunnel->key_lines[tunnel->key_line_count++] =
            (struct config_key_line){ network_keys[0].name, type->line };
    return 0;
}

int network_keys_allowed(struct config_loader *ld, const struct ini_section *section,
                         const struct ini_key *key, const struct tunnel_config *tunnel)
{
    if (tunnel->type != TUNNEL_TYPE_NETWORK) {
        if (!is_network_only(key->name))
            return 0;
        config_loader_error(ld, key->line, section->name, key->name,
                            "only for type = network (this tunnel has type = stream)");
        return -1;
    }
    if (network_keys_not_needed(tunnel, key->name)) {
        if (tunnel->mode == TUNNEL_MODE_CLIENT)
            config_loader_error(ld, key->line, section->name, key->name,
                                "a network client has no listener: its packets come from its "
                                "device (remove listen)");
        else
            config_loader_error(ld, key->line, section->name, key->name,
                                "a network tunnel has no target: the hub routes each client's "
                                "packets (remove target)");
        return -1;
    }
    return 0;
}

int network_keys_not_needed(const struct tunnel_config *tunnel, const char *name)
{
    if (tunnel->type != TUNNEL_TYPE_NETWORK)
        return 0;
    return strcmp(name, tunnel->mode == TUNNEL_MODE_CLIENT ? "listen" : "target") == 0;
}

/* "ktl" + NAME, each character a device name may not hold as '_', cut to fit. */
static void default_device(const char *name, char *device)
{
    size_t used = strlen(DEVICE_PREFIX);
    memcpy(device, DEVICE_PREFIX, used);
    for (; *name != '\0' && used < DEVICE_NAME_MAX; name++) {
        device[used++] = *name;
        if (!device_char_valid((unsigned char)*name))
            device[used - 1] = '_';
    }
    device[used] = '\0';
}

/* A hub names the device of each client connection "ktl" + tunnel + "." + a counter
 * (netdev/hub_device.c): a client's device of that form could be taken by one. */
static int like_hub_device(const char *device)
{
    const char *dot = strrchr(device, '.');
    if (strncmp(device, DEVICE_PREFIX, strlen(DEVICE_PREFIX)) != 0 || dot == NULL
        || dot[1] == '\0')
        return 0;
    return strspn(dot + 1, "0123456789") == strlen(dot + 1);
}

int network_keys_finish(struct config_loader *ld, const struct ini_section *section,
                        struct tunnel_config *tunnel)
{
    struct network_config *net = &tunnel->network;
    int result = 0;
    if (tunnel->type != TUNNEL_TYPE_NETWORK)
        return 0;
    if (tunnel->mode == TUNNEL_MODE_CLIENT) {
        if (net->device[0] == '\0')
            default_device(tunnel->name, net->device);
        if (!like_hub_device(net->device))
            return 0;
        config_loader_error(ld, config_key_line(tunnel, "device"), section->name, "device",
                            "%s has the form of a hub's devices (%sNAME.N); set device to "
                            "another name", net->device, DEVICE_PREFIX);
        return -1;
    }
    if (ini_source_find_key(section, "address") == NULL) {
        config_loader_error(ld, section->line, section->name, "address",
                            "missing (required in a network hub: its tunnel address per "
                            "family, whose length is the pool clients get addresses from, "
                            "e.g. 10.8.0.1/24)");
        result = -1;
    }
    if (net->mtu < MTU_MIN_IPV6 && has_ipv6(net)) {
        config_loader_error(ld, config_key_line(tunnel, "mtu"), section->name, "mtu",
                            "%u is too small for IPv6 (at least %d when an IPv6 address or "
                            "route is configured)", net->mtu, MTU_MIN_IPV6);
        result = -1;
    }
    return result;
}

static int pools_overlap(const struct network_config *a, const struct network_config *b)
{
    for (size_t i = 0; i < a->hub_address_count; i++) {
        for (size_t j = 0; j < b->hub_address_count; j++) {
            const struct ip_prefix *x = &a->hub_addresses[i], *y = &b->hub_addresses[j];
            if (x->family != y->family)
                continue;
            const struct ip_prefix *wider = x->len <= y->len ? x : y;
            const struct ip_prefix *narrower = wider == x ? y : x;
            if (ip_prefix_contains(wider, narrower->family, narrower->addr))
                return 1;
        }
    }
    return 0;
}

void network_keys_check_all(struct config_loader *ld)
{
    const struct config *config = ld->config;
    for (size_t i = 0; i < config->tunnel_count; i++) {
        const struct tunnel_config *t = &config->tunnels[i];
        if (t->type != TUNNEL_TYPE_NETWORK)
            continue;
        for (size_t j = 0; j < i; j++) {
            const struct tunnel_config *o = &config->tunnels[j];
            if (o->type != TUNNEL_TYPE_NETWORK || o->mode != t->mode)
                continue;
            if (t->mode == TUNNEL_MODE_CLIENT && t->network.device[0] != '\0'
                && strcmp(t->network.device, o->network.device) == 0) {
                config_loader_error(ld, config_key_line(t, "device"), t->name, "device",
                                    "%s is also the device of [%s] (line %d); set device to "
                                    "tell them apart", t->network.device, o->name,
                                    config_key_line(o, "device"));
                break;
            }
            if (t->mode == TUNNEL_MODE_SERVER && pools_overlap(&t->network, &o->network)) {
                config_loader_error(ld, config_key_line(t, "address"), t->name, "address",
                                    "overlaps the address of [%s] (line %d): each hub needs "
                                    "pools of its own", o->name, config_key_line(o, "address"));
                break;
            }
        }
    }
}

void network_keys_free(struct tunnel_config *tunnel)
{
    free_entries(tunnel->network.fixed, tunnel->network.fixed_count);
    free_entries(tunnel->network.client_networks, tunnel->network.client_network_count);
    tunnel->network.fixed = NULL;
    tunnel->network.client_networks = NULL;
    tunnel->network.fixed_count = 0;
    tunnel->network.client_network_count = 0;
}
