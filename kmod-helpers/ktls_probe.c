#include "ktls_probe.h"

#include "kmod_load.h"
#include "ktls_uapi.h"
#include "core/log.h"
#include "core/text.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/tls.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>


enum direction { DIRECTION_TX, DIRECTION_RX };

union crypto_info {
    struct tls_crypto_info base;
    struct tls12_crypto_info_aes_gcm_128 aes_gcm_128;
    struct tls12_crypto_info_aes_gcm_256 aes_gcm_256;
    struct tls12_crypto_info_aes_ccm_128 aes_ccm_128;
    struct tls12_crypto_info_chacha20_poly1305 chacha20_poly1305;
};

/* What one attempt sets after the crypto info, if anything: OPTION set to 1, or with
 * REPEAT the same crypto info again (a rekey). */
struct follow_up {
    int option;
    struct ktls_probe_outcome *outcome;
    bool repeat;
};

static const char *const version_names[KTLS_PROBE_VERSION_COUNT] = {
    [KTLS_PROBE_TLS12] = "TLS 1.2",
    [KTLS_PROBE_TLS13] = "TLS 1.3",
};

static const char *const cipher_names[KTLS_PROBE_CIPHER_COUNT] = {
    [KTLS_PROBE_AES_128_GCM] = "AES-128-GCM",
    [KTLS_PROBE_AES_256_GCM] = "AES-256-GCM",
    [KTLS_PROBE_AES_128_CCM] = "AES-128-CCM",
    [KTLS_PROBE_CHACHA20_POLY1305] = "CHACHA20-POLY1305",
};

const char *ktls_probe_version_name(enum ktls_probe_version version)
{
    return (unsigned)version < KTLS_PROBE_VERSION_COUNT ? version_names[version] : NULL;
}

const char *ktls_probe_cipher_name(enum ktls_probe_cipher cipher)
{
    return (unsigned)cipher < KTLS_PROBE_CIPHER_COUNT ? cipher_names[cipher] : NULL;
}

/* Key material stays zero: the kernel only checks sizes and that the AEAD exists. */
static socklen_t fill_aes_gcm_128(union crypto_info *info)
{
    info->base.cipher_type = TLS_CIPHER_AES_GCM_128;
    return sizeof(info->aes_gcm_128);
}

static socklen_t fill_aes_gcm_256(union crypto_info *info)
{
    info->base.cipher_type = TLS_CIPHER_AES_GCM_256;
    return sizeof(info->aes_gcm_256);
}

static socklen_t fill_aes_ccm_128(union crypto_info *info)
{
    info->base.cipher_type = TLS_CIPHER_AES_CCM_128;
    return sizeof(info->aes_ccm_128);
}

static socklen_t fill_chacha20_poly1305(union crypto_info *info)
{
    info->base.cipher_type = TLS_CIPHER_CHACHA20_POLY1305;
    return sizeof(info->chacha20_poly1305);
}

static socklen_t (*const fillers[KTLS_PROBE_CIPHER_COUNT])(union crypto_info *) = {
    [KTLS_PROBE_AES_128_GCM] = fill_aes_gcm_128,
    [KTLS_PROBE_AES_256_GCM] = fill_aes_gcm_256,
    [KTLS_PROBE_AES_128_CCM] = fill_aes_ccm_128,
    [KTLS_PROBE_CHACHA20_POLY1305] = fill_chacha20_poly1305,
};

static int open_listener(void)
{
    int fd = -1;
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = 0 };

    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        log_error("kTLS probe: socket: %s", strerror(errno));
        goto out;
    }
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(fd, 4) != 0) {
        log_error("kTLS probe: cannot listen on 127.0.0.1 (is lo up?): %s", strerror(errno));
        close(fd);
        fd = -1;
    }
out:
    return fd;
}

/* Connects a new client to LISTENER and accepts it: the kernel refuses TCP_ULP on a
 * socket that is not established. Returns 0 with both ends set, or -1 (logged). */
