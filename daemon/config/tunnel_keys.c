#include "config/tunnel_keys.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

#include <openssl/ssl.h>

#include "core/text.h"
#include "config/key_source_keys.h"
#include "config/pin.h"
#include "core/limits.h"

#define MAX_CONNECTIONS_MAX 1000000
#define DEFAULT_HANDSHAKE_TIMEOUT 10
#define DEFAULT_VERIFY_CACHE 60
#define VERIFY_CACHE_MAX 3600   /* a verdict older than an hour is not worth the doubt */
#define DEFAULT_MAX_CONNECTIONS 10000
/* One host (or /64) may hold a few hundred connections and open 50 a second, 250 at
 * once: room for a client tunnel that gathers a whole host's applications, while
 * one host alone can neither fill max_connections nor keep the workers busy with
 * handshakes. */
#define DEFAULT_MAX_CONNECTIONS_PER_SOURCE 1024
#define DEFAULT_HANDSHAKE_RATE_PER_SOURCE 200
#define DEFAULT_HANDSHAKE_BURST_PER_SOURCE 400
#define REKEY_BYTES_MAX ((uint64_t)1 << 50)

static int set_mode(struct config_loader *ld, const struct ini_section *section,
                    const struct ini_key *key, struct tunnel_config *tunnel)
{
    if (strcasecmp(key->value, "server") == 0)
        tunnel->mode = TUNNEL_MODE_SERVER;
    else if (strcasecmp(key->value, "client") == 0)
        tunnel->mode = TUNNEL_MODE_CLIENT;
    else {
        config_loader_error(ld, key->line, section->name, key->name,
                            "'%s' is not a mode (use server or client)", key->value);
        return -1;
    }
    return 0;
}

static int set_address(struct config_loader *ld, const struct ini_section *section,
                       const struct ini_key *key, struct address *address)
{
    const char *reason;

    if (address_parse(key->value, address, &reason) < 0) {
        config_loader_error(ld, key->line, section->name, key->name, "%s", reason);
        return -1;
    }
    return 0;
}

static int set_listen(struct config_loader *ld, const struct ini_section *section,
                      const struct ini_key *key, struct tunnel_config *tunnel)
{
    return set_address(ld, section, key, &tunnel->listen);
}

static int set_target(struct config_loader *ld, const struct ini_section *section,
                      const struct ini_key *key, struct tunnel_config *tunnel)
{
    char error[512];

    if (set_address(ld, section, key, &tunnel->target) < 0)
        return -1;
    if (tunnel->target.kind == ADDRESS_SYSTEMD) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "systemd: sockets are for listen; a target is connected to");
        return -1;
    }
    if (tunnel->target.kind == ADDRESS_INET && strcmp(tunnel->target.host, "*") == 0) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "'*' (every address) only makes sense for listen");
        return -1;
    }
    if (address_resolve(&tunnel->target, &tunnel->target_addr, &tunnel->target_addr_len,
                        error, sizeof(error)) < 0) {
        config_loader_error(ld, key->line, section->name, key->name, "%s", error);
        return -1;
    }
    return 0;
}

static int set_ca(struct config_loader *ld, const struct ini_section *section,
                  const struct ini_key *key, struct tunnel_config *tunnel)
{
    return config_loader_file(ld, section, key, 1, &tunnel->ca, &tunnel->ca_is_directory);
}

static int set_crl(struct config_loader *ld, const struct ini_section *section,
                   const struct ini_key *key, struct tunnel_config *tunnel)
{
    return config_loader_file(ld, section, key, 0, &tunnel->crl, NULL);
}

static int set_allow_cn(struct config_loader *ld, const struct ini_section *section,
                        const struct ini_key *key, struct tunnel_config *tunnel)
{
    return config_loader_list(ld, section, key, &tunnel->allow_cn);
}

static int set_allow_ou(struct config_loader *ld, const struct ini_section *section,
                        const struct ini_key *key, struct tunnel_config *tunnel)
{
    return config_loader_list(ld, section, key, &tunnel->allow_ou);
}

static int set_allow_dns(struct config_loader *ld, const struct ini_section *section,
                         const struct ini_key *key, struct tunnel_config *tunnel)
{
    return config_loader_list(ld, section, key, &tunnel->allow_dns);
}

static int set_allow_uri(struct config_loader *ld, const struct ini_section *section,
                         const struct ini_key *key, struct tunnel_config *tunnel)
{
    return config_loader_list(ld, section, key, &tunnel->allow_uri);
}

