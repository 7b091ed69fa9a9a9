/* ktls_probe and kmod_load against the running kernel.
 *
 * These run on any kernel: each expectation is derived from the kernel's own list of
 * TCP ULPs, read here independently, so on the development host (no kTLS) they check
 * the clean "not available" path and in the VM (tests/vm) the full matrix. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "kmod_load.h"
#include "ktls_probe.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The ground truth: does the kernel list "tls" among its ULPs right now? */
static bool kernel_lists_tls_ulp(void)
{
    char line[1024] = "";
    FILE *file = fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r");

    assert_non_null(file);
    if (fgets(line, sizeof(line), file) == NULL)
        line[0] = '\0';
    fclose(file);
    for (char *word = strtok(line, " \t\n"); word != NULL; word = strtok(NULL, " \t\n"))
        if (strcmp(word, "tls") == 0)
            return true;
    return false;
}

/* Runs ktls_probe_command with ARGV and returns what it wrote on stdout (caller frees). */
static char *capture_command(int argc, char **argv, int *status)
{
    FILE *capture = tmpfile();
    assert_non_null(capture);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(capture), STDOUT_FILENO) >= 0);

    *status = ktls_probe_command(argc, argv);

    fflush(stdout);
    assert_true(dup2(saved, STDOUT_FILENO) >= 0);
    close(saved);
    long size = ftell(capture);
    if (size < 0) {
        fseek(capture, 0, SEEK_END);
        size = ftell(capture);
    }
    assert_true(size >= 0);
    char *text = calloc(1, (size_t)size + 1);
    assert_non_null(text);
    rewind(capture);
    assert_int_equal(fread(text, 1, (size_t)size, capture), (size_t)size);
    fclose(capture);
    return text;
}

static size_t count_occurrences(const char *text, const char *needle)
{
    size_t count = 0;
    for (const char *p = strstr(text, needle); p != NULL; p = strstr(p + 1, needle))
        count++;
    return count;
}

/* A strict little JSON checker (RFC 8259 minus number exponents, which the probe never
 * prints): returns the position after one value, or NULL when malformed. */
static const char *json_value(const char *p);

static const char *json_space(const char *p)
{
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
    return p;
}

static const char *json_string(const char *p)
{
    if (*p++ != '"')
        return NULL;
    while (*p != '"') {
        if ((unsigned char)*p < 0x20)
            return NULL;
        if (*p == '\\') {
            p++;
            if (*p == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (strchr("0123456789abcdefABCDEF", p[i]) == NULL || p[i] == '\0')
                        return NULL;
                p += 4;
            } else if (strchr("\"\\/bfnrt", *p) == NULL || *p == '\0') {
                return NULL;
            }
        }
        p++;
    }
    return p + 1;
}

static const char *json_container(const char *p, char close, bool keyed)
{
    p = json_space(p + 1);
    if (*p == close)
        return p + 1;
    for (;;) {
        if (keyed) {
            p = json_string(json_space(p));
            if (p == NULL)
                return NULL;
            p = json_space(p);
            if (*p++ != ':')
                return NULL;
        }
        p = json_value(p);
        if (p == NULL)
            return NULL;
        p = json_space(p);
        if (*p == close)
            return p + 1;
        if (*p++ != ',')
            return NULL;
    }
}

static const char *json_value(const char *p)
{
    p = json_space(p);
    switch (*p) {
    case '{':
        return json_container(p, '}', true);
    case '[':
        return json_container(p, ']', false);
    case '"':
        return json_string(p);
    case 't':
        return strncmp(p, "true", 4) == 0 ? p + 4 : NULL;
    case 'f':
        return strncmp(p, "false", 5) == 0 ? p + 5 : NULL;
    case 'n':
        return strncmp(p, "null", 4) == 0 ? p + 4 : NULL;
    default:
        if (*p == '-' || (*p >= '0' && *p <= '9')) {
            p++;
            while (*p >= '0' && *p <= '9')
                p++;
            return p;
        }
        return NULL;
    }
}

static bool json_is_one_object(const char *text)
{
    if (*json_space(text) != '{')
        return false;
    const char *end = json_value(text);
    return end != NULL && *json_space(end) == '\0';
}

static void test_json_checker_rejects_malformed(void **state)
{
    (void)state;
    /* The checker below is what makes the JSON test meaningful: prove it can say no. */
    assert_true(json_is_one_object("{\"a\":[true,false,null,\"x\\\"y\"],\"b\":{}}\n"));
    assert_false(json_is_one_object("{\"a\":true,}"));
    assert_false(json_is_one_object("{\"a\":\"unterminated}"));
    assert_false(json_is_one_object("{\"a\":tru}"));
    assert_false(json_is_one_object("{\"a\":1}{}"));
    assert_false(json_is_one_object("{\"a\":\"raw\"quote\"}"));
}

static void test_names(void **state)
{
    (void)state;
    assert_string_equal(ktls_probe_version_name(KTLS_PROBE_TLS12), "TLS 1.2");
    assert_string_equal(ktls_probe_version_name(KTLS_PROBE_TLS13), "TLS 1.3");
    assert_string_equal(ktls_probe_cipher_name(KTLS_PROBE_CHACHA20_POLY1305), "CHACHA20-POLY1305");
    assert_null(ktls_probe_version_name(KTLS_PROBE_VERSION_COUNT));
    assert_null(ktls_probe_cipher_name(KTLS_PROBE_CIPHER_COUNT));
}

