/* type = network and its keys (config/network_keys.c) through config_load. */
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "addrplan/address_plan.h"
#include "config/config.h"

static char test_dir[PATH_MAX];
static char ini_path[PATH_MAX + 32];

static void write_file(const char *path, const char *content)
{
    FILE *out = fopen(path, "w");
    if (out == NULL) {
        fail_msg("%s: %s", path, strerror(errno));
        return;
    }
    assert_true(fputs(content, out) >= 0);
    assert_int_equal(fclose(out), 0);
}

static struct config *load_good(const char *text)
{
    char *errors = NULL;
    write_file(ini_path, text);
    struct config *config = config_load(ini_path, &errors);
    if (config == NULL) {
        fprintf(stderr, "unexpected errors:\n%s", errors ? errors : "(null)\n");
        free(errors);
        fail_msg("config_load failed");
    }
    assert_null(errors);
    return config;
}

/* EXPECTED: one error a line without the file name (":12: [hub] mtu: ..."). */
static void assert_errors(const char *text, const char *expected)
{
    char *errors = NULL;
    write_file(ini_path, text);
    struct config *config = config_load(ini_path, &errors);
    if (config != NULL) {
        config_free(config);
        fail_msg("config_load accepted a config that should fail with:\n%s", expected);
        return;
    }
    assert_non_null(errors);
    size_t len = strlen(expected) * 2 + 4096;
    char *full = malloc(len);
    assert_non_null(full);
    full[0] = '\0';
    for (const char *line = expected; *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t n = end != NULL ? (size_t)(end - line + 1) : strlen(line);
        snprintf(full + strlen(full), len - strlen(full), "%s%.*s", ini_path, (int)n, line);
        line += n;
    }
    if (strcmp(errors, full) != 0) {
        fprintf(stderr, "expected:\n%s\ngot:\n%s\n", full, errors);
        free(full);
        free(errors);
        fail_msg("errors differ");
        return;
    }
    free(full);
    free(errors);
}

/* A network hub, lines 1-8: [hub] mode type listen cert key ca address. */
#define HUB                                                                              \
    "[hub]\n"                                                                            \
    "mode = server\n"                                                                    \
    "type = network\n"                                                                   \
    "listen = 127.0.0.1:8443\n"                                                          \
    "cert = server.pem\n"                                                                \
    "key = server.key\n"                                                                 \
    "ca = ca.pem\n"                                                                      \
    "address = 10.8.0.1/24\n"

/* A network client, lines 1-7: [to-hub] mode type target cert key ca. */
#define CLIENT                                                                           \
    "[to-hub]\n"                                                                         \
    "mode = client\n"                                                                    \
    "type = network\n"                                                                   \
    "target = 127.0.0.1:8443\n"                                                          \
    "cert = client.pem\n"                                                                \
    "key = client.key\n"                                                                 \
    "ca = ca.pem\n"

/* A stream server tunnel, lines 1-7. */
#define STREAM                                                                           \
    "[web]\n"                                                                            \
    "mode = server\n"                                                                    \
    "listen = 127.0.0.1:9443\n"                                                          \
    "target = 127.0.0.1:8080\n"                                                          \
    "cert = server.pem\n"                                                                \
    "key = server.key\n"                                                                 \
    "ca = ca.pem\n"

static const char *fmt(const struct ip_prefix *p)
{
    static char buf[4][IP_PREFIX_TEXT_MAX];
    static int next;
    next = (next + 1) % 4;
    return ip_prefix_format(p, buf[next], sizeof(buf[next]));
}

