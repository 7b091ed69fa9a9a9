/* config — reads ktlstun.ini (libiniparser) into plain data, validating every key.
 *
 * A config is immutable once loaded: a reload loads a new one and swaps it, and
 * connections keep the one they started with. */
#ifndef KTLSTUN_CONFIG_H
#define KTLSTUN_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "core/address.h"
#include "core/ip_prefix.h"
#include "core/log.h"

#define CONFIG_DEFAULT_PATH "/etc/ktlstun/ktlstun.ini"
/* The PAM helper's user when pam_user is not set (sysusers.d/ktlstun.conf makes it). */
#define CONFIG_DEFAULT_PAM_USER "ktlstun-pam"

enum tunnel_mode { TUNNEL_MODE_SERVER, TUNNEL_MODE_CLIENT };
/* What a tunnel carries: one TCP stream per connection, or IP packets (layer 3). */
enum tunnel_type { TUNNEL_TYPE_STREAM, TUNNEL_TYPE_NETWORK };
enum ktls_policy { KTLS_POLICY_AUTO, KTLS_POLICY_REQUIRE, KTLS_POLICY_OFF };
enum second_factor { SECOND_FACTOR_NONE, SECOND_FACTOR_PAM };
/* What a server tunnel sends its target ahead of the stream (README "PROXY protocol"). */
enum proxy_protocol { PROXY_PROTOCOL_NONE, PROXY_PROTOCOL_V2 };
/* Where a tunnel's private key lives: a file (PEM, encrypted PEM, or inside a PKCS#12
 * cert), a PKCS#11 token (key is a pkcs11: URI) or a TPM 2.0 (key is handle:0x81…, a
 * persistent handle). */
enum key_location { KEY_LOCATION_FILE, KEY_LOCATION_PKCS11, KEY_LOCATION_TPM };

struct user_map;

#include "core/string_list.h"

#define CONFIG_MAX_KEY_LINES 48

struct config_key_line {
    const char *key;               /* a static key name */
    int line;
};

/* A client identity's fixed tunnel address, or a network behind it (network hubs). */
struct network_client_entry {
    char *identity;                /* the certificate's CN, as written               */
    struct ip_prefix prefix;       /* an address (/32, /128) or a network            */
    int line;                      /* where it was written                           */
};

#define NETWORK_MAX_HUB_ADDRESSES 2    /* one per family */
#define NETWORK_MAX_PUSH_ROUTES 64     /* = TUNNEL_CONFIG_MAX_ROUTES                 */
#define NETWORK_DEFAULT_MTU 1400
#define NETWORK_DEFAULT_KEEPALIVE 10
#define NETWORK_DEFAULT_RECONNECT_MAX 30

/* type = network: the keys of a layer-3 tunnel (see README "Network tunnels"). */
struct network_config {
    /* Hub (server): its tunnel address per family, the length being the pool's
     * ("10.8.0.1/24"); the networks behind the hub that clients route through it. */
    size_t hub_address_count;
    struct ip_prefix hub_addresses[NETWORK_MAX_HUB_ADDRESSES];
    size_t push_route_count;
    struct ip_prefix push_routes[NETWORK_MAX_PUSH_ROUTES];
    size_t fixed_count;            /* client_address: fixed addresses by CN         */
    struct network_client_entry *fixed;
    size_t client_network_count;   /* client_networks: networks behind clients      */
    struct network_client_entry *client_networks;
    unsigned mtu;                  /* hub; default NETWORK_DEFAULT_MTU               */
    unsigned keepalive;            /* seconds, hub; default NETWORK_DEFAULT_KEEPALIVE */
    int mss_clamp;                 /* default yes                                   */
    /* Client: the device it keeps (default "ktl" + the tunnel's name, cut to fit)
     * and the longest wait between reconnects (seconds, doubling from 1). */
    char device[16];
    uint64_t reconnect_max;        /* default NETWORK_DEFAULT_RECONNECT_MAX          */
};

/* proxy = http://HOST:PORT: the HTTP proxy a client tunnel reaches its server through
 * with CONNECT (README "HTTP proxies"). */
struct proxy_config {
    int enabled;                   /* proxy set; default none                       */
    struct address address;        /* as written, without "http://"                 */
    struct sockaddr_storage addr;  /* resolved at load */
    socklen_t addr_len;
    char *credentials;             /* proxy_credentials: the file; NULL = none      */
    char *basic;                   /* base64 of its "user:password"; wiped at free  */
};

