#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/ssl.h>

#include "config/config.h"
#include "config/user_map.h"

/* Every test writes its INI and dummy PEM files here (realpath'd, so expected absolute
 * paths compare equal). */
static char test_dir[PATH_MAX];
static char ini_path[PATH_MAX + 32];
static int isolated_network;

/* ---------------------------------------------------------------- helpers */

/* Returns TEXT with every "{dir}" replaced by the test directory (caller frees). */
static char *expand(const char *text)
{
    size_t dir_len = strlen(test_dir);
    size_t size = strlen(text) + 1;
    for (const char *at = strstr(text, "{dir}"); at != NULL; at = strstr(at + 5, "{dir}"))
        size += dir_len;
    char *out = malloc(size);
    assert_non_null(out);
    char *cursor = out;
    while (*text != '\0') {
        if (strncmp(text, "{dir}", 5) == 0) {
            memcpy(cursor, test_dir, dir_len);
            cursor += dir_len;
            text += 5;
        } else {
            *cursor++ = *text++;
        }
    }
    *cursor = '\0';
    return out;
}

static void write_file(const char *path, const char *content)
{
    FILE *out = fopen(path, "w");
    if (out == NULL)
        fail_msg("%s: %s", path, strerror(errno));
    assert_int_equal(fputs(content, out) >= 0, 1);
    assert_int_equal(fclose(out), 0);
}

static void write_in_dir(const char *name, const char *content)
{
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/%s", test_dir, name);
    write_file(path, content);
}

static void write_ini(const char *text)
{
    char *expanded = expand(text);
    write_file(ini_path, expanded);
    free(expanded);
}

static struct config *load_good(const char *text)
{
    char *errors = (char *)"not touched";
    write_ini(text);
    struct config *config = config_load(ini_path, &errors);
    if (config == NULL) {
        fprintf(stderr, "unexpected errors:\n%s", errors ? errors : "(null)\n");
        free(errors);
        fail_msg("config_load failed");
    }
    assert_null(errors);
    return config;
}

/* EXPECTED holds one line per error without the file name: ":12: [web] listen: missing
 * port". The config's path is put in front of each line and the whole text must match. */
static char *with_ini_path(const char *expected)
{
    char *expanded = expand(expected);
    size_t lines = 0;
    for (const char *c = expanded; *c != '\0'; c++)
        lines += *c == '\n';
    char *full = malloc(strlen(expanded) + (lines + 1) * strlen(ini_path) + 1);
    assert_non_null(full);
    char *out = full;
    const char *line = expanded;
    while (*line != '\0') {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line + 1) : strlen(line);
        out += sprintf(out, "%s", ini_path);
        memcpy(out, line, len);
        out += len;
        line += len;
    }
    *out = '\0';
    free(expanded);
    return full;
}

static void assert_errors_for_path(const char *path, const char *expected_text)
{
    char *errors = NULL;
    struct config *config = config_load(path, &errors);
    char *expected = with_ini_path(expected_text);
    if (config != NULL) {
        config_free(config);
        free(expected);
        fail_msg("config_load accepted a config that should fail with:\n%s", expected_text);
    }
    assert_non_null(errors);
    if (strcmp(errors, expected) != 0) {
        fprintf(stderr, "expected:\n%s\ngot:\n%s\n", expected, errors);
        free(errors);
        free(expected);
        fail_msg("errors differ");
    }
    free(errors);
    free(expected);
}

static void assert_errors(const char *text, const char *expected)
{
    write_ini(text);
    assert_errors_for_path(ini_path, expected);
}

static void assert_address(const struct address *addr, const char *expected)
{
    char shown[300];
    address_format(addr, shown, sizeof(shown));
    assert_string_equal(shown, expected);
}

static char *in_dir(const char *name)
{
    static char path[4][PATH_MAX + 64];
    static int next;
    char *slot = path[next++ % 4];
    snprintf(slot, sizeof(path[0]), "%s/%s", test_dir, name);
    return slot;
}

/* A complete server tunnel, one key per line, lines 1-7:
 * [web] mode listen target cert key ca. */
#define SERVER_TUNNEL                                                                    \
    "[web]\n"                                                                            \
    "mode = server\n"                                                                    \
    "listen = 127.0.0.1:8443\n"                                                          \
    "target = 127.0.0.1:8080\n"                                                          \
    "cert = server.pem\n"                                                                \
    "key = server.key\n"                                                                 \
    "ca = ca.pem\n"

#define CLIENT_TUNNEL                                                                    \
    "[web]\n"                                                                            \
    "mode = client\n"                                                                    \
    "listen = 127.0.0.1:9080\n"                                                          \
    "target = 127.0.0.1:8443\n"                                                          \
    "cert = client.pem\n"                                                                \
    "key = client.key\n"                                                                 \
    "ca = ca.pem\n"

/* The tunnel for MODE with KEY set to VALUE: replaced in place when KEY is one of the
 * base keys (lines 2-7), else appended as line 8. */
static char *tunnel_with(const char *mode, const char *key, const char *value)
{
    const char *base = strcmp(mode, "client") == 0 ? CLIENT_TUNNEL : SERVER_TUNNEL;
    char *text = malloc(strlen(base) + strlen(key) + strlen(value) + 16);
    assert_non_null(text);
    text[0] = '\0';
    int replaced = 0;
    const char *line = base;
    while (*line != '\0') {
        const char *end = strchr(line, '\n') + 1;
        size_t key_len = strlen(key);
        if (strncmp(line, key, key_len) == 0 && line[key_len] == ' ') {
            sprintf(text + strlen(text), "%s = %s\n", key, value);
            replaced = 1;
        } else {
            strncat(text, line, (size_t)(end - line));
        }
        line = end;
    }
    if (!replaced)
        sprintf(text + strlen(text), "%s = %s\n", key, value);
    return text;
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
    char template[] = "/tmp/ktlstun-config-test-XXXXXX";
    (void)state;
    if (mkdtemp(template) == NULL || realpath(template, test_dir) == NULL)
        return -1;
    snprintf(ini_path, sizeof(ini_path), "%s/ktlstun.ini", test_dir);
    write_in_dir("server.pem", "dummy certificate\n");
    write_in_dir("server.key", "dummy key\n");
    write_in_dir("client.pem", "dummy certificate\n");
    write_in_dir("client.key", "dummy key\n");
    write_in_dir("ca.pem", "dummy ca\n");
    write_in_dir("crl.pem", "dummy crl\n");
    if (mkdir(in_dir("cadir"), 0755) < 0 || mkdir(in_dir("certs"), 0755) < 0)
        return -1;
    write_in_dir("certs/site.pem", "dummy certificate\n");
    return 0;
}