static int open_pair(int listener, int *client, int *server)
{
    int result = -1;
    struct sockaddr_in addr;
    socklen_t addr_len = sizeof(addr);

    *client = -1;
    *server = -1;
    if (getsockname(listener, (struct sockaddr *)&addr, &addr_len) != 0) {
        log_error("kTLS probe: getsockname: %s", strerror(errno));
        goto out;
    }
    *client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (*client < 0) {
        log_error("kTLS probe: socket: %s", strerror(errno));
        goto out;
    }
    if (connect(*client, (struct sockaddr *)&addr, addr_len) != 0) {
        log_error("kTLS probe: connect to 127.0.0.1: %s", strerror(errno));
        goto close_client;
    }
    *server = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
    if (*server < 0) {
        log_error("kTLS probe: accept: %s", strerror(errno));
        goto close_client;
    }
    result = 0;
    goto out;
close_client:
    close(*client);
    *client = -1;
out:
    return result;
}

static void record(struct ktls_probe_outcome *outcome, int rc)
{
    outcome->accepted = rc == 0;
    outcome->error = rc == 0 ? 0 : errno;
}

/* One attempt on a fresh pair: ULP, then crypto info for VERSION/CIPHER/DIRECTION into
 * OUTCOME, then FOLLOW_UP (if any) when that was accepted. Sets *ULP_ERROR to the
 * errno of setsockopt(TCP_ULP) (0 when it worked). Returns -1 when no pair could be
 * made. */
static int attempt(int listener, enum ktls_probe_version version, enum ktls_probe_cipher cipher,
                   enum direction direction, struct ktls_probe_outcome *outcome,
                   const struct follow_up *follow_up, int *ulp_error)
{
    int result = -1;
    int client = -1;
    int server = -1;
    union crypto_info info;

    memset(&info, 0, sizeof(info));
    if (open_pair(listener, &client, &server) != 0)
        goto out;
    result = 0;
    *ulp_error = 0;
    if (setsockopt(client, IPPROTO_TCP, TCP_ULP, "tls", sizeof("tls")) != 0) {
        *ulp_error = errno;
        record(outcome, -1);
        goto close_pair;
    }
    info.base.version = version == KTLS_PROBE_TLS12 ? TLS_1_2_VERSION : TLS_1_3_VERSION;
    socklen_t size = fillers[cipher](&info);
    record(outcome, setsockopt(client, SOL_TLS, direction == DIRECTION_TX ? TLS_TX : TLS_RX,
                               &info, size));
    if (follow_up != NULL && outcome->accepted && follow_up->repeat) {
        /* The same key again: the probe's socket carries no data, so nothing reuses it. */
        record(follow_up->outcome, setsockopt(client, SOL_TLS, follow_up->option, &info, size));
    } else if (follow_up != NULL && outcome->accepted) {
        int on = 1;
        record(follow_up->outcome, setsockopt(client, SOL_TLS, follow_up->option, &on,
                                              sizeof(on)));
    }
close_pair:
    close(server);
    close(client);
out:
    OPENSSL_cleanse(&info, sizeof(info));
    return result;
}