static int set_allow_email(struct config_loader *ld, const struct ini_section *section,
                           const struct ini_key *key, struct tunnel_config *tunnel)
{
    return config_loader_list(ld, section, key, &tunnel->allow_email);
}

static int set_pin_sha256(struct config_loader *ld, const struct ini_section *section,
                          const struct ini_key *key, struct tunnel_config *tunnel)
{
    struct string_list *pins = &tunnel->pin_sha256;
    struct string_list raw = { 0 };
    int result = -1;

    string_list_clear(pins);
    int appended = string_list_split(&raw, key->value);
    if (appended < 0) {
        ld->out_of_memory = 1;
        goto out;
    }
    if (appended == 0) {
        config_loader_error(ld, key->line, section->name, key->name, "empty list");
        goto out;
    }
    result = 0;
    for (size_t i = 0; i < raw.count; i++) {
        unsigned char digest[PIN_SHA256_LEN];
        char hex[LIMIT_SHA256_HEX + 1];
        if (pin_decode(raw.items[i], digest) < 0) {
            config_loader_error(ld, key->line, section->name, key->name,
                                "'%s' is not a SHA-256 pin (64 hex digits, colons allowed, "
                                "or base64 of 32 bytes)", raw.items[i]);
            result = -1;
            continue;
        }
        /* One spelling (config.h): the lowercase hex identity.c writes. */
        text_hex_encode(digest, sizeof(digest), hex);
        if (string_list_append(pins, hex, LIMIT_SHA256_HEX) < 0) {
            ld->out_of_memory = 1;
            result = -1;
            goto out;
        }
    }

out:
    string_list_clear(&raw);
    return result;
}

static int set_server_name(struct config_loader *ld, const struct ini_section *section,
                           const struct ini_key *key, struct tunnel_config *tunnel)
{
    if (config_loader_require_value(ld, section, key) < 0)
        return -1;
    for (const char *cursor = key->value; *cursor != '\0'; cursor++) {
        if (isspace((unsigned char)*cursor) || *cursor == '/' || *cursor == ':') {
            config_loader_error(ld, key->line, section->name, key->name,
                                "'%s' is not a host name", key->value);
            return -1;
        }
    }
    return config_loader_copy_string(ld, section, key, &tunnel->server_name);
}

static int set_tls_min_version(struct config_loader *ld, const struct ini_section *section,
                               const struct ini_key *key, struct tunnel_config *tunnel)
{
    /* "1.2", and "TLSv1.2" / "TLS1.2" as nginx and stunnel users write it. */
    const char *version = key->value;
    if (strncasecmp(version, "tlsv", 4) == 0)
        version += 4;
    else if (strncasecmp(version, "tls", 3) == 0)
        version += 3;

    if (strcmp(version, "1.2") == 0) {
        tunnel->tls_min_version = TLS1_2_VERSION;
    } else if (strcmp(version, "1.3") == 0) {
        tunnel->tls_min_version = TLS1_3_VERSION;
    } else if (strcmp(version, "1") == 0 || strcmp(version, "1.0") == 0
               || strcmp(version, "1.1") == 0 || strncasecmp(key->value, "ssl", 3) == 0) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "older than TLS 1.2 is never allowed");
        return -1;
    } else {
        config_loader_error(ld, key->line, section->name, key->name,
                            "'%s' is not a TLS version (use 1.2 or 1.3)", key->value);
        return -1;
    }
    return 0;
}

static int set_ciphersuites(struct config_loader *ld, const struct ini_section *section,
                            const struct ini_key *key, struct tunnel_config *tunnel)
{
    return config_loader_copy_string(ld, section, key, &tunnel->ciphersuites);
}

static int set_ciphers(struct config_loader *ld, const struct ini_section *section,
                       const struct ini_key *key, struct tunnel_config *tunnel)
{
    return config_loader_copy_string(ld, section, key, &tunnel->ciphers);
}

static int set_groups(struct config_loader *ld, const struct ini_section *section,
                      const struct ini_key *key, struct tunnel_config *tunnel)
{
    return config_loader_copy_string(ld, section, key, &tunnel->groups);
}