static int teardown_dir(void **state)
{
    (void)state;
    return nftw(test_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---------------------------------------------------------------- good configs */

static void test_minimal_server_gets_defaults(void **state)
{
    (void)state;
    struct config *config = load_good("# a comment\n"
                                      "[Web-1.a_b]\n"
                                      "mode = server\n"
                                      "listen = 127.0.0.1:8443\n"
                                      "target = 127.0.0.1:8080\n"
                                      "cert = server.pem\n"
                                      "key = server.key\n"
                                      "ca = ca.pem\n");
    assert_string_equal(config->path, ini_path);
    assert_int_equal(config->global.log_level, LOG_LEVEL_INFO);
    assert_string_equal(config->global.state_dir, "/var/lib/ktlstun");
    assert_string_equal(config->global.runtime_dir, "/run/ktlstun");
    assert_null(config->global.user);
    assert_null(config->global.group);
    assert_null(config->global.pam_user);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(config->global.workers, cpus < 1 ? 1 : cpus > 256 ? 256 : cpus);
    assert_int_equal(config->global.shutdown_timeout, 30);
    assert_int_equal(config->global.metrics_enabled, 0);
    assert_int_equal(config->global.expiry_warning, 14 * 86400);
    assert_int_equal(config->global.lock_table_size, 4096);

    assert_int_equal(config->tunnel_count, 1);
    const struct tunnel_config *t = &config->tunnels[0];
    assert_string_equal(t->name, "Web-1.a_b");   /* as written, not lowercased */
    assert_int_equal(t->line, 2);
    assert_int_equal(t->mode, TUNNEL_MODE_SERVER);
    assert_address(&t->listen, "127.0.0.1:8443");
    assert_address(&t->target, "127.0.0.1:8080");
    char shown[64];
    address_format_sockaddr((const struct sockaddr *)&t->target_addr, t->target_addr_len, shown,
                            sizeof(shown));
    assert_string_equal(shown, "127.0.0.1:8080");
    assert_string_equal(t->cert, in_dir("server.pem"));
    assert_string_equal(t->key, in_dir("server.key"));
    assert_string_equal(t->ca, in_dir("ca.pem"));
    assert_int_equal(t->ca_is_directory, 0);
    assert_null(t->crl);
    assert_int_equal(t->allow_cn.count + t->allow_ou.count + t->allow_dns.count
                     + t->allow_uri.count + t->allow_email.count + t->pin_sha256.count, 0);
    assert_null(t->server_name);
    assert_int_equal(t->tls_min_version, TLS1_2_VERSION);
    assert_null(t->ciphersuites);
    assert_null(t->ciphers);
    assert_null(t->groups);
    assert_int_equal(t->ktls, KTLS_POLICY_AUTO);
    assert_int_equal(t->handshake_timeout, 10);
    assert_int_equal(t->idle_timeout, 0);
    assert_int_equal(t->max_connection_lifetime, 0);
    assert_int_equal(t->rekey_interval, 0);
    assert_int_equal(t->rekey_bytes, 0);
    assert_int_equal(t->verify_cache, 60);
    assert_int_equal(t->max_connections, 10000);
    assert_int_equal(t->max_connections_per_source, 1024);
    assert_int_equal(t->handshake_rate_per_source, 200);
    assert_int_equal(t->handshake_burst_per_source, 400);
    config_free(config);
}

static void test_every_key_set(void **state)
{
    (void)state;
    struct config *config = load_good(
        "[global]\n"
        "log_level = debug\n"
        "state_dir = /srv/ktlstun/state\n"
        "runtime_dir = /srv/ktlstun/run\n"
        "user = root\n"
        "group = root\n"
        "workers = 4\n"
        "shutdown_timeout = 2m\n"
        "metrics_listen = 9154\n"
        "expiry_warning = 30d\n"
        "\n"
        "[intranet]\n"
        "mode = server\n"
        "listen = *:8443\n"
        "target = [::1]:8080\n"
        "cert = server.pem\n"
        "key = {dir}/server.key\n"
        "ca = cadir\n"
        "crl = crl.pem\n"
        "allow_cn = alice, bob\n"
        "allow_ou = Engineering\n"
        "allow_dns = *.example.com, host.example.com\n"
        "allow_uri = spiffe://example.com/worker\n"
        "allow_email = alice@example.com\n"
        "pin_sha256 = 60:CB:95:E6:64:50:C7:1E:CA:D8:94:8A:35:BB:71:A8:2B:44:B1:C1:0C:0B:30:CB:"
        "93:E5:E1:48:1B:A0:06:D2\n"
        "tls_min_version = 1.3\n"
        "ciphersuites = TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256\n"
        "ciphers = ECDHE+AESGCM\n"
        "groups = X25519:P-256\n"
        "ktls = require\n"
        "handshake_timeout = 5s\n"
        "idle_timeout = 1h30m\n"
        "max_connection_lifetime = 1d\n"
        "rekey_interval = 1h\n"
        "rekey_bytes = 64G\n"
        "verify_cache = 0\n"
        "max_connections = 1000000\n"
        "max_connections_per_source = 0\n"
        "handshake_rate_per_source = 1000000\n"
        "handshake_burst_per_source = 1\n"
        "\n"
        "[to-gateway]\n"
        "mode = client\n"
        "listen = unix:/run/ktlstun/gw.sock\n"
        "target = 127.0.0.1:443\n"
        "cert = client.pem\n"
        "key = client.key\n"
        "ca = ca.pem\n"
        "server_name = gateway.example.com\n"
        "pin_sha256 = YMuV5mRQxx7K2JSKNbtxqCtEscEMCzDLk+XhSBugBtI=, "
        "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F\n"
        "ktls = off\n"
        "max_connections = 1\n");

    assert_int_equal(config->global.log_level, LOG_LEVEL_DEBUG);
    assert_string_equal(config->global.state_dir, "/srv/ktlstun/state");
    assert_string_equal(config->global.runtime_dir, "/srv/ktlstun/run");
    assert_string_equal(config->global.user, "root");
    assert_string_equal(config->global.group, "root");
    assert_int_equal(config->global.workers, 4);
    assert_int_equal(config->global.shutdown_timeout, 120);
    assert_int_equal(config->global.metrics_enabled, 1);
    assert_string_equal(config->global.metrics_listen.host, "127.0.0.1");
    assert_int_equal(config->global.metrics_listen.port, 9154);
    assert_int_equal(config->global.expiry_warning, 30 * 86400);

    assert_int_equal(config->tunnel_count, 2);
    const struct tunnel_config *s = &config->tunnels[0];
    assert_string_equal(s->name, "intranet");
    assert_int_equal(s->line, 12);
    assert_int_equal(s->mode, TUNNEL_MODE_SERVER);
    assert_address(&s->listen, "*:8443");
    assert_address(&s->target, "[::1]:8080");
    assert_int_equal(s->target_addr.ss_family, AF_INET6);
    assert_int_equal(ntohs(((struct sockaddr_in6 *)&s->target_addr)->sin6_port), 8080);
    assert_string_equal(s->cert, in_dir("server.pem"));
    assert_string_equal(s->key, in_dir("server.key"));
    assert_string_equal(s->ca, in_dir("cadir"));
    assert_int_equal(s->ca_is_directory, 1);
    assert_string_equal(s->crl, in_dir("crl.pem"));
    assert_int_equal(s->allow_cn.count, 2);
    assert_string_equal(s->allow_cn.items[0], "alice");
    assert_string_equal(s->allow_cn.items[1], "bob");
    assert_int_equal(s->allow_ou.count, 1);
    assert_string_equal(s->allow_ou.items[0], "Engineering");
    assert_int_equal(s->allow_dns.count, 2);
    assert_string_equal(s->allow_dns.items[0], "*.example.com");
    assert_string_equal(s->allow_dns.items[1], "host.example.com");
    assert_int_equal(s->allow_uri.count, 1);
    assert_string_equal(s->allow_uri.items[0], "spiffe://example.com/worker");
    assert_int_equal(s->allow_email.count, 1);
    assert_string_equal(s->allow_email.items[0], "alice@example.com");
    assert_int_equal(s->pin_sha256.count, 1);
    assert_string_equal(s->pin_sha256.items[0],
                        "60cb95e66450c71ecad8948a35bb71a82b44b1c10c0b30cb93e5e1481ba006d2");
    assert_int_equal(s->tls_min_version, TLS1_3_VERSION);
    assert_string_equal(s->ciphersuites, "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256");
    assert_string_equal(s->ciphers, "ECDHE+AESGCM");
    assert_string_equal(s->groups, "X25519:P-256");
    assert_int_equal(s->ktls, KTLS_POLICY_REQUIRE);
    assert_int_equal(s->handshake_timeout, 5);
    assert_int_equal(s->idle_timeout, 5400);
    assert_int_equal(s->max_connection_lifetime, 86400);
    assert_int_equal(s->rekey_interval, 3600);
    assert_int_equal(s->rekey_bytes, (uint64_t)64 << 30);
    assert_int_equal(s->verify_cache, 0);
    assert_int_equal(s->max_connections, 1000000);
    assert_int_equal(s->max_connections_per_source, 0);
    assert_int_equal(s->handshake_rate_per_source, 1000000);
    assert_int_equal(s->handshake_burst_per_source, 1);

    const struct tunnel_config *c = &config->tunnels[1];
    assert_string_equal(c->name, "to-gateway");
    assert_int_equal(c->mode, TUNNEL_MODE_CLIENT);
    assert_int_equal(c->listen.kind, ADDRESS_UNIX);
    assert_string_equal(c->listen.path, "/run/ktlstun/gw.sock");
    assert_string_equal(c->server_name, "gateway.example.com");
    assert_int_equal(c->pin_sha256.count, 2);
    assert_string_equal(c->pin_sha256.items[0],
                        "60cb95e66450c71ecad8948a35bb71a82b44b1c10c0b30cb93e5e1481ba006d2");
    assert_string_equal(c->pin_sha256.items[1],
                        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    assert_int_equal(c->ktls, KTLS_POLICY_OFF);
    assert_int_equal(c->max_connections, 1);
    assert_int_equal(c->tls_min_version, TLS1_2_VERSION);
    config_free(config);
}

static void test_rekey_bytes_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        uint64_t bytes;
    } sizes[] = {
        { "0", 0 },
        { "1000", 1000 },
        { "1000B", 1000 },
        { "4K", 4096 },
        { "4KiB", 4096 },
        { "512m", (uint64_t)512 << 20 },
        { "512MB", (uint64_t)512 << 20 },
        { "1G", (uint64_t)1 << 30 },
        { "1024T", (uint64_t)1 << 50 },
    };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char *text = tunnel_with("server", "rekey_bytes", sizes[i].text);
        struct config *config = load_good(text);
        assert_int_equal(config->tunnels[0].rekey_bytes, sizes[i].bytes);
        config_free(config);
        free(text);
    }
}

static void test_keys_and_sections_ignore_case(void **state)
{
    (void)state;
    struct config *config = load_good("[GLOBAL]\n"
                                      "Log_Level = Warning\n"
                                      "[Intranet]\n"
                                      "MODE = Server\n"
                                      "Listen = 127.0.0.1:8443\n"
                                      "TARGET = 127.0.0.1:8080\n"
                                      "Cert = server.pem\n"
                                      "KEY = server.key\n"
                                      "Ca = ca.pem\n"
                                      "KTLS = Require\n"
                                      "tls_min_version = TLSv1.3\n");
    assert_int_equal(config->global.log_level, LOG_LEVEL_WARNING);
    assert_int_equal(config->tunnel_count, 1);
    assert_string_equal(config->tunnels[0].name, "Intranet");
    assert_int_equal(config->tunnels[0].ktls, KTLS_POLICY_REQUIRE);
    assert_int_equal(config->tunnels[0].tls_min_version, TLS1_3_VERSION);
    config_free(config);
}

static void test_comments_quotes_and_continuations(void **state)
{
    (void)state;
    struct config *config = load_good("; stunnel-style comment\n"
                                      SERVER_TUNNEL
                                      "ciphers = \"ECDHE+AESGCM:!aNULL#x\"\n"   /* 8 */
                                      "groups = X25519 ; inline comment\n"      /* 9 */
                                      "allow_cn = alice, \\\n"                  /* 10 */
                                      "   bob\n"                                /* 11 */
                                      "idle_timeout = 5m # five minutes\n");    /* 12 */
    const struct tunnel_config *t = &config->tunnels[0];
    assert_string_equal(t->ciphers, "ECDHE+AESGCM:!aNULL#x");
    assert_string_equal(t->groups, "X25519");
    assert_int_equal(t->allow_cn.count, 2);
    assert_string_equal(t->allow_cn.items[1], "bob");
    assert_int_equal(t->idle_timeout, 300);
    config_free(config);

    /* A continued line is reported at its first line; the lines after count on. */
    assert_errors(SERVER_TUNNEL
                  "allow_cn = alice, \\\n"
                  "   bob\n"
                  "ktls = maybe\n",
                  ":10: [web] ktls: 'maybe' is not a kTLS policy (use auto, require or off)\n");
}