int ktls_probe_run(struct ktls_probe_result *out)
{
    int result = -1;
    int listener = -1;
    int ulp_error = 0;
    struct utsname uts;
    char ulps[160];

    memset(out, 0, sizeof(*out));
    if (uname(&uts) == 0)
        snprintf(out->kernel_release, sizeof(out->kernel_release), "%s", uts.release);
    listener = open_listener();
    if (listener < 0)
        goto out;

    /* The first attempt doubles as the ULP check: nothing else is worth trying without. */
    if (attempt(listener, KTLS_PROBE_TLS12, KTLS_PROBE_AES_128_GCM, DIRECTION_TX,
                &out->tx[KTLS_PROBE_TLS12][KTLS_PROBE_AES_128_GCM], NULL, &ulp_error) != 0)
        goto out;
    if (ulp_error != 0) {
        int listed = kmod_load_available_ulps(ulps, sizeof(ulps));
        snprintf(out->ulp_reason, sizeof(out->ulp_reason), "setsockopt(TCP_ULP, \"tls\"): %s; %s%s",
                 strerror(ulp_error), listed >= 0 ? "available ULPs: " : "",
                 listed >= 0 && ulps[0] == '\0' ? "none" : ulps);
        memset(&out->tx[KTLS_PROBE_TLS12][KTLS_PROBE_AES_128_GCM], 0,
               sizeof(out->tx[KTLS_PROBE_TLS12][KTLS_PROBE_AES_128_GCM]));
        result = 0;
        goto out;
    }
    out->tls_ulp = true;

    for (int v = 0; v < KTLS_PROBE_VERSION_COUNT; v++) {
        for (int c = 0; c < KTLS_PROBE_CIPHER_COUNT; c++) {
            bool first = v == KTLS_PROBE_TLS12 && c == KTLS_PROBE_AES_128_GCM;
            if (!first && attempt(listener, v, c, DIRECTION_TX, &out->tx[v][c], NULL,
                                  &ulp_error) != 0)
                goto out;
            if (attempt(listener, v, c, DIRECTION_RX, &out->rx[v][c], NULL, &ulp_error) != 0)
                goto out;
        }
    }

    /* Both options exist since 6.0; no-pad is only accepted on a TLS 1.3 RX socket. */
    struct follow_up zerocopy = { TLS_TX_ZEROCOPY_RO, &out->tx_zerocopy_sendfile, false };
    struct ktls_probe_outcome base_tx;
    if (attempt(listener, KTLS_PROBE_TLS13, KTLS_PROBE_AES_128_GCM, DIRECTION_TX, &base_tx,
                &zerocopy, &ulp_error) != 0)
        goto out;
    if (!base_tx.accepted)
        out->tx_zerocopy_sendfile = base_tx;
    struct follow_up no_pad = { TLS_RX_EXPECT_NO_PAD, &out->rx_expect_no_pad, false };
    struct ktls_probe_outcome base_rx;
    if (attempt(listener, KTLS_PROBE_TLS13, KTLS_PROBE_AES_128_GCM, DIRECTION_RX, &base_rx,
                &no_pad, &ulp_error) != 0)
        goto out;
    if (!base_rx.accepted)
        out->rx_expect_no_pad = base_rx;
    /* Before 6.14 a socket takes keys once: the second TLS_TX gets EBUSY. */
    struct follow_up rekey = { TLS_TX, &out->rekey, true };
    struct ktls_probe_outcome base_rekey;
    if (attempt(listener, KTLS_PROBE_TLS13, KTLS_PROBE_AES_128_GCM, DIRECTION_TX, &base_rekey,
                &rekey, &ulp_error) != 0)
        goto out;
    if (!base_rekey.accepted)
        out->rekey = base_rekey;
    result = 0;
out:
    if (listener >= 0)
        close(listener);
    return result;
}

static const char *error_name(int error)
{
    const char *name = strerrorname_np(error);
    return name != NULL ? name : "unknown error";
}

static void format_outcome(const struct ktls_probe_outcome *outcome, char *cell, size_t size)
{
    if (outcome->accepted)
        snprintf(cell, size, "yes");
    else
        snprintf(cell, size, "no (%s)", error_name(outcome->error));
}

