/* ktls_probe — find out what kernel TLS this kernel offers, by trying it.
 *
 * Each (version, cipher, direction) is tried with setsockopt(SOL_TLS) on a fresh
 * connected loopback TCP socket, with dummy key material that is wiped afterwards. */
#ifndef KTLSTUN_KTLS_PROBE_H
#define KTLSTUN_KTLS_PROBE_H

#include <stdbool.h>

enum ktls_probe_version { KTLS_PROBE_TLS12, KTLS_PROBE_TLS13, KTLS_PROBE_VERSION_COUNT };

enum ktls_probe_cipher {
    KTLS_PROBE_AES_128_GCM,
    KTLS_PROBE_AES_256_GCM,
    KTLS_PROBE_AES_128_CCM,
    KTLS_PROBE_CHACHA20_POLY1305,
    KTLS_PROBE_CIPHER_COUNT
};

/* One setsockopt outcome: accepted, or the errno it failed with. */
struct ktls_probe_outcome {
    bool accepted;
    int error;
};

struct ktls_probe_result {
    char kernel_release[65];
    /* setsockopt(TCP_ULP, "tls") succeeded; when false, ulp_reason says why and every
     * other field is false. */
    bool tls_ulp;
    char ulp_reason[320];
    struct ktls_probe_outcome tx[KTLS_PROBE_VERSION_COUNT][KTLS_PROBE_CIPHER_COUNT];
    struct ktls_probe_outcome rx[KTLS_PROBE_VERSION_COUNT][KTLS_PROBE_CIPHER_COUNT];
    /* TLS_TX_ZEROCOPY_RO (kernel >= 6.0): sendfile without copying the page cache. */
    struct ktls_probe_outcome tx_zerocopy_sendfile;
    /* TLS_RX_EXPECT_NO_PAD (kernel >= 6.0, TLS 1.3): decrypt straight into user buffers. */
    struct ktls_probe_outcome rx_expect_no_pad;
    /* A second TLS_TX on a TLS 1.3 AES-128-GCM socket (kernel >= 6.14): kTLS takes new
     * keys, so offloaded connections can follow a KeyUpdate. */
    struct ktls_probe_outcome rekey;
};

/* Fills OUT with what this kernel accepts. Loads no modules (see kmod_load).
 * Returns 0 when the probe ran, including on a kernel without kTLS; -1 when it could
 * not (no loopback TCP socket pair), with the reason logged. */
int ktls_probe_run(struct ktls_probe_result *out);

/* Human name of VERSION ("TLS 1.2") or CIPHER ("AES-128-GCM"); NULL when out of range. */
const char *ktls_probe_version_name(enum ktls_probe_version version);
const char *ktls_probe_cipher_name(enum ktls_probe_cipher cipher);

/* The CLI command `ktlstun probe [--json]` (ARGV[0] is "probe"): loads the modules
 * when privileged, probes, prints a table or one JSON object on stdout.
 * Returns the process exit status: 0 when the probe ran (kTLS present or not),
 * 1 when it could not run, 2 on a usage error. */
int ktls_probe_command(int argc, char **argv);

#endif