static void test_global_section_is_optional(void **state)
{
    (void)state;
    struct config *config = load_good(CLIENT_TUNNEL);
    assert_int_equal(config->global.shutdown_timeout, 30);
    assert_int_equal(config->tunnels[0].mode, TUNNEL_MODE_CLIENT);
    assert_null(config->tunnels[0].server_name);   /* the TLS module uses the target host */
    config_free(config);
}

static void test_workers_zero_means_online_cpus(void **state)
{
    (void)state;
    struct config *config = load_good("[global]\nworkers = 0\n" SERVER_TUNNEL);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    assert_int_equal(config->global.workers, cpus < 1 ? 1 : cpus > 256 ? 256 : cpus);
    config_free(config);

    config = load_good("[global]\nworkers = 256\n" SERVER_TUNNEL);
    assert_int_equal(config->global.workers, 256);
    config_free(config);
}

static void test_relative_paths_from_config_directory(void **state)
{
    char cwd[PATH_MAX];
    (void)state;

    /* Relative to the config file, not to the working directory, even when the config
     * itself is named by a relative path. */
    write_ini("[web]\n"
              "mode = server\n"
              "listen = 127.0.0.1:8443\n"
              "target = 127.0.0.1:8080\n"
              "cert = certs/site.pem\n"
              "key = ./server.key\n"
              "ca = certs/../ca.pem\n"
              "crl = {dir}/crl.pem\n");
    assert_non_null(getcwd(cwd, sizeof(cwd)));
    assert_int_equal(chdir("/"), 0);
    char *relative = ini_path + 1;   /* "tmp/ktlstun-config-test-…/ktlstun.ini" from "/" */
    char *errors = NULL;
    struct config *config = config_load(relative, &errors);
    assert_int_equal(chdir(cwd), 0);
    if (config == NULL)
        fail_msg("%s", errors);
    assert_string_equal(config->path, relative);
    const struct tunnel_config *t = &config->tunnels[0];
    assert_string_equal(t->cert, in_dir("certs/site.pem"));
    assert_string_equal(t->key, in_dir("./server.key"));
    assert_string_equal(t->ca, in_dir("certs/../ca.pem"));
    assert_string_equal(t->crl, in_dir("crl.pem"));
    assert_int_equal(t->cert[0], '/');
    config_free(config);
}

static void test_client_unix_target(void **state)
{
    (void)state;
    char *text = tunnel_with("client", "target", "unix:/run/backend.sock");
    assert_errors(text, ":1: [web] server_name: missing (required in client mode when target "
                        "is a unix socket)\n");
    free(text);

    struct config *config = load_good(CLIENT_TUNNEL "server_name = backend.internal\n");
    assert_string_equal(config->tunnels[0].server_name, "backend.internal");
    config_free(config);

    /* In server mode the target is the plain backend: a socket is fine. */
    text = tunnel_with("server", "target", "unix:/run/backend.sock");
    config = load_good(text);
    free(text);
    assert_int_equal(config->tunnels[0].target.kind, ADDRESS_UNIX);
    assert_int_equal(config->tunnels[0].target_addr.ss_family, AF_UNIX);
    config_free(config);
}

/* A PKCS#11 URI, quoted for its ';', is kept as written, with its passphrase file and
 * module; a key file keeps the file location. */
static void test_key_sources(void **state)
{
    (void)state;
    char *text = tunnel_with("server", "key", "\"pkcs11:token=ktlstun;object=web\"");
    size_t len = strlen(text);
    char *full = malloc(len + 256);
    assert_non_null(full);
    snprintf(full, len + 256, "%skey_passphrase_file = server.key\npkcs11_module = server.key\n",
             text);
    struct config *config = load_good(full);
    const struct tunnel_config *t = &config->tunnels[0];
    assert_string_equal(t->key, "pkcs11:token=ktlstun;object=web");
    assert_int_equal(t->key_location, KEY_LOCATION_PKCS11);
    assert_string_equal(t->key_passphrase_file, in_dir("server.key"));
    assert_string_equal(t->pkcs11_module, in_dir("server.key"));
    config_free(config);
    free(full);
    free(text);

    text = tunnel_with("server", "key", "HANDLE:0x81A0000f");
    config = load_good(text);
    assert_string_equal(config->tunnels[0].key, "handle:0x81A0000f");
    assert_int_equal(config->tunnels[0].key_location, KEY_LOCATION_TPM);
    config_free(config);
    free(text);

    config = load_good(SERVER_TUNNEL "key_passphrase_credential = web.pass\n");
    assert_int_equal(config->tunnels[0].key_location, KEY_LOCATION_FILE);
    assert_string_equal(config->tunnels[0].key_passphrase_credential, "web.pass");
    config_free(config);

    assert_errors(SERVER_TUNNEL "key_passphrase_file = server.key\n"
                                "key_passphrase_credential = web.pass\n",
                  ":9: [web] key_passphrase_credential: key_passphrase_file is set too (line 8): "
                  "give the passphrase one way\n");
}

static void test_pins(void **state)
{
    (void)state;
    struct config *config = load_good(
        SERVER_TUNNEL
        "pin_sha256 = sha256//AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=, "
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8, "
        "60CB95E66450C71ECAD8948A35BB71A82B44B1C10C0B30CB93E5E1481BA006D2\n");
    const struct string_list *pins = &config->tunnels[0].pin_sha256;
    assert_int_equal(pins->count, 3);
    assert_string_equal(pins->items[0],
                        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
    assert_string_equal(pins->items[1], pins->items[0]);
    assert_string_equal(pins->items[2],
                        "60cb95e66450c71ecad8948a35bb71a82b44b1c10c0b30cb93e5e1481ba006d2");
    config_free(config);

    assert_errors(SERVER_TUNNEL
                  "pin_sha256 = 60cb95e66450c71ecad8948a35bb71a82b44b1c10c0b30cb93e5e1481ba006, "
                  "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=, "
                  "60cb95e66450c71ecad8948a35bb71a82b44b1c10c0b30cb93e5e1481ba006d2aa, "
                  "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd, zz\n",
                  ":8: [web] pin_sha256: '60cb95e66450c71ecad8948a35bb71a82b44b1c10c0b30cb93e5e1481"
                  "ba006' is not a SHA-256 pin (64 hex digits, colons allowed, or base64 of 32 "
                  "bytes)\n"
                  ":8: [web] pin_sha256: 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9=' is not a "
                  "SHA-256 pin (64 hex digits, colons allowed, or base64 of 32 bytes)\n"
                  ":8: [web] pin_sha256: '60cb95e66450c71ecad8948a35bb71a82b44b1c10c0b30cb93e5e1481"
                  "ba006d2aa' is not a SHA-256 pin (64 hex digits, colons allowed, or base64 of 32 "
                  "bytes)\n"
                  ":8: [web] pin_sha256: 'AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwd' is not a "
                  "SHA-256 pin (64 hex digits, colons allowed, or base64 of 32 bytes)\n"
                  ":8: [web] pin_sha256: 'zz' is not a SHA-256 pin (64 hex digits, colons allowed, "
                  "or base64 of 32 bytes)\n");
}

static void test_tls_versions(void **state)
{
    static const struct {
        const char *text;
        int version;
    } good[] = {
        { "1.2", TLS1_2_VERSION },    { "1.3", TLS1_3_VERSION },   { "TLSv1.2", TLS1_2_VERSION },
        { "tlsv1.3", TLS1_3_VERSION }, { "TLS1.3", TLS1_3_VERSION },
    };
    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        char *text = tunnel_with("server", "tls_min_version", good[i].text);
        struct config *config = load_good(text);
        free(text);
        assert_int_equal(config->tunnels[0].tls_min_version, good[i].version);
        config_free(config);
    }
}

static void test_allow_lists_split_and_trim(void **state)
{
    (void)state;
    struct config *config = load_good(SERVER_TUNNEL "allow_cn = ,alice ,  bob smith,\t,carol\n");
    const struct string_list *cn = &config->tunnels[0].allow_cn;
    assert_int_equal(cn->count, 3);
    assert_string_equal(cn->items[0], "alice");
    assert_string_equal(cn->items[1], "bob smith");
    assert_string_equal(cn->items[2], "carol");
    config_free(config);
}

/* ---------------------------------------------------------------- one bad value per key */

struct bad_value {
    const char *mode;
    const char *key;
    const char *value;
    const char *expected;
};