static int remove_entry(const char *path, const struct stat *info, int flag, struct FTW *ftw)
{
    (void)info;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int setup_dir(void **state)
{
    char template[] = "/tmp/ktlstun-network-keys-XXXXXX";
    (void)state;
    if (mkdtemp(template) == NULL || realpath(template, test_dir) == NULL)
        return -1;
    snprintf(ini_path, sizeof(ini_path), "%s/ktlstun.ini", test_dir);
    static const char *const files[] = { "server.pem", "server.key", "client.pem",
                                         "client.key", "ca.pem" };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof(path), "%s/%s", test_dir, files[i]);
        write_file(path, "dummy\n");
    }
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    return nftw(test_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---------------------------------------------------------------- good configs */

static void test_stream_is_the_default(void **state)
{
    (void)state;
    struct config *config = load_good(STREAM);
    const struct tunnel_config *t = &config->tunnels[0];
    assert_int_equal(t->type, TUNNEL_TYPE_STREAM);
    assert_true(config_tunnel_listens(t));
    assert_true(config_tunnel_has_target(t));
    config_free(config);
    config = load_good("[web]\nmode = server\ntype = Stream\nlisten = 127.0.0.1:9443\n"
                       "target = 127.0.0.1:8080\ncert = server.pem\nkey = server.key\n"
                       "ca = ca.pem\n");
    assert_int_equal(config->tunnels[0].type, TUNNEL_TYPE_STREAM);
    config_free(config);
}

static void test_hub_defaults(void **state)
{
    (void)state;
    struct config *config = load_good(HUB);
    const struct tunnel_config *t = &config->tunnels[0];
    const struct network_config *n = &t->network;
    assert_int_equal(t->type, TUNNEL_TYPE_NETWORK);
    assert_true(config_tunnel_listens(t));
    assert_false(config_tunnel_has_target(t));
    assert_int_equal(n->hub_address_count, 1);
    assert_string_equal(fmt(&n->hub_addresses[0]), "10.8.0.1/24");
    assert_int_equal(n->push_route_count, 0);
    assert_int_equal(n->fixed_count, 0);
    assert_int_equal(n->client_network_count, 0);
    assert_int_equal(n->mtu, NETWORK_DEFAULT_MTU);
    assert_int_equal(n->keepalive, NETWORK_DEFAULT_KEEPALIVE);
    assert_int_equal(n->mss_clamp, 1);
    assert_int_equal(config_key_line(t, "address"), 8);
    config_free(config);
}

static void test_hub_every_key(void **state)
{
    (void)state;
    struct config *config = load_good(
        "[hub]\n"
        "mode = server\n"
        "type = NETWORK\n"
        "listen = 127.0.0.1:8443\n"
        "cert = server.pem\n"
        "key = server.key\n"
        "ca = ca.pem\n"
        "address = 10.8.0.1/24, fd00:8::1/64\n"
        "push_routes = 192.168.1.0/24, 2001:db8:1::/48\n"
        "client_address = site-b=10.8.0.2, bob = 10.8.0.7, bob=fd00:8::7, o=x=10.8.0.9\n"
        "client_networks = site-b=192.168.2.0/24, site-b=192.168.3.0/24\n"
        "mtu = 1280\n"
        "keepalive = 1m\n"
        "mss_clamp = no\n");
    const struct network_config *n = &config->tunnels[0].network;
    assert_int_equal(n->hub_address_count, 2);
    assert_string_equal(fmt(&n->hub_addresses[1]), "fd00:8::1/64");
    assert_int_equal(n->push_route_count, 2);
    assert_string_equal(fmt(&n->push_routes[0]), "192.168.1.0/24");
    assert_string_equal(fmt(&n->push_routes[1]), "2001:db8:1::/48");
    assert_int_equal(n->fixed_count, 4);
    assert_string_equal(n->fixed[0].identity, "site-b");
    assert_string_equal(fmt(&n->fixed[0].prefix), "10.8.0.2/32");
    assert_string_equal(n->fixed[1].identity, "bob");
    assert_string_equal(fmt(&n->fixed[2].prefix), "fd00:8::7/128");
    assert_string_equal(n->fixed[3].identity, "o=x");   /* the rightmost '=' splits */
    assert_int_equal(n->fixed[3].line, 10);
    assert_int_equal(n->client_network_count, 2);
    assert_string_equal(n->client_networks[1].identity, "site-b");
    assert_string_equal(fmt(&n->client_networks[1].prefix), "192.168.3.0/24");
    assert_int_equal(n->client_networks[1].line, 11);
    assert_int_equal(n->mtu, 1280);
    assert_int_equal(n->keepalive, 60);
    assert_int_equal(n->mss_clamp, 0);

    char err[256];
    struct address_lease *plan = address_plan_build(&config->tunnels[0], err, sizeof(err));
    if (plan == NULL)
        fail_msg("%s", err);
    address_lease_free(plan);
    config_free(config);
}

static void test_client_defaults_and_keys(void **state)
{
    (void)state;
    struct config *config = load_good(CLIENT);
    const struct tunnel_config *t = &config->tunnels[0];
    assert_int_equal(t->type, TUNNEL_TYPE_NETWORK);
    assert_false(config_tunnel_listens(t));
    assert_true(config_tunnel_has_target(t));
    assert_string_equal(t->network.device, "ktlto-hub");
    assert_int_equal(t->network.reconnect_max, NETWORK_DEFAULT_RECONNECT_MAX);
    assert_int_equal(t->network.mss_clamp, 1);
    config_free(config);

    config = load_good(CLIENT "device = hub0\nreconnect_max = 2m\nmss_clamp = off\n");
    t = &config->tunnels[0];
    assert_string_equal(t->network.device, "hub0");
    assert_int_equal(t->network.reconnect_max, 120);
    assert_int_equal(t->network.mss_clamp, 0);
    config_free(config);
}

static void test_default_device_is_cut_to_fit(void **state)
{
    (void)state;
    struct config *config = load_good("[a-very.long_tunnel-name]\nmode = client\n"
                                      "type = network\ntarget = 127.0.0.1:8443\n"
                                      "cert = client.pem\nkey = client.key\nca = ca.pem\n");
    assert_string_equal(config->tunnels[0].network.device, "ktla-very.long_");
    assert_int_equal(strlen(config->tunnels[0].network.device), 15);
    config_free(config);
}

static void test_hub_and_client_side_by_side(void **state)
{
    (void)state;
    struct config *config = load_good(HUB "\n" CLIENT "\n" STREAM);
    assert_int_equal(config->tunnel_count, 3);
    assert_int_equal(config->tunnels[2].type, TUNNEL_TYPE_STREAM);
    config_free(config);
}

/* ---------------------------------------------------------------- bad configs */

static void test_bad_type(void **state)
{
    (void)state;
    assert_errors("[hub]\nmode = server\ntype = packets\nlisten = 127.0.0.1:8443\n"
                  "target = 127.0.0.1:80\ncert = server.pem\nkey = server.key\nca = ca.pem\n",
                  ":3: [hub] type: 'packets' is not a tunnel type (use stream or network)\n");
}

static void test_network_keys_on_a_stream_tunnel(void **state)
{
    (void)state;
    static const char *const keys[][2] = {
        { "address", "10.8.0.1/24" }, { "push_routes", "10.1.0.0/16" },
        { "client_address", "a=10.8.0.2" }, { "client_networks", "a=10.2.0.0/16" },
        { "mtu", "1400" }, { "keepalive", "10s" }, { "mss_clamp", "yes" },
        { "device", "ktl0" }, { "reconnect_max", "30s" },
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char text[512], expected[200];
        snprintf(text, sizeof(text), STREAM "%s = %s\n", keys[i][0], keys[i][1]);
        snprintf(expected, sizeof(expected),
                 ":8: [web] %s: only for type = network (this tunnel has type = stream)\n",
                 keys[i][0]);
        assert_errors(text, expected);
    }
}

static void test_listen_and_target_where_there_are_none(void **state)
{
    (void)state;
    assert_errors(HUB "target = 127.0.0.1:80\n",
                  ":9: [hub] target: a network tunnel has no target: the hub routes each "
                  "client's packets (remove target)\n");
    assert_errors(CLIENT "listen = 127.0.0.1:9000\n",
                  ":8: [to-hub] listen: a network client has no listener: its packets come "
                  "from its device (remove listen)\n");
}

static void test_keys_of_the_other_side(void **state)
{
    (void)state;
    static const char *const hub_keys[][2] = {
        { "address", "10.8.0.1/24" }, { "push_routes", "10.1.0.0/16" },
        { "client_address", "a=10.8.0.2" }, { "client_networks", "a=10.2.0.0/16" },
        { "mtu", "1400" }, { "keepalive", "10s" },
    };
    for (size_t i = 0; i < sizeof(hub_keys) / sizeof(hub_keys[0]); i++) {
        char text[512], expected[200];
        snprintf(text, sizeof(text), CLIENT "%s = %s\n", hub_keys[i][0], hub_keys[i][1]);
        snprintf(expected, sizeof(expected),
                 ":8: [to-hub] %s: only valid in server mode (this tunnel has mode = client)\n",
                 hub_keys[i][0]);
        assert_errors(text, expected);
    }
    assert_errors(HUB "device = ktl0\nreconnect_max = 5s\n",
                  ":9: [hub] device: only valid in client mode (this tunnel has mode = server)\n"
                  ":10: [hub] reconnect_max: only valid in client mode (this tunnel has mode = "
                  "server)\n");
}

static void test_bad_addresses(void **state)
{
    (void)state;
    assert_errors("[hub]\nmode = server\ntype = network\nlisten = 127.0.0.1:8443\n"
                  "cert = server.pem\nkey = server.key\nca = ca.pem\n",
                  ":1: [hub] address: missing (required in a network hub: its tunnel address "
                  "per family, whose length is the pool clients get addresses from, e.g. "
                  "10.8.0.1/24)\n");
    assert_errors(HUB "address = ::1/64, fd00::1/64, 10.0.0.1/8, 10.0.0.1/32\n",
                  ":9: [hub] address: duplicate key (first set at line 8)\n"
                  ":9: [hub] address: 'fd00::1/64': one address per family (IPv4, IPv6)\n"
                  ":9: [hub] address: '10.0.0.1/32': one address per family (IPv4, IPv6)\n");
}

static void test_bad_hub_values(void **state)
{
    (void)state;
    static const struct {
        const char *line, *error;
    } cases[] = {
        { "push_routes = 10.1.2.3/16",
          "push_routes: '10.1.2.3/16' is not a network, it has host bits set (write 10.1.0.0/16)" },
        { "push_routes = 10.1.0.0/16, 10.1.0.0/16", "push_routes: '10.1.0.0/16' is listed twice" },
        { "push_routes = lan", "push_routes: 'lan': not an IP address" },
        { "push_routes = ,", "push_routes: empty list" },
        { "client_address = a=10.8.0.2/24",
          "client_address: '10.8.0.2/24' is not one address (leave out the /24)" },
        { "client_address = a=10.8.0.2, a=10.8.0.3",
          "client_address: a has an IPv4 address already (one per family)" },
        { "client_address = 10.8.0.2", "client_address: '10.8.0.2' is not CN=ADDRESS" },
        { "client_address = =10.8.0.2", "client_address: '=10.8.0.2' is not CN=ADDRESS" },
        { "client_networks = a=10.2.0.1/16",
          "client_networks: '10.2.0.1/16' is not a network, it has host bits set (write "
          "10.2.0.0/16)" },
        { "client_networks = a", "client_networks: 'a' is not CN=NETWORK" },
        { "mtu = 575", "mtu: '575' is not a whole number from 576 to 9000" },
        { "mtu = 9001", "mtu: '9001' is not a whole number from 576 to 9000" },
        { "keepalive = 0", "keepalive: must be at least 1s" },
        { "keepalive = 2h", "keepalive: too large (at most 3600s)" },
        { "mss_clamp = maybe", "mss_clamp: 'maybe' is not yes or no" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[512], expected[300];
        snprintf(text, sizeof(text), HUB "%s\n", cases[i].line);
        snprintf(expected, sizeof(expected), ":9: [hub] %s\n", cases[i].error);
        assert_errors(text, expected);
    }
    assert_errors("[hub]\nmode = server\ntype = network\nlisten = 127.0.0.1:8443\n"
                  "cert = server.pem\nkey = server.key\nca = ca.pem\n"
                  "address = 10.8.0.1/24, 10.9.0.1/24\n",
                  ":8: [hub] address: '10.9.0.1/24': one address per family (IPv4, IPv6)\n");
}

static void test_mtu_for_ipv6(void **state)
{
    (void)state;
    struct config *config = load_good(HUB "mtu = 576\n");
    assert_int_equal(config->tunnels[0].network.mtu, 576);
    config_free(config);
    static const char *const ipv6[] = {
        "push_routes = 2001:db8::/32", "client_address = a=fd00:8::9",
        "client_networks = a=2001:db8:2::/48",
    };
    for (size_t i = 0; i < sizeof(ipv6) / sizeof(ipv6[0]); i++) {
        char text[512];
        snprintf(text, sizeof(text), HUB "mtu = 1279\n%s\n", ipv6[i]);
        assert_errors(text, ":9: [hub] mtu: 1279 is too small for IPv6 (at least 1280 when an "
                            "IPv6 address or route is configured)\n");
    }
}

static void test_bad_client_values(void **state)
{
    (void)state;
    static const struct {
        const char *line, *error;
    } cases[] = {
        { "device = a/b", "device: 'a/b' is not a device name (1 to 15 characters, no '/', ':' "
                          "or blanks)" },
        { "device = ktl:0", "device: 'ktl:0' is not a device name (1 to 15 characters, no '/', "
                            "':' or blanks)" },
        { "device = ..", "device: '..' is not a device name (1 to 15 characters, no '/', ':' or "
                         "blanks)" },
        { "device = abcdefghijklmnop", "device: 'abcdefghijklmnop' is not a device name (1 to "
                                       "15 characters, no '/', ':' or blanks)" },
        { "reconnect_max = 0", "reconnect_max: must be at least 1s" },
        { "reconnect_max = 2h", "reconnect_max: too large (at most 3600s)" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char text[512], expected[300];
        snprintf(text, sizeof(text), CLIENT "%s\n", cases[i].line);
        snprintf(expected, sizeof(expected), ":8: [to-hub] %s\n", cases[i].error);
        assert_errors(text, expected);
    }
}

static void test_clashes_between_tunnels(void **state)
{
    (void)state;
    assert_errors(CLIENT "device = ktl0\n\n"
                  "[two]\nmode = client\ntype = network\ntarget = 127.0.0.1:8443\n"
                  "cert = client.pem\nkey = client.key\nca = ca.pem\ndevice = ktl0\n",
                  ":17: [two] device: ktl0 is also the device of [to-hub] (line 8); set device "
                  "to tell them apart\n");
    assert_errors(CLIENT "\n[ktlto-hub]\nmode = client\ntype = network\n"
                  "target = 127.0.0.1:8443\ncert = client.pem\nkey = client.key\nca = ca.pem\n"
                  "device = ktlto-hub\n",
                  ":16: [ktlto-hub] device: ktlto-hub is also the device of [to-hub] (line 1); "
                  "set device to tell them apart\n");
    assert_errors(HUB "\n[hub2]\nmode = server\ntype = network\nlisten = 127.0.0.1:8444\n"
                  "cert = server.pem\nkey = server.key\nca = ca.pem\naddress = 10.8.0.129/25\n",
                  ":17: [hub2] address: overlaps the address of [hub] (line 8): each hub needs "
                  "pools of its own\n");
}

static void test_plan_conflicts_name_the_entry(void **state)
{
    (void)state;
    struct config *config = load_good(HUB "client_networks = a=10.2.0.0/16\n"
                                          "client_address = b=10.2.0.9\n");
    char err[512], expected[PATH_MAX + 200];
    assert_null(address_plan_build(&config->tunnels[0], err, sizeof(err)));
    snprintf(expected, sizeof(expected),
             "%s:10: [hub] client_address: fixed address 10.2.0.9/32 of b lies in network "
             "10.2.0.0/16 behind a", ini_path);
    assert_string_equal(err, expected);
    config_free(config);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stream_is_the_default),
        cmocka_unit_test(test_hub_defaults),
        cmocka_unit_test(test_hub_every_key),
        cmocka_unit_test(test_client_defaults_and_keys),
        cmocka_unit_test(test_default_device_is_cut_to_fit),
        cmocka_unit_test(test_hub_and_client_side_by_side),
        cmocka_unit_test(test_bad_type),
        cmocka_unit_test(test_network_keys_on_a_stream_tunnel),
        cmocka_unit_test(test_listen_and_target_where_there_are_none),
        cmocka_unit_test(test_keys_of_the_other_side),
        cmocka_unit_test(test_bad_addresses),
        cmocka_unit_test(test_bad_hub_values),
        cmocka_unit_test(test_mtu_for_ipv6),
        cmocka_unit_test(test_bad_client_values),
        cmocka_unit_test(test_clashes_between_tunnels),
        cmocka_unit_test(test_plan_conflicts_name_the_entry),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