static void test_available_ulps_matches_kernel(void **state)
{
    (void)state;
    char list[256];
    char tiny[4];

    int listed = kmod_load_available_ulps(list, sizeof(list));
    assert_int_equal(listed, kernel_lists_tls_ulp() ? 1 : 0);
    assert_null(strchr(list, '\n'));
    /* Truncating the copy must not change the answer. */
    assert_int_equal(kmod_load_available_ulps(tiny, sizeof(tiny)), listed);
    assert_true(strlen(tiny) < sizeof(tiny));
}

static void test_load_reports_what_the_kernel_lists(void **state)
{
    (void)state;
    int loaded = kmod_load_tls_modules();
    assert_int_equal(loaded, kernel_lists_tls_ulp() ? 0 : -1);
}

static void test_run_is_consistent_with_kernel(void **state)
{
    (void)state;
    struct ktls_probe_result result;

    memset(&result, 0xa5, sizeof(result));
    assert_int_equal(ktls_probe_run(&result), 0);
    /* Read after the run: setsockopt(TCP_ULP) may have autoloaded the module. */
    bool ulp = kernel_lists_tls_ulp();
    assert_int_equal(result.tls_ulp, ulp);
    assert_non_null(memchr(result.kernel_release, '\0', sizeof(result.kernel_release)));
    assert_true(strlen(result.kernel_release) > 0);

    for (int v = 0; v < KTLS_PROBE_VERSION_COUNT; v++) {
        for (int c = 0; c < KTLS_PROBE_CIPHER_COUNT; c++) {
            const struct ktls_probe_outcome *both[] = { &result.tx[v][c], &result.rx[v][c] };
            for (size_t d = 0; d < 2; d++) {
                if (!ulp)
                    assert_false(both[d]->accepted);
                /* An outcome is either accepted or carries the errno that refused it. */
                assert_true(both[d]->accepted == (both[d]->error == 0) ||
                            (!ulp && both[d]->error == 0));
            }
        }
    }
    if (ulp) {
        assert_string_equal(result.ulp_reason, "");
        /* CONFIG_TLS selects CRYPTO_GCM and CRYPTO_AES: any kernel with the ULP has it. */
        assert_true(result.tx[KTLS_PROBE_TLS12][KTLS_PROBE_AES_128_GCM].accepted);
        assert_true(result.rx[KTLS_PROBE_TLS12][KTLS_PROBE_AES_128_GCM].accepted);
    } else {
        assert_non_null(strstr(result.ulp_reason, "TCP_ULP"));
        assert_false(result.tx_zerocopy_sendfile.accepted);
        assert_false(result.rx_expect_no_pad.accepted);
        assert_false(result.rekey.accepted);
    }
    /* Accepted, or refused with the errno that said no (EBUSY before Linux 6.14). */
    assert_true(result.rekey.accepted == (result.rekey.error == 0) ||
                (!ulp && result.rekey.error == 0));
}

static void test_command_json(void **state)
{
    (void)state;
    char *argv[] = { "probe", "--json", NULL };
    int status = -1;

    char *text = capture_command(2, argv, &status);
    assert_int_equal(status, 0);
    assert_true(json_is_one_object(text));
    assert_int_equal(count_occurrences(text, "\n"), 1);
    assert_int_equal(count_occurrences(text, "\"version\":"), 8);
    bool ulp = kernel_lists_tls_ulp();
    assert_non_null(strstr(text, ulp ? "\"tls_ulp\":true,\"tls_ulp_error\":null"
                                     : "\"tls_ulp\":false,\"tls_ulp_error\":\""));
    assert_non_null(strstr(text, ",\"rekey\":"));
    assert_non_null(strstr(text, ",\"rekey_error\":"));
    if (!ulp)
        assert_int_equal(count_occurrences(text, "\"tx\":true"), 0);
    else
        assert_non_null(strstr(text, "{\"version\":\"TLS 1.2\",\"cipher\":\"AES-128-GCM\","
                                     "\"tx\":true,\"tx_error\":null,\"rx\":true,"
                                     "\"rx_error\":null}"));
    free(text);
}

static void test_command_table(void **state)
{
    (void)state;
    char *argv[] = { "probe", NULL };
    int status = -1;

    char *text = capture_command(1, argv, &status);
    assert_int_equal(status, 0);
    if (kernel_lists_tls_ulp()) {
        assert_non_null(strstr(text, "kernel TLS: available"));
        assert_int_equal(count_occurrences(text, "TLS 1.3   "), 4);
        assert_int_equal(count_occurrences(text, "TLS 1.2   "), 4);
        assert_non_null(strstr(text, "TLS_TX_ZEROCOPY_RO"));
        assert_non_null(strstr(text, "rekey, TLS 1.3 KeyUpdate (Linux 6.14):"));
    } else {
        assert_non_null(strstr(text, "kernel TLS: not available (tls ULP missing: "));
        assert_null(strstr(text, "TLS 1.3"));
    }
    free(text);
}

static void test_command_rejects_unknown_argument(void **state)
{
    (void)state;
    char *argv[] = { "probe", "--jsn", NULL };
    int status = -1;

    char *text = capture_command(2, argv, &status);
    assert_int_equal(status, 2);
    assert_string_equal(text, "");
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_checker_rejects_malformed),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_available_ulps_matches_kernel),
        cmocka_unit_test(test_load_reports_what_the_kernel_lists),
        cmocka_unit_test(test_run_is_consistent_with_kernel),
        cmocka_unit_test(test_command_json),
        cmocka_unit_test(test_command_table),
        cmocka_unit_test(test_command_rejects_unknown_argument),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