static void print_table(const struct ktls_probe_result *result)
{
    char tx[40];
    char rx[40];

    if (!result->tls_ulp) {
        printf("kernel TLS: not available (tls ULP missing: %s)\n", result->ulp_reason);
        printf("kernel: %s\n", result->kernel_release);
        return;
    }
    printf("kernel TLS: available (kernel %s)\n\n", result->kernel_release);
    printf("%-8s  %-18s  %-16s  %s\n", "version", "cipher", "TX", "RX");
    for (int v = 0; v < KTLS_PROBE_VERSION_COUNT; v++) {
        for (int c = 0; c < KTLS_PROBE_CIPHER_COUNT; c++) {
            format_outcome(&result->tx[v][c], tx, sizeof(tx));
            format_outcome(&result->rx[v][c], rx, sizeof(rx));
            printf("%-8s  %-18s  %-16s  %s\n", version_names[v], cipher_names[c], tx, rx);
        }
    }
    format_outcome(&result->tx_zerocopy_sendfile, tx, sizeof(tx));
    format_outcome(&result->rx_expect_no_pad, rx, sizeof(rx));
    printf("\n%-46s  %s\n", "zerocopy sendfile (TLS_TX_ZEROCOPY_RO):", tx);
    printf("%-46s  %s\n", "rx expect no padding (TLS_RX_EXPECT_NO_PAD):", rx);
    format_outcome(&result->rekey, tx, sizeof(tx));
    printf("%-46s  %s\n", "rekey, TLS 1.3 KeyUpdate (Linux 6.14):", tx);
}


static void print_json_outcome(const char *key, const struct ktls_probe_outcome *outcome)
{
    printf("\"%s\":%s,\"%s_error\":", key, outcome->accepted ? "true" : "false", key);
    if (outcome->accepted || outcome->error == 0)
        printf("null");
    else
        text_json_string(stdout, error_name(outcome->error));
}

static void print_json(const struct ktls_probe_result *result)
{
    printf("{\"kernel\":");
    text_json_string(stdout, result->kernel_release);
    printf(",\"tls_ulp\":%s,\"tls_ulp_error\":", result->tls_ulp ? "true" : "false");
    if (result->tls_ulp)
        printf("null");
    else
        text_json_string(stdout, result->ulp_reason);
    printf(",\"ciphers\":[");
    for (int v = 0; v < KTLS_PROBE_VERSION_COUNT; v++) {
        for (int c = 0; c < KTLS_PROBE_CIPHER_COUNT; c++) {
            printf("%s{\"version\":\"%s\",\"cipher\":\"%s\",", v + c == 0 ? "" : ",",
                   version_names[v], cipher_names[c]);
            print_json_outcome("tx", &result->tx[v][c]);
            putchar(',');
            print_json_outcome("rx", &result->rx[v][c]);
            putchar('}');
        }
    }
    printf("],");
    print_json_outcome("tx_zerocopy_sendfile", &result->tx_zerocopy_sendfile);
    putchar(',');
    print_json_outcome("rx_expect_no_pad", &result->rx_expect_no_pad);
    putchar(',');
    print_json_outcome("rekey", &result->rekey);
    printf("}\n");
}

static void print_usage(FILE *stream)
{
    fprintf(stream, "usage: ktlstun probe [--json]\n"
                    "  Shows which kernel TLS versions, ciphers and options this kernel\n"
                    "  accepts, and whether it takes new keys (rekey). As root it first\n"
                    "  loads the tls and cipher modules.\n");
}

int ktls_probe_command(int argc, char **argv)
{
    int status = 0;
    bool json = false;
    bool help = false;
    struct ktls_probe_result result;

    for (int i = 1; i < argc && status == 0; i++) {
        if (strcmp(argv[i], "--json") == 0) {
            json = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            help = true;
        } else {
            fprintf(stderr, "ktlstun probe: unknown argument '%s'\n", argv[i]);
            print_usage(stderr);
            status = 2;
        }
    }
    if (status != 0 || help) {
        if (help)
            print_usage(stdout);
        goto out;
    }
    /* Unprivileged, the check alone is made; the probe itself tells the story. */
    if (geteuid() == 0)
        (void)kmod_load_tls_modules();
    if (ktls_probe_run(&result) != 0) {
        status = 1;
        goto out;
    }
    if (json)
        print_json(&result);
    else
        print_table(&result);
    if (fflush(stdout) != 0)
        status = 1;
out:
    return status;
}