static void test_bad_tunnel_values(void **state)
{
    static const struct bad_value cases[] = {
        { "server", "mode", "both", ":2: [web] mode: 'both' is not a mode (use server or client)\n" },
        { "server", "mode", "", ":2: [web] mode: '' is not a mode (use server or client)\n" },
        { "server", "listen", "127.0.0.1", ":3: [web] listen: missing port\n" },
        { "server", "listen", "::1:443", ":3: [web] listen: IPv6 literal needs brackets\n" },
        { "server", "listen", "127.0.0.1:0", ":3: [web] listen: port out of range (1-65535)\n" },
        { "server", "listen", "unix:relative.sock",
          ":3: [web] listen: unix socket path must be absolute\n" },
        { "server", "listen", "", ":3: [web] listen: empty\n" },
        { "server", "target", "[::1]", ":4: [web] target: missing port\n" },
        { "server", "target", "systemd:web",
          ":4: [web] target: systemd: sockets are for listen; a target is connected to\n" },
        { "server", "target", "*:8080",
          ":4: [web] target: '*' (every address) only makes sense for listen\n" },
        { "server", "target", "127.0.0.1:http", ":4: [web] target: port must be a number\n" },
        { "server", "cert", "missing.pem",
          ":5: [web] cert: {dir}/missing.pem: No such file or directory\n" },
        { "server", "cert", "", ":5: [web] cert: empty value\n" },
        { "server", "key", "cadir", ":6: [web] key: {dir}/cadir: Is a directory\n" },
        { "server", "key", "server.pem/x", ":6: [web] key: {dir}/server.pem/x: Not a directory\n" },
        { "server", "key", "/dev/null", ":6: [web] key: /dev/null: not a regular file\n" },
        { "server", "ca", "nocadir/", ":7: [web] ca: {dir}/nocadir/: No such file or directory\n" },
        { "server", "crl", "crl-missing.pem",
          ":8: [web] crl: {dir}/crl-missing.pem: No such file or directory\n" },
        { "server", "crl", "cadir", ":8: [web] crl: {dir}/cadir: Is a directory\n" },
        { "server", "allow_cn", " , ", ":8: [web] allow_cn: empty list\n" },
        { "server", "allow_ou", "", ":8: [web] allow_ou: empty list\n" },
        { "server", "allow_dns", ",", ":8: [web] allow_dns: empty list\n" },
        { "server", "allow_uri", "", ":8: [web] allow_uri: empty list\n" },
        { "server", "allow_email", "  ", ":8: [web] allow_email: empty list\n" },
        { "server", "pin_sha256", "", ":8: [web] pin_sha256: empty list\n" },
        { "client", "server_name", "", ":8: [web] server_name: empty value\n" },
        { "client", "server_name", "gateway.example.com:443",
          ":8: [web] server_name: 'gateway.example.com:443' is not a host name\n" },
        { "server", "tls_min_version", "1.1",
          ":8: [web] tls_min_version: older than TLS 1.2 is never allowed\n" },
        { "server", "tls_min_version", "1.0",
          ":8: [web] tls_min_version: older than TLS 1.2 is never allowed\n" },
        { "client", "tls_min_version", "TLSv1",
          ":8: [web] tls_min_version: older than TLS 1.2 is never allowed\n" },
        { "server", "tls_min_version", "SSLv3",
          ":8: [web] tls_min_version: older than TLS 1.2 is never allowed\n" },
        { "server", "tls_min_version", "1.4",
          ":8: [web] tls_min_version: '1.4' is not a TLS version (use 1.2 or 1.3)\n" },
        { "server", "ciphersuites", "", ":8: [web] ciphersuites: empty value\n" },
        { "server", "ciphers", "", ":8: [web] ciphers: empty value\n" },
        { "client", "groups", "", ":8: [web] groups: empty value\n" },
        { "server", "ktls", "yes",
          ":8: [web] ktls: 'yes' is not a kTLS policy (use auto, require or off)\n" },
        { "server", "handshake_timeout", "0", ":8: [web] handshake_timeout: must be at least 1s\n" },
        { "server", "handshake_timeout", "-5s",
          ":8: [web] handshake_timeout: negative durations are not allowed\n" },
        { "server", "handshake_timeout", "10x",
          ":8: [web] handshake_timeout: unknown unit 'x' (use s, m, h or d)\n" },
        { "server", "handshake_timeout", "366d",
          ":8: [web] handshake_timeout: too large (at most 365d)\n" },
        { "server", "idle_timeout", "99999999999999999999",
          ":8: [web] idle_timeout: too large\n" },
        { "server", "idle_timeout", "soon",
          ":8: [web] idle_timeout: expected a number (e.g. 30s, 5m, 8h, 1d or 1h30m)\n" },
        { "server", "idle_timeout", "", ":8: [web] idle_timeout: empty\n" },
        { "server", "max_connection_lifetime", "soon",
          ":8: [web] max_connection_lifetime: expected a number (e.g. 30s, 5m, 8h, 1d or 1h30m)\n" },
        { "client", "verify_cache", "2h", ":8: [web] verify_cache: too large (at most 3600s)\n" },
        { "server", "rekey_interval", "soon",
          ":8: [web] rekey_interval: expected a number (e.g. 30s, 5m, 8h, 1d or 1h30m)\n" },
        { "server", "rekey_bytes", "lots",
          ":8: [web] rekey_bytes: 'lots' is not a size (bytes, or a number with K, M, G or T; "
          "0 = off; at most 1P)\n" },
        { "client", "rekey_bytes", "2X",
          ":8: [web] rekey_bytes: '2X' is not a size (bytes, or a number with K, M, G or T; "
          "0 = off; at most 1P)\n" },
        { "client", "rekey_bytes", "1025T",
          ":8: [web] rekey_bytes: '1025T' is not a size (bytes, or a number with K, M, G or T; "
          "0 = off; at most 1P)\n" },
        { "client", "rekey_bytes", "-1",
          ":8: [web] rekey_bytes: '-1' is not a size (bytes, or a number with K, M, G or T; "
          "0 = off; at most 1P)\n" },
        { "server", "max_connections", "0",
          ":8: [web] max_connections: '0' is not a whole number from 1 to 1000000\n" },
        { "server", "max_connections", "1000001",
          ":8: [web] max_connections: '1000001' is not a whole number from 1 to 1000000\n" },
        { "server", "max_connections", "10k",
          ":8: [web] max_connections: '10k' is not a whole number from 1 to 1000000\n" },
        { "server", "max_connections", "-1",
          ":8: [web] max_connections: '-1' is not a whole number from 1 to 1000000\n" },
        { "server", "max_connections_per_source", "1000001",
          ":8: [web] max_connections_per_source: '1000001' is not a whole number from 0 to 1000000\n" },
        { "server", "handshake_rate_per_source", "20/s",
          ":8: [web] handshake_rate_per_source: '20/s' is not a whole number from 0 to 1000000\n" },
        { "server", "handshake_burst_per_source", "0",
          ":8: [web] handshake_burst_per_source: '0' is not a whole number from 1 to 1000000\n" },
        { "client", "max_connections_per_source", "8",
          ":8: [web] max_connections_per_source: only valid in server mode (this tunnel has mode = client)\n" },
        { "client", "handshake_rate_per_source", "8",
          ":8: [web] handshake_rate_per_source: only valid in server mode (this tunnel has mode = client)\n" },
        { "client", "allow_cn", "alice",
          ":8: [web] allow_cn: only valid in server mode (this tunnel has mode = client)\n" },
        { "client", "allow_ou", "Eng",
          ":8: [web] allow_ou: only valid in server mode (this tunnel has mode = client)\n" },
        { "client", "allow_dns", "a.example",
          ":8: [web] allow_dns: only valid in server mode (this tunnel has mode = client)\n" },
        { "client", "allow_uri", "spiffe://x",
          ":8: [web] allow_uri: only valid in server mode (this tunnel has mode = client)\n" },
        { "client", "allow_email", "a@example.com",
          ":8: [web] allow_email: only valid in server mode (this tunnel has mode = client)\n" },
        { "server", "server_name", "gateway.example.com",
          ":8: [web] server_name: only valid in client mode (this tunnel has mode = server)\n" },
        { "server", "colour", "blue", ":8: [web] colour: unknown key\n" },
        { "server", "key", "pkcs11:token=ktlstun;object=web",
          ":6: [web] key: a pkcs11: URI holds ';', which starts a comment here: put the value "
          "in double quotes\n" },
        { "server", "cert", "pkcs11:object=y",
          ":5: [web] cert: a certificate is read from a file (PEM or PKCS#12); a PKCS#11 token "
          "holds the key only (key = pkcs11:...)\n" },
        { "server", "key", "tpm2:0x81000001",
          ":6: [web] key: a key in a TPM is given by its persistent handle: "
          "key = handle:0x81000001\n" },
        { "server", "key", "handle:0x80000001",
          ":6: [web] key: 'handle:0x80000001' is not a persistent TPM handle: give key = "
          "handle:0x81000000 to handle:0x81ffffff\n" },
        { "server", "key", "handle:0x8100001",
          ":6: [web] key: 'handle:0x8100001' is not a persistent TPM handle: give key = "
          "handle:0x81000000 to handle:0x81ffffff\n" },
        { "server", "key", "handle:0x81000001\nkey_passphrase_credential = pin",
          ":7: [web] key_passphrase_credential: a key in a TPM (key = handle:...) takes no "
          "passphrase: remove it\n" },
        { "server", "key_passphrase_credential", "../pass",
          ":8: [web] key_passphrase_credential: '../pass' is not a credential name (the name "
          "given to LoadCredential=, without '/')\n" },
        { "server", "pkcs11_module", "/usr/lib/softhsm/libsofthsm2.so",
          ":8: [web] pkcs11_module: only used with a key in a PKCS#11 token (key = pkcs11:...)\n" },
        { "server", "allow_uo", "Eng", ":8: [web] allow_uo: unknown key; did you mean 'allow_ou'?\n" },
        { "client", "servername", "gw.example", ":8: [web] servername: unknown key; did you mean 'server_name'?\n" },
        { "server", "accept", "127.0.0.1:1",
          ":8: [web] accept: unknown key: `accept` is stunnel's name; in ktlstun it is `listen` "
          "(see README: Coming from other tools)\n" },
        { "server", "cafile", "ca.pem",
          ":8: [web] cafile: unknown key: `cafile` is stunnel's name; in ktlstun it is `ca` "
          "(see README: Coming from other tools)\n" },
        { "server", "allow-cn", "alice",
          ":8: [web] allow-cn: unknown key: `allow-cn` is ghostunnel's name; in ktlstun it is "
          "`allow_cn` (see README: Coming from other tools)\n" },
        { "server", "verifychain", "yes",
          ":8: [web] verifychain: unknown key: `verifychain` is stunnel's; ktlstun has no such "
          "key: every tunnel verifies its peer against ca: remove it (see README: Coming from "
          "other tools)\n" },
        { "server", "workers", "2",
          ":8: [web] workers: unknown key in a tunnel section (it belongs in [global])\n" },
    };
    (void)state;

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct bad_value *c = &cases[i];
        char *text = tunnel_with(c->mode, c->key, c->value);
        print_message("case %zu: %s = %s\n", i, c->key, c->value);
        assert_errors(text, c->expected);
        free(text);
    }
}

