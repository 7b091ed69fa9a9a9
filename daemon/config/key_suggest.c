#include "config/key_suggest.h"

#include <string.h>

#define MAX_NAME 64

/* stunnel spells keys in camelCase and ghostunnel takes flags; iniparser lowercases
 * both. Names that are the same in ktlstun (cert, key, listen, target, ciphers,
 * ciphersuites) are known keys, so they never reach this table. */
#define STUNNEL(name, ours, note) { name, "stunnel", ours, note }
#define GHOSTUNNEL(name, ours, note) { name, "ghostunnel", ours, note }

static const struct key_suggest_foreign foreign_keys[] = {
    STUNNEL("accept", "listen", NULL),
    STUNNEL("connect", "target", NULL),
    STUNNEL("cafile", "ca", NULL),
    STUNNEL("capath", "ca", "a directory is accepted too"),
    STUNNEL("crlfile", "crl", NULL),
    STUNNEL("crlpath", "crl", "one file holding every CRL"),
    STUNNEL("client", "mode", "client = yes is mode = client"),
    STUNNEL("verify", NULL, "every tunnel verifies its peer against ca: remove it"),
    STUNNEL("verifychain", NULL, "every tunnel verifies its peer against ca: remove it"),
    STUNNEL("verifypeer", "pin_sha256", "or allow_cn and the other allow_ keys"),
    STUNNEL("checkhost", "server_name", NULL),
    STUNNEL("sni", "server_name", NULL),
    STUNNEL("sslversionmin", "tls_min_version", NULL),
    STUNNEL("sslversion", "tls_min_version", NULL),
    STUNNEL("curves", "groups", NULL),
    STUNNEL("timeoutidle", "idle_timeout", NULL),
    STUNNEL("setuid", "user", "in [global]"),
    STUNNEL("setgid", "group", "in [global]"),
    STUNNEL("debug", "log_level", "in [global]"),
    STUNNEL("pid", NULL, "ktlstund writes no pid file: run it under systemd or with -f"),
    STUNNEL("foreground", NULL, "start ktlstund with -f instead"),
    STUNNEL("protocol", "proxy",
            "protocol = connect is proxy = http://HOST:PORT, the proxy stunnel's connect names"),
    STUNNEL("protocolhost", "target", "the server behind the proxy"),
    STUNNEL("protocolusername", "proxy_credentials", "a file with user:password on one line"),
    STUNNEL("protocolpassword", "proxy_credentials", "a file with user:password on one line"),
    GHOSTUNNEL("cacert", "ca", NULL),
    GHOSTUNNEL("keystore", NULL,
               "give cert and key as PEM files (openssl pkcs12 -in F -nokeys / -nocerts -nodes)"),
    GHOSTUNNEL("allow-cn", "allow_cn", NULL),
    GHOSTUNNEL("allow-ou", "allow_ou", NULL),
    GHOSTUNNEL("allow-dns", "allow_dns", NULL),
    GHOSTUNNEL("allow-dns-san", "allow_dns", NULL),
    GHOSTUNNEL("allow-uri", "allow_uri", NULL),
    GHOSTUNNEL("allow-uri-san", "allow_uri", NULL),
    GHOSTUNNEL("allow-all", NULL,
               "leave out every allow_ key: any peer that ca verifies is let in"),
    GHOSTUNNEL("override-server-name", "server_name", NULL),
    GHOSTUNNEL("metrics-address", "metrics_listen", "in [global]"),
    GHOSTUNNEL("status", "metrics_listen", "in [global]"),
    GHOSTUNNEL("connect-timeout", "handshake_timeout", NULL),
    GHOSTUNNEL("close-timeout", "shutdown_timeout", "in [global]"),
    GHOSTUNNEL("max-conn-lifetime", "max_connection_lifetime", NULL),
    GHOSTUNNEL("max-concurrent-conns", "max_connections", NULL),
    GHOSTUNNEL("proxy-protocol", "proxy_protocol", "proxy_protocol = v2"),
    GHOSTUNNEL("timed-reload", NULL, "send SIGHUP (systemctl reload ktlstund) to reload"),
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