struct tunnel_config {
    char *name;                    /* section name as written */
    int line;                      /* line of the [section] header */
    const char *source;            /* the config file (struct config's path) */
    struct config_key_line key_lines[CONFIG_MAX_KEY_LINES];   /* where each key was set */
    size_t key_line_count;
    enum tunnel_mode mode;
    enum tunnel_type type;         /* default stream                                */
    struct network_config network; /* type = network                               */
    struct address listen;         /* unused (all zero) for a network client        */
    struct address target;         /* unused (all zero) for a network hub           */
    struct sockaddr_storage target_addr;   /* resolved at load */
    socklen_t target_addr_len;
    char *cert;                    /* absolute paths (relative ones are taken from */
    char *key;                     /* the config file's directory); a URI as written
                                      for a token key; NULL when the key is in
                                      a PKCS#12 cert                                 */
    enum key_location key_location;
    char *key_passphrase_file;     /* NULL = none; also a PKCS#11 token's PIN        */
    char *key_passphrase_credential; /* a name in $CREDENTIALS_DIRECTORY, or NULL    */
    char *pkcs11_module;           /* NULL = the pkcs11 engine's default (p11-kit)   */
    char *ca;                      /* file or directory                            */
    char *crl;                     /* NULL when unset                              */
    int ca_is_directory;
    struct string_list allow_cn, allow_ou, allow_dns, allow_uri, allow_email;
    struct string_list pin_sha256; /* lowercase hex, 64 chars each, colons removed  */
    char *server_name;             /* client mode; NULL = target host               */
    int tls_min_version;           /* TLS1_2_VERSION or TLS1_3_VERSION              */
    char *ciphersuites;            /* NULL = OpenSSL default                        */
    char *ciphers;                 /* NULL = OpenSSL default                        */
    char *groups;                  /* NULL = OpenSSL default                        */
    enum ktls_policy ktls;
    uint64_t handshake_timeout;    /* seconds, default 10                           */
    uint64_t idle_timeout;         /* seconds, 0 = none                             */
    uint64_t max_connection_lifetime; /* seconds, 0 = none                          */
    uint64_t rekey_interval;       /* seconds under one kTLS sending key, 0 = off    */
    uint64_t rekey_bytes;          /* bytes under one kTLS sending key, 0 = off      */
    uint64_t verify_cache;         /* seconds a verified chain is kept, 0 = off     */
    uint64_t max_connections;      /* default 10000                                 */
    /* Per source address (an IPv6 source is its /64); server tunnels; 0 = off. */
    uint64_t max_connections_per_source;  /* concurrent, default 1024               */
    uint64_t handshake_rate_per_source;   /* new connections a second, default 200  */
    uint64_t handshake_burst_per_source;  /* new connections at once, default 400   */
    /* Second factor (server mode, see README "Second factor"). */
    enum second_factor second_factor;  /* default none                              */
    char *pam_service;             /* default "ktlstun"                             */
    char *pam_confdir;             /* NULL = PAM's own /etc/pam.d (set for tests)   */
    uint64_t pam_timeout;          /* seconds a PAM step may take, default 30       */
    struct user_map *user_map;     /* set when second_factor = pam; default cn      */
    uint64_t grant_lifetime;       /* seconds, default 8h                           */
    int bind_grant_to_address;     /* default yes                                   */
    int browser_login;             /* login page for browsers without a grant, no   */
    uint64_t failure_window;       /* seconds, default 15m                          */
    uint64_t max_failures;         /* default 5                                     */
    uint64_t lockout;              /* seconds of the first lock, default 10m        */
    struct string_list alert_command;  /* argv; empty = none                        */
    uint64_t max_handshake_failures;   /* 0 = off; default 20 when second_factor = pam */
    enum proxy_protocol proxy_protocol;  /* server tunnels; default none             */
    struct proxy_config proxy;           /* client tunnels                           */
};

struct global_config {
    enum log_level log_level;      /* default info */
    char *state_dir;               /* default /var/lib/ktlstun */
    char *runtime_dir;             /* default /run/ktlstun */
    char *user;                    /* NULL = keep the starting user */
    char *group;                   /* NULL = the user's primary group */
    char *pam_user;                /* the PAM helper's; NULL = CONFIG_DEFAULT_PAM_USER */
    unsigned workers;              /* default: number of online CPUs */
    uint64_t shutdown_timeout;     /* seconds SIGTERM waits for connections, default 30 */
    int metrics_enabled;           /* metrics_listen set */
    struct address metrics_listen; /* Prometheus text; "PORT" alone means 127.0.0.1:PORT */
    uint64_t expiry_warning;       /* seconds before a cert/CRL expiry to warn, default 14d */
    int line;                      /* line of the [global] header, 0 when there is none */
    struct config_key_line key_lines[CONFIG_MAX_KEY_LINES];   /* where each key was set */
    size_t key_line_count;
    unsigned lock_table_size;      /* records of failed logins kept, default 4096 */
    char *state_store;             /* libpq connection string; NULL = file (state_dir) */
    char *gateway_name;            /* this gateway in the store; default the host name */
};

struct config {
    char *path;                    /* as given */
    struct global_config global;
    size_t tunnel_count;
    struct tunnel_config *tunnels;
};

/* Loads and validates PATH. Returns a config the caller frees with config_free(), or
 * NULL with every problem found written to *errors (malloc'd, one per line, each
 * "FILE:LINE: [section] key: reason"; the caller frees it). Unknown keys, unknown
 * sections' bad keys, bad values, missing required keys, duplicate sections or keys
 * and unreadable files (cert, key, ca, crl) are all errors. */
struct config *config_load(const char *path, char **errors);

/* Frees CONFIG (NULL is fine). */
void config_free(struct config *config);

/* Returns the line where TUNNEL set KEY, or the line of its section header when the
 * key was not written (for FILE:LINE in errors found after loading). */
int config_key_line(const struct tunnel_config *tunnel, const char *key);

/* Returns the line where [global] of CONFIG set KEY, else the line of its header, else
 * 0 (the file as a whole): FILE:LINE for errors about global keys found after loading. */
int config_global_key_line(const struct config *config, const char *key);

/* Returns 1 when TUNNEL has a listen address (every tunnel but a network client), else
 * 0: then tunnel->listen is unused. */
int config_tunnel_listens(const struct tunnel_config *tunnel);

/* Returns 1 when TUNNEL has a target (every tunnel but a network hub), else 0: then
 * tunnel->target and target_addr are unused. */
int config_tunnel_has_target(const struct tunnel_config *tunnel);

/* Returns "server"/"client", "auto"/"require"/"off". */
const char *config_mode_name(enum tunnel_mode mode);
const char *config_ktls_name(enum ktls_policy policy);

#endif