static void test_bad_global_values(void **state)
{
    (void)state;
    assert_errors("[global]\n"
                  "log_level = verbose\n"
                  "state_dir = var/lib/ktlstun\n"
                  "runtime_dir =\n"
                  "user = no-such-user-ktlstun\n"
                  "group = no-such-group-ktlstun\n"
                  "workers = 257\n"
                  "shutdown_timeout = 30 fortnights\n"
                  "listen = 127.0.0.1:1\n"
                  "color = red\n"
                  "worker = 2\n"
                  "setuid = ktlstun\n"
                  SERVER_TUNNEL,
                  ":2: [global] log_level: 'verbose' is not a level (use error, warning, notice, "
                  "info or debug)\n"
                  ":3: [global] state_dir: 'var/lib/ktlstun' is not an absolute path\n"
                  ":4: [global] runtime_dir: empty value\n"
                  ":5: [global] user: no such user 'no-such-user-ktlstun'\n"
                  ":6: [global] group: no such group 'no-such-group-ktlstun'\n"
                  ":7: [global] workers: '257' is not a whole number from 0 (one per CPU) to 256\n"
                  ":8: [global] shutdown_timeout: unknown unit 'fortnights' (use s, m, h or d)\n"
                  ":9: [global] listen: unknown key in [global] (it belongs in a tunnel section)\n"
                  ":10: [global] color: unknown key\n"
                  ":11: [global] worker: unknown key; did you mean 'workers'?\n"
                  ":12: [global] setuid: unknown key: `setuid` is stunnel's name; in ktlstun it "
                  "is `user` (in [global]; see README: Coming from other tools)\n");
    assert_errors("[global]\npam_user = no-such-user-ktlstun\n" SERVER_TUNNEL,
                  ":2: [global] pam_user: no such user 'no-such-user-ktlstun'\n");
    assert_errors("[global]\npam_user =\n" SERVER_TUNNEL, ":2: [global] pam_user: empty value\n");
    assert_errors("[global]\nworkers = -1\nshutdown_timeout = -1s\n" SERVER_TUNNEL,
                  ":2: [global] workers: '-1' is not a whole number from 0 (one per CPU) to 256\n"
                  ":3: [global] shutdown_timeout: negative durations are not allowed\n");
    struct config *config = load_good("[global]\npam_user = root\n" SERVER_TUNNEL);
    assert_string_equal(config->global.pam_user, "root");
    config_free(config);
    config = load_good("[global]\nshutdown_timeout = 0\n" SERVER_TUNNEL);
    assert_int_equal(config->global.shutdown_timeout, 0);
    config_free(config);
    assert_errors("[global]\nmetrics_listen = 70000\nexpiry_warning = soon\n" SERVER_TUNNEL,
                  ":2: [global] metrics_listen: port out of range (1-65535)\n"
                  ":3: [global] expiry_warning: expected a number (e.g. 30s, 5m, 8h, 1d or 1h30m)\n");
    assert_errors("[global]\nmetrics_listen = systemd:metrics\n" SERVER_TUNNEL,
                  ":2: [global] metrics_listen: use an address or a port (systemd: sockets are "
                  "for tunnels)\n");
    config = load_good("[global]\nmetrics_listen = [::1]:9100\n" SERVER_TUNNEL);
    assert_string_equal(config->global.metrics_listen.host, "::1");
    config_free(config);
    config = load_good("[global]\nlock_table_size = 100\n" SERVER_TUNNEL);
    assert_int_equal(config->global.lock_table_size, 100);
    config_free(config);
    assert_errors("[global]\nlock_table_size = 15\n" SERVER_TUNNEL,
                  ":2: [global] lock_table_size: '15' is not a whole number from 16 to 65536\n");
    assert_errors("[global]\nlock_table_size = 65537\n" SERVER_TUNNEL,
                  ":2: [global] lock_table_size: '65537' is not a whole number from 16 to 65536\n");
}

/* ---------------------------------------------------------------- state store */

static void test_state_store_keys(void **state)
{
    (void)state;
    /* Default and "file": the state stays in files, no gateway name needed. */
    struct config *config = load_good(SERVER_TUNNEL);
    assert_null(config->global.state_store);
    assert_null(config->global.gateway_name);
    config_free(config);
    config = load_good("[global]\nstate_store = file\n" SERVER_TUNNEL);
    assert_null(config->global.state_store);
    config_free(config);

    /* A connection string with verified TLS; gateway_name defaults to the host name. */
    static const char verified[] =
        "host=db1.example.net,db2.example.net dbname=ktlstun user=ktlstun sslmode=verify-full "
        "sslrootcert=/etc/ktlstun/db-ca.pem sslcert=/etc/ktlstun/db.crt "
        "sslkey=/etc/ktlstun/db.key target_session_attrs=read-write";
    char text[1024];
    snprintf(text, sizeof(text), "[global]\nstate_store = %s\n" SERVER_TUNNEL, verified);
    config = load_good(text);
    assert_string_equal(config->global.state_store, verified);
    char host[256] = "";
    assert_int_equal(gethostname(host, sizeof(host) - 1), 0);
    assert_string_equal(config->global.gateway_name, host);
    config_free(config);
    config = load_good("[global]\n"
                       "state_store = postgresql://ktlstun@db1.example.net/ktlstun?sslmode=verify-ca"
                       "&sslrootcert=/etc/ktlstun/db-ca.pem\n"
                       "gateway_name = gw-1.site_a\n" SERVER_TUNNEL);
    assert_string_equal(config->global.gateway_name, "gw-1.site_a");
    config_free(config);

    /* A unix socket needs no TLS: the kernel is between the two ends. */
    config = load_good("[global]\nstate_store = host=/run/postgresql dbname=ktlstun\n" SERVER_TUNNEL);
    assert_string_equal(config->global.state_store, "host=/run/postgresql dbname=ktlstun");
    config_free(config);

    assert_errors("[global]\nstate_store = host=db1 dbname=ktlstun password=secret "
                  "sslmode=verify-full\n" SERVER_TUNNEL,
                  ":2: [global] state_store: holds a password: put it in a file named by "
                  "passfile= (mode 0600, readable by pam_user) instead\n");
    assert_errors("[global]\nstate_store = host=db1.example.net dbname=ktlstun\n" SERVER_TUNNEL,
                  ":2: [global] state_store: the connection to db1.example.net is not verified TLS: "
                  "add sslmode=verify-full and sslrootcert=FILE (the CA of the database server)\n");
    assert_errors("[global]\nstate_store = host=/run/postgresql,db2 sslmode=require\n" SERVER_TUNNEL,
                  ":2: [global] state_store: the connection to db2 is not verified TLS: "
                  "add sslmode=verify-full and sslrootcert=FILE (the CA of the database server)\n");
    assert_errors("[global]\nstate_store = postgres\n" SERVER_TUNNEL,
                  ":2: [global] state_store: 'postgres' is neither 'file' nor a PostgreSQL "
                  "connection string (e.g. host=db1,db2 dbname=ktlstun user=ktlstun "
                  "sslmode=verify-full sslrootcert=FILE sslcert=FILE sslkey=FILE "
                  "target_session_attrs=read-write)\n");
    assert_errors("[global]\nstate_store = host=db1 colour=blue\n" SERVER_TUNNEL,
                  ":2: [global] state_store: not a valid PostgreSQL connection string: "
                  "invalid connection option \"colour\"\n");
    assert_errors("[global]\nstate_store =\n" SERVER_TUNNEL, ":2: [global] state_store: empty value\n");

    assert_errors("[global]\nstate_store = file\ngateway_name = gw 1/a\n" SERVER_TUNNEL,
                  ":3: [global] gateway_name: 'gw 1/a' is not a name of at most 64 letters, "
                  "digits, '.', '_' or '-'\n");
    assert_errors("[global]\ngateway_name = "
                  "a123456789012345678901234567890123456789012345678901234567890123456789\n"
                  SERVER_TUNNEL,
                  ":2: [global] gateway_name: 'a123456789012345678901234567890123456789012345678901"
                  "234567890123456789' is not a name of at most 64 letters, digits, '.', '_' or "
                  "'-'\n");
}

/* ---------------------------------------------------------------- structure errors */

