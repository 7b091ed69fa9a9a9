#include "config/key_suggest.h"

#include <string.h>

#define MAX_NAME 64

/* stunnel spells keys in camelCase and ghostunnel takes flags; iniparser lowercases
 * both. Names that are the same in ktlstun (cert, key, listen, target, ciphers,
 * ciphersuites) are known keys, so they never reach this table. */
static const struct key_suggest_foreign foreign_keys[] = {
    { "accept", "stunnel", "listen", NULL },
    { "connect", "stunnel", "target", NULL },
    { "cafile", "stunnel", "ca", NULL },
    { "capath", "stunnel", "ca", "a directory is accepted too" },
    { "crlfile", "stunnel", "crl", NULL },
    { "crlpath", "stunnel", "crl", "one file holding every CRL" },
    { "client", "stunnel", "mode", "client = yes is mode = client" },
    { "verify", "stunnel", NULL, "every tunnel verifies its peer against ca: remove it" },
    { "verifychain", "stunnel", NULL, "every tunnel verifies its peer against ca: remove it" },
    { "verifypeer", "stunnel", "pin_sha256", "or allow_cn and the other allow_ keys" },
    { "checkhost", "stunnel", "server_name", NULL },
    { "sni", "stunnel", "server_name", NULL },
    { "sslversionmin", "stunnel", "tls_min_version", NULL },
    { "sslversion", "stunnel", "tls_min_version", NULL },
    { "curves", "stunnel", "groups", NULL },
    { "timeoutidle", "stunnel", "idle_timeout", NULL },
    { "setuid", "stunnel", "user", "in [global]" },
    { "setgid", "stunnel", "group", "in [global]" },
    { "debug", "stunnel", "log_level", "in [global]" },
    { "pid", "stunnel", NULL, "ktlstund writes no pid file: run it under systemd or with -f" },
    { "foreground", "stunnel", NULL, "start ktlstund with -f instead" },
    { "cacert", "ghostunnel", "ca", NULL },
    { "keystore", "ghostunnel", NULL,
      "give cert and key as PEM files (openssl pkcs12 -in F -nokeys / -nocerts -nodes)" },
    { "allow-cn", "ghostunnel", "allow_cn", NULL },
    { "allow-ou", "ghostunnel", "allow_ou", NULL },
    { "allow-dns", "ghostunnel", "allow_dns", NULL },
    { "allow-dns-san", "ghostunnel", "allow_dns", NULL },
    { "allow-uri", "ghostunnel", "allow_uri", NULL },
    { "allow-uri-san", "ghostunnel", "allow_uri", NULL },
    { "allow-all", "ghostunnel", NULL,
      "leave out every allow_ key: any peer that ca verifies is let in" },
    { "override-server-name", "ghostunnel", "server_name", NULL },
    { "metrics-address", "ghostunnel", "metrics_listen", "in [global]" },
    { "status", "ghostunnel", "metrics_listen", "in [global]" },
    { "connect-timeout", "ghostunnel", "handshake_timeout", NULL },
    { "close-timeout", "ghostunnel", "shutdown_timeout", "in [global]" },
    { "max-conn-lifetime", "ghostunnel", "max_connection_lifetime", NULL },
    { "max-concurrent-conns", "ghostunnel", "max_connections", NULL },
    { "timed-reload", "ghostunnel", NULL, "send SIGHUP (systemctl reload ktlstund) to reload" },
};

/* Optimal string alignment distance; key names are short, so a small table. */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > MAX_NAME || lb > MAX_NAME)
        return (size_t)-1;
    unsigned char d[MAX_NAME + 1][MAX_NAME + 1];
    for (size_t i = 0; i <= la; i++)
        d[i][0] = (unsigned char)i;
    for (size_t j = 0; j <= lb; j++)
        d[0][j] = (unsigned char)j;
    for (size_t i = 1; i <= la; i++) {
        for (size_t j = 1; j <= lb; j++) {
            size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
            size_t best = (size_t)d[i - 1][j] + 1;
            if ((size_t)d[i][j - 1] + 1 < best)
                best = (size_t)d[i][j - 1] + 1;
            if ((size_t)d[i - 1][j - 1] + cost < best)
                best = (size_t)d[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                (size_t)d[i - 2][j - 2] + 1 < best)
                best = (size_t)d[i - 2][j - 2] + 1;
            d[i][j] = (unsigned char)best;
        }
    }
    return d[la][lb];
}

const char *key_suggest_closest(const char *name, const char *const *candidates, size_t count)
{
    /* Short names are a few edits from many others: only the nearest miss is a typo. */
    size_t allowed = strlen(name) > 6 ? 2 : 1;
    const char *best = NULL;
    size_t best_distance = allowed + 1;
    for (size_t i = 0; i < count; i++) {
        size_t d = distance(name, candidates[i]);
        if (d < best_distance) {
            best = candidates[i];
            best_distance = d;
        }
    }
    return best;
}

const struct key_suggest_foreign *key_suggest_foreign(const char *name)
{
    for (size_t i = 0; i < sizeof(foreign_keys) / sizeof(foreign_keys[0]); i++)
        if (strcmp(foreign_keys[i].name, name) == 0)
            return &foreign_keys[i];
    return NULL;
}