static int set_ktls(struct config_loader *ld, const struct ini_section *section,
                    const struct ini_key *key, struct tunnel_config *tunnel)
{
    if (strcasecmp(key->value, "auto") == 0)
        tunnel->ktls = KTLS_POLICY_AUTO;
    else if (strcasecmp(key->value, "require") == 0)
        tunnel->ktls = KTLS_POLICY_REQUIRE;
    else if (strcasecmp(key->value, "off") == 0)
        tunnel->ktls = KTLS_POLICY_OFF;
    else {
        config_loader_error(ld, key->line, section->name, key->name,
                            "'%s' is not a kTLS policy (use auto, require or off)", key->value);
        return -1;
    }
    return 0;
}

static int set_handshake_timeout(struct config_loader *ld, const struct ini_section *section,
                                 const struct ini_key *key, struct tunnel_config *tunnel)
{
    /* Zero would let a silent peer hold a connection slot forever. */
    return config_loader_timeout(ld, section, key, 1, &tunnel->handshake_timeout);
}

static int set_idle_timeout(struct config_loader *ld, const struct ini_section *section,
                            const struct ini_key *key, struct tunnel_config *tunnel)
{
    return config_loader_timeout(ld, section, key, 0, &tunnel->idle_timeout);
}

static int set_max_connection_lifetime(struct config_loader *ld, const struct ini_section *section,
                                       const struct ini_key *key, struct tunnel_config *tunnel)
{
    return config_loader_timeout(ld, section, key, 0, &tunnel->max_connection_lifetime);
}

static int set_verify_cache(struct config_loader *ld, const struct ini_section *section,
                            const struct ini_key *key, struct tunnel_config *tunnel)
{
    if (config_loader_timeout(ld, section, key, 0, &tunnel->verify_cache) < 0)
        return -1;
    if (tunnel->verify_cache > VERIFY_CACHE_MAX) {
        config_loader_error(ld, key->line, section->name, key->name, "too large (at most %ds)",
                            VERIFY_CACHE_MAX);
        return -1;
    }
    return 0;
}

static int set_rekey_interval(struct config_loader *ld, const struct ini_section *section,
                              const struct ini_key *key, struct tunnel_config *tunnel)
{
    return config_loader_timeout(ld, section, key, 0, &tunnel->rekey_interval);
}

/* A size: a whole number of bytes, or one with K, M, G or T (powers of 1024, an
 * optional trailing "iB" or "B"). Returns 0, or -1 when TEXT is none or too large. */
static int parse_size(const char *text, uint64_t *bytes)
{
    static const char units[] = "KMGT";
    const char *end = text;
    uint64_t value = 0;
    unsigned shift = 0;
    if (!isdigit((unsigned char)*end))
        return -1;
    for (; isdigit((unsigned char)*end); end++) {
        if (value > (REKEY_BYTES_MAX - (uint64_t)(*end - '0')) / 10)
            return -1;
        value = value * 10 + (uint64_t)(*end - '0');
    }
    const char *unit = *end != '\0' ? strchr(units, toupper((unsigned char)*end)) : NULL;
    if (unit != NULL) {
        shift = 10 * (unsigned)(unit - units + 1);
        end++;
        if (strcasecmp(end, "iB") == 0 || strcasecmp(end, "B") == 0)
            end += strlen(end);
    } else if (strcasecmp(end, "B") == 0) {
        end++;
    }
    if (*end != '\0' || value > REKEY_BYTES_MAX >> shift)
        return -1;
    *bytes = value << shift;
    return 0;
}

static int set_rekey_bytes(struct config_loader *ld, const struct ini_section *section,
                           const struct ini_key *key, struct tunnel_config *tunnel)
{
    if (parse_size(key->value, &tunnel->rekey_bytes) < 0) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "'%s' is not a size (bytes, or a number with K, M, G or T; "
                            "0 = off; at most 1P)", key->value);
        return -1;
    }
    return 0;
}

/* A whole number from MIN to MAX_CONNECTIONS_MAX into *VALUE. */
static int set_count(struct config_loader *ld, const struct ini_section *section,
                     const struct ini_key *key, uint64_t min, uint64_t *value)
{
    if (config_loader_number(key->value, min, MAX_CONNECTIONS_MAX, value) < 0) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "'%s' is not a whole number from %llu to %d", key->value,
                            (unsigned long long)min, MAX_CONNECTIONS_MAX);
        return -1;
    }
    return 0;
}

static int set_max_connections(struct config_loader *ld, const struct ini_section *section,
                               const struct ini_key *key, struct tunnel_config *tunnel)
{
    return set_count(ld, section, key, 1, &tunnel->max_connections);
}