static void test_all_errors_are_collected_in_file_order(void **state)
{
    (void)state;
    assert_errors("[a]\n"
                  "mode = server\n"
                  "listen = 127.0.0.1\n"
                  "target = 127.0.0.1:8080\n"
                  "cert = server.pem\n"
                  "key = nokey.pem\n"
                  "ca = ca.pem\n"
                  "[b]\n"
                  "mode = client\n"
                  "listen = 127.0.0.1:9000\n"
                  "allow_cn = x\n"
                  "bogus = 1\n",
                  ":3: [a] listen: missing port\n"
                  ":6: [a] key: {dir}/nokey.pem: No such file or directory\n"
                  ":8: [b] target: missing (required in every tunnel)\n"
                  ":8: [b] cert: missing (required in every tunnel)\n"
                  ":8: [b] key: missing (required in every tunnel)\n"
                  ":8: [b] ca: missing (required in every tunnel)\n"
                  ":11: [b] allow_cn: only valid in server mode (this tunnel has mode = client)\n"
                  ":12: [b] bogus: unknown key\n");
}

static void test_missing_required_keys(void **state)
{
    (void)state;
    assert_errors("[global]\n"
                  "log_level = info\n"
                  "\n"
                  "[empty]\n",
                  ":4: [empty] mode: missing (required in every tunnel)\n"
                  ":4: [empty] listen: missing (required in every tunnel)\n"
                  ":4: [empty] target: missing (required in every tunnel)\n"
                  ":4: [empty] cert: missing (required in every tunnel)\n"
                  ":4: [empty] key: missing (required in every tunnel)\n"
                  ":4: [empty] ca: missing (required in every tunnel)\n");
    /* Without a valid mode, mode-only keys are not judged: the mode error comes first. */
    assert_errors("[web]\n"
                  "listen = 127.0.0.1:8443\n"
                  "target = 127.0.0.1:8080\n"
                  "cert = server.pem\n"
                  "key = server.key\n"
                  "ca = ca.pem\n"
                  "allow_cn = alice\n",
                  ":1: [web] mode: missing (required in every tunnel)\n");
}

static void test_duplicates(void **state)
{
    (void)state;
    assert_errors(SERVER_TUNNEL
                  "Listen = 127.0.0.1:9443\n"                  /* 8 */
                  "idle_timeout = 5m\n"                        /* 9 */
                  "IDLE_TIMEOUT = 5m\n"                        /* 10 */
                  "\n"
                  "[Web]\n"                                    /* 12 */
                  "ktls = off\n"                               /* 13 */
                  "ktls = on\n"                                /* 14: its value is the one kept */
                  "[global]\n"                                 /* 15 */
                  "[GLOBAL]\n",                                /* 16 */
                  ":8: [web] listen: duplicate key (first set at line 3)\n"
                  ":10: [web] idle_timeout: duplicate key (first set at line 9)\n"
                  ":12: [Web] duplicate section: [web] at line 1 is the same (names ignore case)\n"
                  ":14: [web] ktls: duplicate key (first set at line 13)\n"
                  ":14: [web] ktls: 'on' is not a kTLS policy (use auto, require or off)\n"
                  ":16: [GLOBAL] duplicate section: [global] at line 15 is the same (names ignore "
                  "case)\n");
    assert_errors(SERVER_TUNNEL "[web]\n",
                  ":8: [web] duplicate section (first at line 1)\n");
}

static void test_section_names(void **state)
{
    (void)state;
    char name64[65];
    memset(name64, 'n', 64);
    name64[64] = '\0';
    char text[1024];
    snprintf(text, sizeof(text),
             "[%s]\nmode = server\nlisten = 127.0.0.1:8443\ntarget = 127.0.0.1:8080\n"
             "cert = server.pem\nkey = server.key\nca = ca.pem\n", name64);
    struct config *config = load_good(text);
    assert_string_equal(config->tunnels[0].name, name64);
    config_free(config);

    snprintf(text, sizeof(text),
             "[%sn]\nmode = server\nlisten = 127.0.0.1:8443\ntarget = 127.0.0.1:8080\n"
             "cert = server.pem\nkey = server.key\nca = ca.pem\n", name64);
    assert_errors(text, ":1: [nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn] "
                        "invalid tunnel name (use up to 64 letters, digits, '-', '_' or '.')\n");

    assert_errors("[my web]\n"
                  "mode = server\nlisten = 127.0.0.1:8443\ntarget = 127.0.0.1:8080\n"
                  "cert = server.pem\nkey = server.key\nca = ca.pem\n"
                  "[]\n"
                  "mode = nonsense\n"   /* not judged: iniparser files it somewhere odd */
                  "[a:b]\n"
                  "mode = server\nlisten = 127.0.0.1:8444\ntarget = 127.0.0.1:8080\n"
                  "cert = server.pem\nkey = server.key\nca = ca.pem\n"
                  "[c]d]\n"
                  "mode = server\nlisten = 127.0.0.1:8445\ntarget = 127.0.0.1:8080\n"
                  "cert = server.pem\nkey = server.key\nca = ca.pem\n",
                  ":1: [my web] invalid tunnel name (use up to 64 letters, digits, '-', '_' or "
                  "'.')\n"
                  ":8: empty section name\n"
                  ":10: [a:b] invalid tunnel name (use up to 64 letters, digits, '-', '_' or '.')\n"
                  ":17: [c] unexpected text after ']' in the section header\n");
}

static void test_syntax_errors(void **state)
{
    (void)state;
    /* Both our index and iniparser's callback see these; each is reported once. */
    assert_errors("log_level = debug\n"
                  SERVER_TUNNEL
                  "this line has no equals sign\n"
                  "[broken\n"
                  "= value without key\n",
                  ":1: log_level: outside any section (put it under [global] or a tunnel "
                  "section)\n"
                  ":9: [web] syntax error: expected \"key = value\", \"[section]\" or a comment\n"
                  ":10: [web] syntax error: expected \"key = value\", \"[section]\" or a comment\n"
                  ":11: [web] syntax error: expected \"key = value\", \"[section]\" or a comment\n");

    /* iniparser gives up on a line longer than its buffer: that comes only from its
     * callback, so this checks the callback is wired and maps the line. */
    size_t long_len = 1100;
    char *text = malloc(strlen(SERVER_TUNNEL) + long_len + 32);
    assert_non_null(text);
    strcpy(text, SERVER_TUNNEL "ciphers = ");
    size_t used = strlen(text);
    memset(text + used, 'A', long_len);
    strcpy(text + used + long_len, "\n");
    assert_errors(text, ":8: [web] line too long (iniparser reads at most 1022 characters per "
                        "line)\n");
    free(text);

    /* iniparser files keys after "[ ]" with those before any section. */
    assert_errors(SERVER_TUNNEL "[ ]\n" "ktls = off\n",
                  ":8: empty section name\n"
                  ":9: ktls: outside any section (put it under [global] or a tunnel section)\n");

    assert_errors(SERVER_TUNNEL "ciphers = A \\\n",
                  ":8: [web] the last line ends with '\\' but nothing follows it\n");
}

static void test_no_tunnel(void **state)
{
    (void)state;
    assert_errors("", ": no tunnel section (add one, e.g. [web] with mode, listen, target, cert, "
                      "key and ca)\n");
    assert_errors("[global]\nlog_level = debug\n",
                  ": no tunnel section (add one, e.g. [web] with mode, listen, target, cert, "
                  "key and ca)\n");
}

static void test_missing_config_file(void **state)
{
    char path[PATH_MAX + 32];
    char *errors = NULL;
    (void)state;

    snprintf(path, sizeof(path), "%s/absent.ini", test_dir);
    assert_null(config_load(path, &errors));
    char expected[PATH_MAX + 64];
    snprintf(expected, sizeof(expected), "%s: No such file or directory\n", path);
    assert_string_equal(errors, expected);
    free(errors);

    assert_null(config_load(test_dir, &errors));
    snprintf(expected, sizeof(expected), "%s: Is a directory\n", test_dir);
    assert_string_equal(errors, expected);
    free(errors);
}

static void test_listen_clashes(void **state)
{
    (void)state;
    assert_errors("[a]\n" "mode = server\n" "listen = 127.0.0.1:8443\n"
                  "target = 127.0.0.1:8080\n" "cert = server.pem\n" "key = server.key\n"
                  "ca = ca.pem\n"
                  "[b]\n" "mode = client\n" "listen = 127.0.0.1:8443\n"
                  "target = 127.0.0.1:9443\n" "cert = client.pem\n" "key = client.key\n"
                  "ca = ca.pem\n"
                  "[c]\n" "mode = server\n" "listen = *:8443\n"
                  "target = 127.0.0.1:8080\n" "cert = server.pem\n" "key = server.key\n"
                  "ca = ca.pem\n"
                  "[d]\n" "mode = server\n" "listen = unix:/run/k.sock\n"
                  "target = 127.0.0.1:8080\n" "cert = server.pem\n" "key = server.key\n"
                  "ca = ca.pem\n"
                  "[e]\n" "mode = server\n" "listen = UNIX:/run/k.sock\n"
                  "target = 127.0.0.1:8080\n" "cert = server.pem\n" "key = server.key\n"
                  "ca = ca.pem\n",
                  ":10: [b] listen: 127.0.0.1:8443 is already the listen address of [a] "
                  "(line 3)\n"
                  ":17: [c] listen: *:8443 overlaps 127.0.0.1:8443, the listen address of [a] "
                  "(line 3)\n"
                  ":17: [c] listen: *:8443 overlaps 127.0.0.1:8443, the listen address of [b] "
                  "(line 10)\n"
                  ":31: [e] listen: unix:/run/k.sock is already the listen address of [d] "
                  "(line 24)\n");

    assert_errors("[a]\n" "mode = server\n" "listen = systemd:tls\n"
                  "target = 127.0.0.1:8080\n" "cert = server.pem\n" "key = server.key\n"
                  "ca = ca.pem\n"
                  "[b]\n" "mode = server\n" "listen = systemd:tls\n"
                  "target = 127.0.0.1:8081\n" "cert = server.pem\n" "key = server.key\n"
                  "ca = ca.pem\n",
                  ":10: [b] listen: systemd:tls is already the listen socket of [a]\n");

    /* An IPv6 wildcard takes IPv4 connections too. */
    assert_errors("[a]\n" "mode = server\n" "listen = 127.0.0.1:9443\n"
                  "target = 127.0.0.1:8080\n" "cert = server.pem\n" "key = server.key\n"
                  "ca = ca.pem\n"
                  "[b]\n" "mode = server\n" "listen = [::]:9443\n"
                  "target = 127.0.0.1:8080\n" "cert = server.pem\n" "key = server.key\n"
                  "ca = ca.pem\n",
                  ":10: [b] listen: [::]:9443 overlaps 127.0.0.1:9443, the listen address of [a] "
                  "(line 3)\n");

    /* Different ports, IPv4 next to a specific IPv6 address, and an IPv4 wildcard next
     * to IPv6 are separate sockets. */
    struct config *config = load_good(
        "[a]\n" "mode = server\n" "listen = 127.0.0.1:8443\n" "target = 127.0.0.1:8080\n"
        "cert = server.pem\n" "key = server.key\n" "ca = ca.pem\n"
        "[b]\n" "mode = server\n" "listen = 127.0.0.1:8444\n" "target = 127.0.0.1:8080\n"
        "cert = server.pem\n" "key = server.key\n" "ca = ca.pem\n"
        "[c]\n" "mode = server\n" "listen = [::1]:8443\n" "target = 127.0.0.1:8080\n"
        "cert = server.pem\n" "key = server.key\n" "ca = ca.pem\n"
        "[d]\n" "mode = server\n" "listen = 0.0.0.0:8445\n" "target = 127.0.0.1:8080\n"
        "cert = server.pem\n" "key = server.key\n" "ca = ca.pem\n"
        "[e]\n" "mode = server\n" "listen = [::1]:8445\n" "target = 127.0.0.1:8080\n"
        "cert = server.pem\n" "key = server.key\n" "ca = ca.pem\n");
    assert_int_equal(config->tunnel_count, 5);
    config_free(config);
}

