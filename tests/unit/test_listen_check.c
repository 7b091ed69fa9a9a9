/* listen_check: the tunnel limit, and whether each listen address can be bound now
 * (in use, held by the running daemon, unix paths). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check/listen_check.h"
#include "core/limits.h"

static struct config *config_of(size_t count)
{
    struct config *config = calloc(1, sizeof(*config));
    assert_non_null(config);
    config->path = "/etc/ktlstun/ktlstun.ini";
    config->global.runtime_dir = "/run/ktlstun";
    config->tunnels = calloc(count, sizeof(*config->tunnels));
    assert_non_null(config->tunnels);
    config->tunnel_count = count;
    for (size_t i = 0; i < count; i++) {
        struct tunnel_config *tunnel = &config->tunnels[i];
        tunnel->name = "t";
        tunnel->source = config->path;
        tunnel->line = (int)(10 * i + 1);
        tunnel->key_lines[tunnel->key_line_count++] =
            (struct config_key_line){ "listen", (int)(10 * i + 3) };
        tunnel->listen.kind = ADDRESS_SYSTEMD;
        snprintf(tunnel->listen.fd_name, sizeof(tunnel->listen.fd_name), "https");
    }
    return config;
}

static void config_free_test(struct config *config)
{
    free(config->tunnels);
    free(config);
}

/* A loopback TCP listener on a free port; its port in *PORT. */
static int listener(uint16_t *port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in in = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
    assert_int_equal(bind(fd, (struct sockaddr *)&in, sizeof(in)), 0);
    assert_int_equal(listen(fd, 1), 0);
    socklen_t len = sizeof(in);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&in, &len), 0);
    *port = ntohs(in.sin_port);
    return fd;
}

static void set_inet(struct tunnel_config *tunnel, uint16_t port)
{
    tunnel->listen.kind = ADDRESS_INET;
    snprintf(tunnel->listen.host, sizeof(tunnel->listen.host), "127.0.0.1");
    tunnel->listen.port = port;
}

static void test_tunnel_limit(void **state)
{
    (void)state;
    struct config *config = config_of(LIMIT_TUNNELS);
    struct check_report report = { 0 };
    listen_check_config(config, NULL, CHECK_ERROR, &report);
    assert_int_equal(report.count, 0);
    config_free_test(config);

    config = config_of(LIMIT_TUNNELS + 2);
    listen_check_config(config, NULL, CHECK_ERROR, &report);
    assert_int_equal(report.count, 1);
    char where[80];
    snprintf(where, sizeof(where), "/etc/ktlstun/ktlstun.ini:%d: [t]", 10 * LIMIT_TUNNELS + 1);
    assert_string_equal(report.problems[0].where, where);
    assert_true(check_report_has(&report, CHECK_ERROR, "ktlstund serves at most 256 tunnels"));
    check_report_free(&report);
    config_free_test(config);
}

static void test_address_in_use_unless_held(void **state)
{
    (void)state;
    uint16_t port;
    int fd = listener(&port);
    struct config *config = config_of(1);
    set_inet(&config->tunnels[0], port);
    struct check_report report = { 0 };
    listen_check_config(config, NULL, CHECK_ERROR, &report);
    assert_int_equal(report.count, 1);
    assert_string_equal(report.problems[0].where, "/etc/ktlstun/ktlstun.ini:3: [t] listen");
    assert_true(check_report_has(&report, CHECK_ERROR, "is already in use by another program"));
    check_report_free(&report);

    char held_address[40];
    snprintf(held_address, sizeof(held_address), "127.0.0.1:%u", (unsigned)port);
    const char *addresses[] = { "127.0.0.1:1", held_address };
    struct listen_check_held held = { .addresses = addresses, .count = 2 };
    listen_check_config(config, &held, CHECK_ERROR, &report);
    assert_int_equal(report.count, 0);

    /* A daemon runs that this process may not ask: the holder may be the daemon. */
    struct listen_check_held unknown = { .unknown = 1 };
    listen_check_config(config, &unknown, CHECK_ERROR, &report);
    assert_int_equal(report.count, 1);
    assert_int_equal(report.problems[0].severity, CHECK_WARNING);
    assert_true(check_report_has(&report, CHECK_WARNING, "perhaps by the running ktlstund"));
    check_report_free(&report);

    /* Let go: the address is free again, and the check leaves nothing bound. */
    close(fd);
    listen_check_config(config, NULL, CHECK_ERROR, &report);
    listen_check_config(config, NULL, CHECK_ERROR, &report);
    assert_int_equal(report.count, 0);
    config_free_test(config);
}

static void test_address_not_of_this_host(void **state)
{
    (void)state;
    struct config *config = config_of(1);
    set_inet(&config->tunnels[0], 4433);
    /* TEST-NET-1 (RFC 5737): never an address of this host. */
    snprintf(config->tunnels[0].listen.host, sizeof(config->tunnels[0].listen.host), "192.0.2.1");
    struct check_report report = { 0 };
    listen_check_config(config, NULL, CHECK_ERROR, &report);
    assert_true(check_report_has(&report, CHECK_ERROR, "192.0.2.1:4433 is not an address of this host"));
    check_report_free(&report);
    config_free_test(config);
}

static void test_unix_paths(void **state)
{
    (void)state;
    char dir[] = "/tmp/ktlstun-listen-check.XXXXXX";
    assert_non_null(mkdtemp(dir));
    struct config *config = config_of(3);
    for (size_t i = 0; i < 3; i++)
        config->tunnels[i].listen.kind = ADDRESS_UNIX;
    snprintf(config->tunnels[0].listen.path, sizeof(config->tunnels[0].listen.path), "%s/ok.sock", dir);
    snprintf(config->tunnels[1].listen.path, sizeof(config->tunnels[1].listen.path), "%s/file", dir);
    snprintf(config->tunnels[2].listen.path, sizeof(config->tunnels[2].listen.path), "%s/no/x.sock", dir);
    char file[64];
    snprintf(file, sizeof(file), "%s/file", dir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    struct check_report report = { 0 };
    listen_check_config(config, NULL, CHECK_ERROR, &report);
    assert_int_equal(report.count, 2);
    assert_true(check_report_has(&report, CHECK_ERROR, "/file exists and is not a socket"));
    assert_true(check_report_has(&report, CHECK_ERROR, "/no does not exist"));
    check_report_free(&report);
    unlink(file);
    rmdir(dir);
    config_free_test(config);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tunnel_limit),
        cmocka_unit_test(test_address_in_use_unless_held),
        cmocka_unit_test(test_address_not_of_this_host),
        cmocka_unit_test(test_unix_paths),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