static int set_max_connections_per_source(struct config_loader *ld, const struct ini_section *section,
                                          const struct ini_key *key, struct tunnel_config *tunnel)
{
    return set_count(ld, section, key, 0, &tunnel->max_connections_per_source);
}

static int set_handshake_rate_per_source(struct config_loader *ld, const struct ini_section *section,
                                         const struct ini_key *key, struct tunnel_config *tunnel)
{
    return set_count(ld, section, key, 0, &tunnel->handshake_rate_per_source);
}

static int set_handshake_burst_per_source(struct config_loader *ld, const struct ini_section *section,
                                          const struct ini_key *key, struct tunnel_config *tunnel)
{
    return set_count(ld, section, key, 1, &tunnel->handshake_burst_per_source);
}

static const struct config_tunnel_key tunnel_keys[] = {
    { "mode", SCOPE_ANY, 1, set_mode },
    { "listen", SCOPE_ANY, 1, set_listen },
    { "target", SCOPE_ANY, 1, set_target },
    { "cert", SCOPE_ANY, 1, key_source_keys_set_cert },
    { "key", SCOPE_ANY, 1, key_source_keys_set_key },
    { "ca", SCOPE_ANY, 1, set_ca },
    { "crl", SCOPE_ANY, 0, set_crl },
    { "allow_cn", SCOPE_SERVER, 0, set_allow_cn },
    { "allow_ou", SCOPE_SERVER, 0, set_allow_ou },
    { "allow_dns", SCOPE_SERVER, 0, set_allow_dns },
    { "allow_uri", SCOPE_SERVER, 0, set_allow_uri },
    { "allow_email", SCOPE_SERVER, 0, set_allow_email },
    { "pin_sha256", SCOPE_ANY, 0, set_pin_sha256 },
    { "server_name", SCOPE_CLIENT, 0, set_server_name },
    { "tls_min_version", SCOPE_ANY, 0, set_tls_min_version },
    { "ciphersuites", SCOPE_ANY, 0, set_ciphersuites },
    { "ciphers", SCOPE_ANY, 0, set_ciphers },
    { "groups", SCOPE_ANY, 0, set_groups },
    { "ktls", SCOPE_ANY, 0, set_ktls },
    { "handshake_timeout", SCOPE_ANY, 0, set_handshake_timeout },
    { "idle_timeout", SCOPE_ANY, 0, set_idle_timeout },
    { "max_connection_lifetime", SCOPE_ANY, 0, set_max_connection_lifetime },
    { "rekey_interval", SCOPE_ANY, 0, set_rekey_interval },
    { "rekey_bytes", SCOPE_ANY, 0, set_rekey_bytes },
    { "verify_cache", SCOPE_ANY, 0, set_verify_cache },
    { "max_connections", SCOPE_ANY, 0, set_max_connections },
    { "max_connections_per_source", SCOPE_SERVER, 0, set_max_connections_per_source },
    { "handshake_rate_per_source", SCOPE_SERVER, 0, set_handshake_rate_per_source },
    { "handshake_burst_per_source", SCOPE_SERVER, 0, set_handshake_burst_per_source },
};

const struct config_tunnel_key *tunnel_keys_list(size_t *count)
{
    *count = sizeof(tunnel_keys) / sizeof(tunnel_keys[0]);
    return tunnel_keys;
}

void tunnel_keys_defaults(struct tunnel_config *tunnel)
{
    tunnel->mode = TUNNEL_MODE_SERVER;
    tunnel->tls_min_version = TLS1_2_VERSION;
    tunnel->ktls = KTLS_POLICY_AUTO;
    tunnel->handshake_timeout = DEFAULT_HANDSHAKE_TIMEOUT;
    tunnel->idle_timeout = 0;
    tunnel->max_connection_lifetime = 0;
    tunnel->rekey_interval = 0;
    tunnel->rekey_bytes = 0;
    tunnel->verify_cache = DEFAULT_VERIFY_CACHE;
    tunnel->max_connections = DEFAULT_MAX_CONNECTIONS;
    tunnel->max_connections_per_source = DEFAULT_MAX_CONNECTIONS_PER_SOURCE;
    tunnel->handshake_rate_per_source = DEFAULT_HANDSHAKE_RATE_PER_SOURCE;
    tunnel->handshake_burst_per_source = DEFAULT_HANDSHAKE_BURST_PER_SOURCE;
}