static void test_unresolvable_target(void **state)
{
    (void)state;
    if (!isolated_network)
        skip();   /* only inside a private network namespace: never query a real resolver */
    char *text = tunnel_with("server", "target", "backend.invalid:8080");
    write_ini(text);
    free(text);
    char *errors = NULL;
    assert_null(config_load(ini_path, &errors));
    char *prefix = with_ini_path(":4: [web] target: cannot resolve backend.invalid: ");
    assert_int_equal(strncmp(errors, prefix, strlen(prefix)), 0);
    assert_non_null(strchr(errors + strlen(prefix), '\n'));
    free(prefix);
    free(errors);
}

/* Root opens anything, so the permission check runs as nobody in a child. */
static void test_unreadable_cert_permission(void **state)
{
    (void)state;
    char *text = tunnel_with("server", "cert", "secret.pem");
    write_ini(text);
    free(text);
    write_in_dir("secret.pem", "dummy\n");
    assert_int_equal(chmod(in_dir("secret.pem"), 0600), 0);
    assert_int_equal(chmod(test_dir, 0755), 0);
    assert_int_equal(chmod(ini_path, 0644), 0);
    char *expected = with_ini_path(":5: [web] cert: {dir}/secret.pem: Permission denied\n");

    pid_t child = fork();
    assert_true(child >= 0);
    if (child == 0) {
        if (geteuid() == 0) {
            gid_t nobody = 65534;
            if (setgroups(1, &nobody) < 0 || setresgid(65534, 65534, 65534) < 0
                || setresuid(65534, 65534, 65534) < 0)
                _exit(3);
        } else if (chmod(in_dir("secret.pem"), 0) < 0) {
            _exit(3);
        }
        char *errors = NULL;
        struct config *config = config_load(ini_path, &errors);
        int matched = config == NULL && errors != NULL && strcmp(errors, expected) == 0;
        if (!matched)
            fprintf(stderr, "expected:\n%sgot:\n%s", expected, errors ? errors : "(none)\n");
        config_free(config);
        free(errors);
        free(expected);
        _exit(matched ? 0 : 1);
    }
    int status = 0;
    assert_int_equal(waitpid(child, &status, 0), child);
    free(expected);
    assert_int_equal(chmod(test_dir, 0700), 0);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(config_mode_name(TUNNEL_MODE_SERVER), "server");
    assert_string_equal(config_mode_name(TUNNEL_MODE_CLIENT), "client");
    assert_string_equal(config_ktls_name(KTLS_POLICY_AUTO), "auto");
    assert_string_equal(config_ktls_name(KTLS_POLICY_REQUIRE), "require");
    assert_string_equal(config_ktls_name(KTLS_POLICY_OFF), "off");
}

/* ---------------------------------------------------------------- shipped samples */

static int find_root_above(char *start, char *root, size_t len)
{
    for (;;) {
        char probe[PATH_MAX + 32];
        snprintf(probe, sizeof(probe), "%s/daemon/config/config.h", start);
        if (access(probe, F_OK) == 0) {
            snprintf(root, len, "%s", start[0] ? start : "/");
            return 0;
        }
        char *slash = strrchr(start, '/');
        if (slash == NULL)
            return -1;
        *slash = '\0';
    }
}

/* The repository root: above the test binary (build/tests, build/asan/tests), or else
 * above the working directory. */
static int find_source_root(char *root, size_t len)
{
    char start[PATH_MAX];
    ssize_t got = readlink("/proc/self/exe", start, sizeof(start) - 1);
    if (got > 0) {
        start[got] = '\0';
        if (find_root_above(start, root, len) == 0)
            return 0;
    }
    if (getcwd(start, sizeof(start)) == NULL)
        return -1;
    return find_root_above(start, root, len);
}

/* Copies SAMPLE with /etc/ktlstun/ moved into the test directory, creating every file
 * its cert/key/ca/crl lines name, then loads it. */
static void load_sample(const char *sample)
{
    FILE *in = fopen(sample, "r");
    if (in == NULL)
        fail_msg("%s: %s", sample, strerror(errno));
    char sample_dir[PATH_MAX + 32];
    snprintf(sample_dir, sizeof(sample_dir), "%s/sample", test_dir);
    mkdir(sample_dir, 0755);
    char copy_path[PATH_MAX + 64];
    snprintf(copy_path, sizeof(copy_path), "%s/sample/config.ini", test_dir);
    FILE *out = fopen(copy_path, "w");
    assert_non_null(out);

    char line[4096];
    while (fgets(line, sizeof(line), in) != NULL) {
        char rewritten[8192] = "";
        const char *cursor = line;
        for (const char *at; (at = strstr(cursor, "/etc/ktlstun/")) != NULL;
             cursor = at + strlen("/etc/ktlstun/")) {
            strncat(rewritten, cursor, (size_t)(at - cursor));
            strcat(rewritten, sample_dir);
            strcat(rewritten, "/");
        }
        strcat(rewritten, cursor);
        fputs(rewritten, out);

        char key[64], value[PATH_MAX];
        if (sscanf(rewritten, " %63[a-z] = %4095s", key, value) == 2
            && (strcmp(key, "cert") == 0 || strcmp(key, "key") == 0 || strcmp(key, "ca") == 0
                || strcmp(key, "crl") == 0)) {
            char file[2 * PATH_MAX + 64];
            if (value[0] == '/')
                snprintf(file, sizeof(file), "%s", value);
            else
                snprintf(file, sizeof(file), "%s/%s", sample_dir, value);
            /* Never create files outside the test directory. */
            if (strncmp(file, sample_dir, strlen(sample_dir)) != 0)
                fail_msg("%s: %s = %s is outside /etc/ktlstun/", sample, key, value);
            for (char *slash = strchr(file + 1, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
                *slash = '\0';
                mkdir(file, 0755);
                *slash = '/';
            }
            if (file[strlen(file) - 1] == '/')
                mkdir(file, 0755);
            else
                write_file(file, "dummy\n");
        }
    }
    fclose(in);
    assert_int_equal(fclose(out), 0);

    char *errors = NULL;
    struct config *config = config_load(copy_path, &errors);
    if (config == NULL) {
        fprintf(stderr, "%s:\n%s", sample, errors);
        free(errors);
        fail_msg("sample %s does not load", sample);
    }
    assert_true(config->tunnel_count >= 1);
    config_free(config);
}

static void test_shipped_samples_load(void **state)
{
    char root[PATH_MAX];
    (void)state;
    if (find_source_root(root, sizeof(root)) < 0)
        fail_msg("cannot find the source tree above the test binary");

    static const char *const samples[] = {
        "etc/ktlstun.ini",
        "etc/examples/gateway-server.ini",
        "etc/examples/worker-client.ini",
        "etc/examples/site-a.ini",
        "etc/examples/site-b.ini",
        "etc/examples/mtls-frontend.ini",
        "etc/examples/network-site-a.ini",
        "etc/examples/network-site-b.ini",
        "etc/examples/network-hub.ini",
        "etc/examples/network-worker.ini",
    };
    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        char path[PATH_MAX + 64];
        snprintf(path, sizeof(path), "%s/%s", root, samples[i]);
        print_message("sample %s\n", samples[i]);
        load_sample(path);
    }
}

/* ---------------------------------------------------------------- second factor */

static void test_second_factor_defaults(void **state)
{
    (void)state;
    struct config *config = load_good(SERVER_TUNNEL);
    const struct tunnel_config *t = &config->tunnels[0];
    assert_int_equal(t->second_factor, SECOND_FACTOR_NONE);
    assert_null(t->pam_service);
    assert_null(t->pam_confdir);
    assert_null(t->user_map);
    assert_int_equal(t->pam_timeout, 30);
    assert_int_equal(t->grant_lifetime, 8 * 3600);
    assert_int_equal(t->bind_grant_to_address, 1);
    assert_int_equal(t->browser_login, 0);
    assert_int_equal(t->failure_window, 15 * 60);
    assert_int_equal(t->max_failures, 5);
    assert_int_equal(t->lockout, 10 * 60);
    assert_int_equal(t->alert_command.count, 0);
    assert_int_equal(t->max_handshake_failures, 0);
    config_free(config);

    /* second_factor = pam alone: service "ktlstun", user_map cn, 20 handshake failures. */
    config = load_good(SERVER_TUNNEL "second_factor = pam\n");
    t = &config->tunnels[0];
    assert_int_equal(t->second_factor, SECOND_FACTOR_PAM);
    assert_string_equal(t->pam_service, "ktlstun");
    assert_non_null(t->user_map);
    assert_string_equal(user_map_describe(t->user_map), "cn");
    assert_int_equal(t->max_handshake_failures, 20);
    config_free(config);
}

static void test_second_factor_every_key(void **state)
{
    (void)state;
    write_in_dir("users.map", "cn:alice alice\n");
    struct config *config = load_good(SERVER_TUNNEL
                                      "second_factor = PAM\n"
                                      "pam_service = ktlstun-vpn\n"
                                      "pam_confdir = cadir\n"
                                      "pam_timeout = 5s\n"
                                      "user_map = file:users.map\n"
                                      "grant_lifetime = 1h30m\n"
                                      "bind_grant_to_address = no\n"
                                      "browser_login = yes\n"
                                      "failure_window = 5m\n"
                                      "max_failures = 3\n"
                                      "lockout = 2m\n"
                                      "alert_command = /bin/echo \"two words\" x\n"
                                      "max_handshake_failures = 0\n");
    const struct tunnel_config *t = &config->tunnels[0];
    assert_int_equal(t->second_factor, SECOND_FACTOR_PAM);
    assert_string_equal(t->pam_service, "ktlstun-vpn");
    assert_string_equal(t->pam_confdir, in_dir("cadir"));
    assert_int_equal(t->pam_timeout, 5);
    char expected_map[PATH_MAX + 16];
    snprintf(expected_map, sizeof(expected_map), "file:%s", in_dir("users.map"));
    assert_string_equal(user_map_describe(t->user_map), expected_map);
    assert_int_equal(t->grant_lifetime, 5400);
    assert_int_equal(t->bind_grant_to_address, 0);
    assert_int_equal(t->browser_login, 1);
    assert_int_equal(t->failure_window, 300);
    assert_int_equal(t->max_failures, 3);
    assert_int_equal(t->lockout, 120);
    assert_int_equal(t->alert_command.count, 3);
    assert_string_equal(t->alert_command.items[0], "/bin/echo");
    assert_string_equal(t->alert_command.items[1], "two words");
    assert_string_equal(t->alert_command.items[2], "x");
    assert_int_equal(t->max_handshake_failures, 0);
    config_free(config);

    /* Refused handshakes are counted on any server tunnel that asks. */
    config = load_good(SERVER_TUNNEL "max_handshake_failures = 7\nfailure_window = 1m\n"
                                     "alert_command = /bin/true\n");
    assert_int_equal(config->tunnels[0].max_handshake_failures, 7);
    assert_int_equal(config->tunnels[0].second_factor, SECOND_FACTOR_NONE);
    config_free(config);
}

static void test_second_factor_bad_values(void **state)
{
    (void)state;
    static const struct bad_value cases[] = {
        { "server", "second_factor", "otp",
          ":8: [web] second_factor: 'otp' is not a second factor (use none or pam)\n" },
        { "client", "second_factor", "pam",
          ":8: [web] second_factor: only valid in server mode (this tunnel has mode = client)\n" },
        { "server", "pam_service", "../passwd",
          ":8: [web] pam_service: '../passwd' is not a PAM service name (letters, digits, '.', "
          "'_' and '-')\n" },
        { "server", "pam_confdir", "server.pem",
          ":8: [web] pam_confdir: {dir}/server.pem is not a directory\n" },
        { "server", "pam_confdir", "nowhere",
          ":8: [web] pam_confdir: {dir}/nowhere: No such file or directory\n" },
        { "server", "pam_timeout", "0", ":8: [web] pam_timeout: must be at least 1s\n" },
        { "server", "user_map", "ldap",
          ":8: [web] user_map: 'ldap' is not a user map (use cn, email-local-part, uri-path or "
          "file:/path)\n" },
        { "server", "user_map", "file:missing.map",
          ":8: [web] user_map: {dir}/missing.map: No such file or directory\n" },
        { "server", "grant_lifetime", "0", ":8: [web] grant_lifetime: must be at least 1s\n" },
        { "server", "bind_grant_to_address", "maybe",
          ":8: [web] bind_grant_to_address: 'maybe' is not yes or no\n" },
        { "server", "browser_login", "sometimes",
          ":8: [web] browser_login: 'sometimes' is not yes or no\n" },
        { "server", "failure_window", "0", ":8: [web] failure_window: must be at least 1s\n" },
        { "server", "max_failures", "0",
          ":8: [web] max_failures: '0' is not a whole number from 1 to 50\n" },
        { "server", "max_failures", "51",
          ":8: [web] max_failures: '51' is not a whole number from 1 to 50\n" },
        { "server", "lockout", "25h",
          ":8: [web] lockout: too long (a lock lasts at most 24h, doubling included)\n" },
        { "server", "alert_command", "notify.sh",
          ":8: [web] alert_command: notify.sh: not an absolute path (give the absolute path of an "
          "executable; it runs without a shell)\n" },
        { "server", "alert_command", "/nonexistent/notify",
          ":8: [web] alert_command: /nonexistent/notify: No such file or directory (give the "
          "absolute path of an executable; it runs without a shell)\n" },
        { "server", "alert_command", "/bin/echo \"unbalanced",
          ":8: [web] alert_command: cannot split '/bin/echo \"unbalanced' into a program and its "
          "arguments (unbalanced quote?)\n" },
        { "server", "max_handshake_failures", "51",
          ":8: [web] max_handshake_failures: '51' is not a whole number from 0 (off) to 50\n" },
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char *base = tunnel_with(cases[i].mode, cases[i].key, cases[i].value);
        char *text = malloc(strlen(base) + 32);
        assert_non_null(text);
        /* Line 9: the value errors are the only ones (pam keys need the factor on). */
        int add_factor = strcmp(cases[i].mode, "server") == 0 &&
                         strcmp(cases[i].key, "second_factor") != 0;
        sprintf(text, "%s%s", base, add_factor ? "second_factor = pam\n" : "");
        print_message("%s = %s\n", cases[i].key, cases[i].value);
        assert_errors(text, cases[i].expected);
        free(text);
        free(base);
    }
}

static void test_pam_keys_need_the_second_factor(void **state)
{
    (void)state;
    static const char *const keys[][2] = {
        { "pam_service", "ktlstun" }, { "pam_confdir", "cadir" }, { "pam_timeout", "5s" },
        { "user_map", "cn" }, { "grant_lifetime", "1h" }, { "bind_grant_to_address", "yes" },
        { "max_failures", "3" }, { "browser_login", "yes" },
    };
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        char *text = tunnel_with("server", keys[i][0], keys[i][1]);
        char expected[200];
        snprintf(expected, sizeof(expected), ":8: [web] %s: only meaningful with second_factor = pam\n",
                 keys[i][0]);
        assert_errors(text, expected);
        free(text);
    }
    assert_errors(SERVER_TUNNEL "second_factor = none\nuser_map = cn\n",
                  ":9: [web] user_map: only meaningful with second_factor = pam\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_second_factor_defaults),
        cmocka_unit_test(test_second_factor_every_key),
        cmocka_unit_test(test_second_factor_bad_values),
        cmocka_unit_test(test_pam_keys_need_the_second_factor),
        cmocka_unit_test(test_minimal_server_gets_defaults),
        cmocka_unit_test(test_every_key_set),
        cmocka_unit_test(test_rekey_bytes_sizes),
        cmocka_unit_test(test_keys_and_sections_ignore_case),
        cmocka_unit_test(test_comments_quotes_and_continuations),
        cmocka_unit_test(test_global_section_is_optional),
        cmocka_unit_test(test_workers_zero_means_online_cpus),
        cmocka_unit_test(test_relative_paths_from_config_directory),
        cmocka_unit_test(test_client_unix_target),
        cmocka_unit_test(test_pins),
        cmocka_unit_test(test_tls_versions),
        cmocka_unit_test(test_allow_lists_split_and_trim),
        cmocka_unit_test(test_bad_tunnel_values),
        cmocka_unit_test(test_bad_global_values),
        cmocka_unit_test(test_state_store_keys),
        cmocka_unit_test(test_all_errors_are_collected_in_file_order),
        cmocka_unit_test(test_missing_required_keys),
        cmocka_unit_test(test_key_sources),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_section_names),
        cmocka_unit_test(test_syntax_errors),
        cmocka_unit_test(test_no_tunnel),
        cmocka_unit_test(test_missing_config_file),
        cmocka_unit_test(test_listen_clashes),
        cmocka_unit_test(test_unresolvable_target),
        cmocka_unit_test(test_unreadable_cert_permission),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_shipped_samples_load),
    };
    isolated_network = unshare(CLONE_NEWNET) == 0;
    if (!isolated_network)
        fprintf(stderr, "note: no private network namespace (not root?): "
                        "unresolvable-target test skipped\n");
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
