#include "config/config.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "core/duration.h"
#include "config/ini_source.h"
#include "helper/lock_policy.h"
#include "config/user_map.h"

#define GLOBAL_SECTION "global"
#define TUNNEL_NAME_MAX 64
#define WORKERS_MAX 256
#define MAX_CONNECTIONS_MAX 1000000
/* Timeouts end up in milliseconds and timespecs: a year keeps every conversion exact. */
#define DURATION_MAX (365ULL * 24 * 3600)

#define DEFAULT_STATE_DIR "/var/lib/ktlstun"
#define DEFAULT_RUNTIME_DIR "/run/ktlstun"
#define DEFAULT_HANDSHAKE_TIMEOUT 10
#define DEFAULT_VERIFY_CACHE 60
#define VERIFY_CACHE_MAX 3600   /* a verdict older than an hour is not worth the doubt */
#define DEFAULT_SHUTDOWN_TIMEOUT 30
#define DEFAULT_EXPIRY_WARNING (14 * 86400)
#define DEFAULT_MAX_CONNECTIONS 10000
#define DEFAULT_PAM_SERVICE "ktlstun"
#define DEFAULT_USER_MAP "cn"
#define DEFAULT_PAM_TIMEOUT 30
#define DEFAULT_GRANT_LIFETIME (8 * 3600)
#define DEFAULT_FAILURE_WINDOW (15 * 60)
#define DEFAULT_MAX_FAILURES 5
#define DEFAULT_LOCKOUT (10 * 60)
#define DEFAULT_MAX_HANDSHAKE_FAILURES 20
#define PAM_SERVICE_MAX 64
#define ALERT_COMMAND_ARGS_MAX 32

struct config_error {
    int line;
    size_t sequence;     /* keeps errors of one line in the order they were found */
    char *text;
};

struct loader {
    const char *path;
    char *directory;     /* absolute directory of the config file, for relative paths */
    struct ini_source source;
    struct config *config;
    size_t error_count;
    struct config_error *errors;
    int out_of_memory;
};

/* ---------------------------------------------------------------- errors */

static void add_error(struct loader *ld, int line, const char *section, const char *key,
                      const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void add_error(struct loader *ld, int line, const char *section, const char *key,
                      const char *fmt, ...)
{
    char *reason = NULL;
    char *text = NULL;
    char where[32] = "";
    va_list args;

    va_start(args, fmt);
    int printed = vasprintf(&reason, fmt, args);
    va_end(args);
    if (printed < 0) {
        reason = NULL;
        goto fail;
    }
    if (line > 0)
        snprintf(where, sizeof(where), ":%d", line);
    if (asprintf(&text, "%s%s: %s%s%s%s%s%s", ld->path, where,
                 section ? "[" : "", section ? section : "", section ? "] " : "",
                 key ? key : "", key ? ": " : "", reason) < 0) {
        text = NULL;
        goto fail;
    }
    struct config_error *grown = realloc(ld->errors, (ld->error_count + 1) * sizeof(*grown));
    if (grown == NULL)
        goto fail;
    ld->errors = grown;
    ld->errors[ld->error_count] = (struct config_error){ line, ld->error_count, text };
    ld->error_count++;
    free(reason);
    return;

fail:
    ld->out_of_memory = 1;
    free(text);
    free(reason);
}

static int compare_errors(const void *a, const void *b)
{
    const struct config_error *left = a, *right = b;
    if (left->line != right->line)
        return left->line < right->line ? -1 : 1;
    return left->sequence < right->sequence ? -1 : left->sequence > right->sequence;
}

/* All errors, in file order, one per line. */
static char *join_errors(struct loader *ld)
{
    size_t total = 1;
    char *joined;

    if (ld->out_of_memory)
        add_error(ld, 0, NULL, NULL, "out of memory");
    qsort(ld->errors, ld->error_count, sizeof(*ld->errors), compare_errors);
    for (size_t i = 0; i < ld->error_count; i++)
        total += strlen(ld->errors[i].text) + 1;
    if ((joined = malloc(total)) == NULL)
        return NULL;
    size_t used = 0;
    for (size_t i = 0; i < ld->error_count; i++) {
        size_t len = strlen(ld->errors[i].text);
        memcpy(joined + used, ld->errors[i].text, len);
        used += len;
        joined[used++] = '\n';
    }
    joined[used] = '\0';
    return joined;
}

/* ---------------------------------------------------------------- value helpers */

static int parse_number(const char *text, uint64_t min, uint64_t max, uint64_t *value)
{
    uint64_t number = 0;

    if (*text == '\0')
        return -1;
    for (const char *cursor = text; *cursor != '\0'; cursor++) {
        if (!isdigit((unsigned char)*cursor))
            return -1;
        number = number * 10 + (uint64_t)(*cursor - '0');
        if (number > max)
            return -1;
    }
    if (number < min)
        return -1;
    *value = number;
    return 0;
}

static int parse_timeout(struct loader *ld, const struct ini_section *section,
                         const struct ini_key *key, uint64_t minimum, uint64_t *seconds)
{
    const char *reason;
    uint64_t parsed;

    if (duration_parse(key->value, &parsed, &reason) < 0) {
        add_error(ld, key->line, section->name, key->name, "%s", reason);
        return -1;
    }
    if (parsed < minimum) {
        add_error(ld, key->line, section->name, key->name, "must be at least %llus",
                  (unsigned long long)minimum);
        return -1;
    }
    if (parsed > DURATION_MAX) {
        add_error(ld, key->line, section->name, key->name, "too large (at most 365d)");
        return -1;
    }
    *seconds = parsed;
    return 0;
}

static int require_value(struct loader *ld, const struct ini_section *section,
                         const struct ini_key *key)
{
    if (key->value[0] != '\0')
        return 0;
    add_error(ld, key->line, section->name, key->name, "empty value");
    return -1;
}

static int copy_string(struct loader *ld, const struct ini_section *section,
                       const struct ini_key *key, char **field)
{
    if (require_value(ld, section, key) < 0)
        return -1;
    free(*field);
    if ((*field = strdup(key->value)) == NULL) {
        ld->out_of_memory = 1;
        return -1;
    }
    return 0;
}

/* Relative paths are taken from the config file's directory, so a config and its
 * certificates can move together. */
static char *absolute_path(struct loader *ld, const char *path)
{
    char *joined;

    if (path[0] == '/')
        joined = strdup(path);
    else if (asprintf(&joined, "%s/%s", ld->directory, path) < 0)
        joined = NULL;
    if (joined == NULL)
        ld->out_of_memory = 1;
    return joined;
}

/* Opens PATH to prove it can be read at load time, not at the first handshake; the TLS
 * module parses the PEM. O_NONBLOCK keeps a FIFO from hanging the load. */
static int check_readable(const char *path, int directory_allowed, int *is_directory,
                          int *error)
{
    struct stat info;
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);

    if (fd < 0) {
        *error = errno;
        return -1;
    }
    int result = -1;
    if (fstat(fd, &info) < 0) {
        *error = errno;
    } else if (S_ISDIR(info.st_mode)) {
        if (directory_allowed) {
            *is_directory = 1;
            result = 0;
        } else {
            *error = EISDIR;
        }
    } else if (!S_ISREG(info.st_mode)) {
        *error = EINVAL;
    } else {
        *is_directory = 0;
        result = 0;
    }
    close(fd);
    return result;
}

static int set_file(struct loader *ld, const struct ini_section *section,
                    const struct ini_key *key, int directory_allowed, char **field,
                    int *is_directory)
{
    int error = 0;
    int directory = 0;

    if (require_value(ld, section, key) < 0)
        return -1;
    char *path = absolute_path(ld, key->value);
    if (path == NULL)
        return -1;
    if (check_readable(path, directory_allowed, &directory, &error) < 0) {
        add_error(ld, key->line, section->name, key->name, "%s: %s", path,
                  error == EINVAL ? "not a regular file" : strerror(error));
        free(path);
        return -1;
    }
    free(*field);
    *field = path;
    if (is_directory != NULL)
        *is_directory = directory;
    return 0;
}

static int set_list(struct loader *ld, const struct ini_section *section,
                    const struct ini_key *key, struct string_list *list)
{
    string_list_clear(list);
    int appended = string_list_split(list, key->value);
    if (appended < 0) {
        ld->out_of_memory = 1;
        return -1;
    }
    if (appended == 0) {
        add_error(ld, key->line, section->name, key->name, "empty list");
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- pins */

static int base64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

/* Strict base64 of exactly 32 bytes: 43 symbols and an optional '=' (HPKP's pin-sha256
 * and curl's sha256// form). */
static int decode_base64_sha256(const char *text, unsigned char digest[32])
{
    size_t len = strlen(text);
    uint32_t bits = 0;
    int bit_count = 0;
    size_t out = 0;

    if (len == 44 && text[43] == '=')
        len = 43;
    if (len != 43)
        return -1;
    for (size_t i = 0; i < len; i++) {
        int value = base64_value(text[i]);
        if (value < 0)
            return -1;
        bits = (bits << 6) | (uint32_t)value;
        bit_count += 6;
        if (bit_count >= 8) {
            bit_count -= 8;
            digest[out++] = (unsigned char)(bits >> bit_count);
            bits &= (1u << bit_count) - 1;
        }
    }
    /* 43 symbols carry 258 bits: the last 2 must be zero in a canonical encoding. */
    if (out != 32 || bits != 0)
        return -1;
    return 0;
}

/* Accepts "AB:CD:…" or "abcd…" hex (64 digits) and base64; writes 64 lowercase hex. */
static int normalize_pin(const char *text, char hex[65])
{
    static const char digits[] = "0123456789abcdef";
    size_t used = 0;
    int hex_ok = 1;

    for (const char *cursor = text; *cursor != '\0' && hex_ok; cursor++) {
        if (*cursor == ':')
            continue;
        if (!isxdigit((unsigned char)*cursor) || used == 64)
            hex_ok = 0;
        else
            hex[used++] = (char)tolower((unsigned char)*cursor);
    }
    if (hex_ok && used == 64) {
        hex[64] = '\0';
        return 0;
    }

    unsigned char digest[32];
    const char *encoded = text;
    if (strncasecmp(encoded, "sha256//", 8) == 0)
        encoded += 8;
    if (decode_base64_sha256(encoded, digest) < 0)
        return -1;
    for (size_t i = 0; i < 32; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 15];
    }
    hex[64] = '\0';
    return 0;
}

static int set_pins(struct loader *ld, const struct ini_section *section,
                    const struct ini_key *key, struct string_list *pins)
{
    struct string_list raw = { 0 };
    int result = -1;

    string_list_clear(pins);
    int appended = string_list_split(&raw, key->value);
    if (appended < 0) {
        ld->out_of_memory = 1;
        goto out;
    }
    if (appended == 0) {
        add_error(ld, key->line, section->name, key->name, "empty list");
        goto out;
    }
    result = 0;
    for (size_t i = 0; i < raw.count; i++) {
        char hex[65];
        if (normalize_pin(raw.items[i], hex) < 0) {
            add_error(ld, key->line, section->name, key->name,
                      "'%s' is not a SHA-256 pin (64 hex digits, colons allowed, or base64 "
                      "of 32 bytes)", raw.items[i]);
            result = -1;
            continue;
        }
        if (string_list_append(pins, hex, 64) < 0) {
            ld->out_of_memory = 1;
            result = -1;
            goto out;
        }
    }

out:
    string_list_clear(&raw);
    return result;
}

/* ---------------------------------------------------------------- tunnel keys */

enum key_scope { SCOPE_ANY, SCOPE_SERVER, SCOPE_CLIENT };

struct tunnel_key {
    const char *name;
    enum key_scope scope;
    int required;
    int (*set)(struct loader *ld, const struct ini_section *section, const struct ini_key *key,
               struct tunnel_config *tunnel);
};

static int set_mode(struct loader *ld, const struct ini_section *section,
                    const struct ini_key *key, struct tunnel_config *tunnel)
{
    if (strcasecmp(key->value, "server") == 0)
        tunnel->mode = TUNNEL_MODE_SERVER;
    else if (strcasecmp(key->value, "client") == 0)
        tunnel->mode = TUNNEL_MODE_CLIENT;
    else {
        add_error(ld, key->line, section->name, key->name,
                  "'%s' is not a mode (use server or client)", key->value);
        return -1;
    }
    return 0;
}

static int set_address(struct loader *ld, const struct ini_section *section,
                       const struct ini_key *key, struct address *address)
{
    const char *reason;

    if (address_parse(key->value, address, &reason) < 0) {
        add_error(ld, key->line, section->name, key->name, "%s", reason);
        return -1;
    }
    return 0;
}

static int set_listen(struct loader *ld, const struct ini_section *section,
                      const struct ini_key *key, struct tunnel_config *tunnel)
{
    return set_address(ld, section, key, &tunnel->listen);
}

static int set_target(struct loader *ld, const struct ini_section *section,
                      const struct ini_key *key, struct tunnel_config *tunnel)
{
    char error[512];

    if (set_address(ld, section, key, &tunnel->target) < 0)
        return -1;
    if (tunnel->target.kind == ADDRESS_SYSTEMD) {
        add_error(ld, key->line, section->name, key->name,
                  "systemd: sockets are for listen; a target is connected to");
        return -1;
    }
    if (tunnel->target.kind == ADDRESS_INET && strcmp(tunnel->target.host, "*") == 0) {
        add_error(ld, key->line, section->name, key->name,
                  "'*' (every address) only makes sense for listen");
        return -1;
    }
    if (address_resolve(&tunnel->target, &tunnel->target_addr, &tunnel->target_addr_len,
                        error, sizeof(error)) < 0) {
        add_error(ld, key->line, section->name, key->name, "%s", error);
        return -1;
    }
    return 0;
}

static int set_cert(struct loader *ld, const struct ini_section *section,
                    const struct ini_key *key, struct tunnel_config *tunnel)
{
    return set_file(ld, section, key, 0, &tunnel->cert, NULL);
}

static int set_key(struct loader *ld, const struct ini_section *section,
                   const struct ini_key *key, struct tunnel_config *tunnel)
{
    return set_file(ld, section, key, 0, &tunnel->key, NULL);
}

static int set_ca(struct loader *ld, const struct ini_section *section,
                  const struct ini_key *key, struct tunnel_config *tunnel)
{
    return set_file(ld, section, key, 1, &tunnel->ca, &tunnel->ca_is_directory);
}

static int set_crl(struct loader *ld, const struct ini_section *section,
                   const struct ini_key *key, struct tunnel_config *tunnel)
{
    return set_file(ld, section, key, 0, &tunnel->crl, NULL);
}

static int set_allow_cn(struct loader *ld, const struct ini_section *section,
                        const struct ini_key *key, struct tunnel_config *tunnel)
{
    return set_list(ld, section, key, &tunnel->allow_cn);
}

static int set_allow_ou(struct loader *ld, const struct ini_section *section,
                        const struct ini_key *key, struct tunnel_config *tunnel)
{
    return set_list(ld, section, key, &tunnel->allow_ou);
}

static int set_allow_dns(struct loader *ld, const struct ini_section *section,
                         const struct ini_key *key, struct tunnel_config *tunnel)
{
    return set_list(ld, section, key, &tunnel->allow_dns);
}

static int set_allow_uri(struct loader *ld, const struct ini_section *section,
                         const struct ini_key *key, struct tunnel_config *tunnel)
{
    return set_list(ld, section, key, &tunnel->allow_uri);
}

static int set_allow_email(struct loader *ld, const struct ini_section *section,
                           const struct ini_key *key, struct tunnel_config *tunnel)
{
    return set_list(ld, section, key, &tunnel->allow_email);
}

static int set_pin_sha256(struct loader *ld, const struct ini_section *section,
                          const struct ini_key *key, struct tunnel_config *tunnel)
{
    return set_pins(ld, section, key, &tunnel->pin_sha256);
}

static int set_server_name(struct loader *ld, const struct ini_section *section,
                           const struct ini_key *key, struct tunnel_config *tunnel)
{
    if (require_value(ld, section, key) < 0)
        return -1;
    for (const char *cursor = key->value; *cursor != '\0'; cursor++) {
        if (isspace((unsigned char)*cursor) || *cursor == '/' || *cursor == ':') {
            add_error(ld, key->line, section->name, key->name,
                      "'%s' is not a host name", key->value);
            return -1;
        }
    }
    return copy_string(ld, section, key, &tunnel->server_name);
}

static int set_tls_min_version(struct loader *ld, const struct ini_section *section,
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
        add_error(ld, key->line, section->name, key->name,
                  "older than TLS 1.2 is never allowed");
        return -1;
    } else {
        add_error(ld, key->line, section->name, key->name,
                  "'%s' is not a TLS version (use 1.2 or 1.3)", key->value);
        return -1;
    }
    return 0;
}

static int set_ciphersuites(struct loader *ld, const struct ini_section *section,
                            const struct ini_key *key, struct tunnel_config *tunnel)
{
    return copy_string(ld, section, key, &tunnel->ciphersuites);
}

static int set_ciphers(struct loader *ld, const struct ini_section *section,
                       const struct ini_key *key, struct tunnel_config *tunnel)
{
    return copy_string(ld, section, key, &tunnel->ciphers);
}

static int set_groups(struct loader *ld, const struct ini_section *section,
                      const struct ini_key *key, struct tunnel_config *tunnel)
{
    return copy_string(ld, section, key, &tunnel->groups);
}

static int set_ktls(struct loader *ld, const struct ini_section *section,
                    const struct ini_key *key, struct tunnel_config *tunnel)
{
    if (strcasecmp(key->value, "auto") == 0)
        tunnel->ktls = KTLS_POLICY_AUTO;
    else if (strcasecmp(key->value, "require") == 0)
        tunnel->ktls = KTLS_POLICY_REQUIRE;
    else if (strcasecmp(key->value, "off") == 0)
        tunnel->ktls = KTLS_POLICY_OFF;
    else {
        add_error(ld, key->line, section->name, key->name,
                  "'%s' is not a kTLS policy (use auto, require or off)", key->value);
        return -1;
    }
    return 0;
}

static int set_handshake_timeout(struct loader *ld, const struct ini_section *section,
                                 const struct ini_key *key, struct tunnel_config *tunnel)
{
    /* Zero would let a silent peer hold a connection slot forever. */
    return parse_timeout(ld, section, key, 1, &tunnel->handshake_timeout);
}

static int set_idle_timeout(struct loader *ld, const struct ini_section *section,
                            const struct ini_key *key, struct tunnel_config *tunnel)
{
    return parse_timeout(ld, section, key, 0, &tunnel->idle_timeout);
}

static int set_verify_cache(struct loader *ld, const struct ini_section *section,
                            const struct ini_key *key, struct tunnel_config *tunnel)
{
    if (parse_timeout(ld, section, key, 0, &tunnel->verify_cache) < 0)
        return -1;
    if (tunnel->verify_cache > VERIFY_CACHE_MAX) {
        add_error(ld, key->line, section->name, key->name, "too large (at most %ds)", VERIFY_CACHE_MAX);
        return -1;
    }
    return 0;
}

static int set_max_connections(struct loader *ld, const struct ini_section *section,
                               const struct ini_key *key, struct tunnel_config *tunnel)
{
    if (parse_number(key->value, 1, MAX_CONNECTIONS_MAX, &tunnel->max_connections) < 0) {
        add_error(ld, key->line, section->name, key->name,
                  "'%s' is not a whole number from 1 to %d", key->value, MAX_CONNECTIONS_MAX);
        return -1;
    }
    return 0;
}

/* ---------------------------------------------------------------- second factor */

static int set_second_factor(struct loader *ld, const struct ini_section *section,
                             const struct ini_key *key, struct tunnel_config *tunnel)
{
    if (strcasecmp(key->value, "none") == 0)
        tunnel->second_factor = SECOND_FACTOR_NONE;
    else if (strcasecmp(key->value, "pam") == 0)
        tunnel->second_factor = SECOND_FACTOR_PAM;
    else {
        add_error(ld, key->line, section->name, key->name,
                  "'%s' is not a second factor (use none or pam)", key->value);
        return -1;
    }
    return 0;
}

/* A PAM service is a file name under the PAM configuration directory. */
static int set_pam_service(struct loader *ld, const struct ini_section *section,
                           const struct ini_key *key, struct tunnel_config *tunnel)
{
    size_t len = strlen(key->value);
    int ok = len > 0 && len <= PAM_SERVICE_MAX && key->value[0] != '.';
    for (const char *cursor = key->value; ok && *cursor != '\0'; cursor++)
        ok = isalnum((unsigned char)*cursor) || strchr("._-", *cursor) != NULL;
    if (!ok) {
        add_error(ld, key->line, section->name, key->name,
                  "'%s' is not a PAM service name (letters, digits, '.', '_' and '-')", key->value);
        return -1;
    }
    return copy_string(ld, section, key, &tunnel->pam_service);
}

static int set_pam_confdir(struct loader *ld, const struct ini_section *section,
                           const struct ini_key *key, struct tunnel_config *tunnel)
{
    int is_directory = 0;
    if (set_file(ld, section, key, 1, &tunnel->pam_confdir, &is_directory) < 0)
        return -1;
    if (!is_directory) {
        add_error(ld, key->line, section->name, key->name, "%s is not a directory",
                  tunnel->pam_confdir);
        return -1;
    }
    return 0;
}

static int set_pam_timeout(struct loader *ld, const struct ini_section *section,
                           const struct ini_key *key, struct tunnel_config *tunnel)
{
    return parse_timeout(ld, section, key, 1, &tunnel->pam_timeout);
}

static int set_user_map(struct loader *ld, const struct ini_section *section,
                        const struct ini_key *key, struct tunnel_config *tunnel)
{
    char error[600];
    if (require_value(ld, section, key) < 0)
        return -1;
    struct user_map *map = user_map_parse(key->value, ld->directory, error, sizeof(error));
    if (map == NULL) {
        add_error(ld, key->line, section->name, key->name, "%s", error);
        return -1;
    }
    user_map_free(tunnel->user_map);
    tunnel->user_map = map;
    return 0;
}

static int set_grant_lifetime(struct loader *ld, const struct ini_section *section,
                              const struct ini_key *key, struct tunnel_config *tunnel)
{
    return parse_timeout(ld, section, key, 1, &tunnel->grant_lifetime);
}

static int set_bind_grant_to_address(struct loader *ld, const struct ini_section *section,
                                     const struct ini_key *key, struct tunnel_config *tunnel)
{
    static const char *const yes[] = { "yes", "true", "on", "1" };
    static const char *const no[] = { "no", "false", "off", "0" };
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (strcasecmp(key->value, yes[i]) == 0) {
            tunnel->bind_grant_to_address = 1;
            return 0;
        }
        if (strcasecmp(key->value, no[i]) == 0) {
            tunnel->bind_grant_to_address = 0;
            return 0;
        }
    }
    add_error(ld, key->line, section->name, key->name, "'%s' is not yes or no", key->value);
    return -1;
}

static int set_failure_window(struct loader *ld, const struct ini_section *section,
                              const struct ini_key *key, struct tunnel_config *tunnel)
{
    return parse_timeout(ld, section, key, 1, &tunnel->failure_window);
}

static int set_max_failures(struct loader *ld, const struct ini_section *section,
                            const struct ini_key *key, struct tunnel_config *tunnel)
{
    if (parse_number(key->value, 1, LOCK_POLICY_MAX_FAILURES_LIMIT, &tunnel->max_failures) < 0) {
        add_error(ld, key->line, section->name, key->name,
                  "'%s' is not a whole number from 1 to %d", key->value,
                  LOCK_POLICY_MAX_FAILURES_LIMIT);
        return -1;
    }
    return 0;
}

static int set_lockout(struct loader *ld, const struct ini_section *section,
                       const struct ini_key *key, struct tunnel_config *tunnel)
{
    if (parse_timeout(ld, section, key, 1, &tunnel->lockout) < 0)
        return -1;
    if (tunnel->lockout > LOCK_POLICY_MAX_DURATION) {
        add_error(ld, key->line, section->name, key->name,
                  "too long (a lock lasts at most 24h, doubling included)");
        return -1;
    }
    return 0;
}

/* Words separated by blanks; "double quotes" keep blanks inside a word. No shell. */
static int split_command(const char *text, struct string_list *argv)
{
    const char *cursor = text;
    for (;;) {
        while (*cursor == ' ' || *cursor == '\t')
            cursor++;
        if (*cursor == '\0')
            return 0;
        char word[4096];
        size_t used = 0;
        int quoted = 0;
        while (*cursor != '\0' && (quoted || (*cursor != ' ' && *cursor != '\t'))) {
            if (*cursor == '"') {
                quoted = !quoted;
            } else if (used + 1 < sizeof(word)) {
                word[used++] = *cursor;
            } else {
                return -1;
            }
            cursor++;
        }
        if (quoted || string_list_append(argv, word, used) < 0)
            return -1;
    }
}

static int set_alert_command(struct loader *ld, const struct ini_section *section,
                             const struct ini_key *key, struct tunnel_config *tunnel)
{
    string_list_clear(&tunnel->alert_command);
    if (require_value(ld, section, key) < 0)
        return -1;
    if (split_command(key->value, &tunnel->alert_command) < 0 ||
        tunnel->alert_command.count == 0 || tunnel->alert_command.count > ALERT_COMMAND_ARGS_MAX) {
        string_list_clear(&tunnel->alert_command);
        add_error(ld, key->line, section->name, key->name,
                  "cannot split '%s' into a program and its arguments (unbalanced quote?)",
                  key->value);
        return -1;
    }
    const char *program = tunnel->alert_command.items[0];
    if (program[0] != '/' || access(program, X_OK) < 0) {
        add_error(ld, key->line, section->name, key->name,
                  "%s: %s (give the absolute path of an executable; it runs without a shell)",
                  program, program[0] != '/' ? "not an absolute path" : strerror(errno));
        string_list_clear(&tunnel->alert_command);
        return -1;
    }
    return 0;
}

static int set_max_handshake_failures(struct loader *ld, const struct ini_section *section,
                                      const struct ini_key *key, struct tunnel_config *tunnel)
{
    if (parse_number(key->value, 0, LOCK_POLICY_MAX_FAILURES_LIMIT,
                     &tunnel->max_handshake_failures) < 0) {
        add_error(ld, key->line, section->name, key->name,
                  "'%s' is not a whole number from 0 (off) to %d", key->value,
                  LOCK_POLICY_MAX_FAILURES_LIMIT);
        return -1;
    }
    return 0;
}

/* Keys that mean nothing unless a login is asked for. */
static const char *const pam_only_keys[] = {
    "pam_service", "pam_confdir", "pam_timeout", "user_map", "grant_lifetime",
    "bind_grant_to_address", "max_failures",
};

/* Defaults that depend on second_factor, and keys that need it. */
static int finish_second_factor(struct loader *ld, const struct ini_section *section,
                                struct tunnel_config *tunnel)
{
    char error[600];
    int result = 0;
    if (tunnel->second_factor != SECOND_FACTOR_PAM) {
        for (size_t i = 0; i < sizeof(pam_only_keys) / sizeof(pam_only_keys[0]); i++) {
            const struct ini_key *key = ini_source_find_key(section, pam_only_keys[i]);
            if (key != NULL && tunnel->mode == TUNNEL_MODE_SERVER) {
                add_error(ld, key->line, section->name, key->name,
                          "only meaningful with second_factor = pam");
                result = -1;
            }
        }
        return result;
    }
    if (tunnel->pam_service == NULL && (tunnel->pam_service = strdup(DEFAULT_PAM_SERVICE)) == NULL)
        ld->out_of_memory = 1;
    if (tunnel->user_map == NULL &&
        (tunnel->user_map = user_map_parse(DEFAULT_USER_MAP, NULL, error, sizeof(error))) == NULL)
        ld->out_of_memory = 1;
    if (ini_source_find_key(section, "max_handshake_failures") == NULL)
        tunnel->max_handshake_failures = DEFAULT_MAX_HANDSHAKE_FAILURES;
    return ld->out_of_memory ? -1 : 0;
}

static const struct tunnel_key tunnel_keys[] = {
    { "mode", SCOPE_ANY, 1, set_mode },
    { "listen", SCOPE_ANY, 1, set_listen },
    { "target", SCOPE_ANY, 1, set_target },
    { "cert", SCOPE_ANY, 1, set_cert },
    { "key", SCOPE_ANY, 1, set_key },
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
    { "verify_cache", SCOPE_ANY, 0, set_verify_cache },
    { "max_connections", SCOPE_ANY, 0, set_max_connections },
    { "second_factor", SCOPE_SERVER, 0, set_second_factor },
    { "pam_service", SCOPE_SERVER, 0, set_pam_service },
    { "pam_confdir", SCOPE_SERVER, 0, set_pam_confdir },
    { "pam_timeout", SCOPE_SERVER, 0, set_pam_timeout },
    { "user_map", SCOPE_SERVER, 0, set_user_map },
    { "grant_lifetime", SCOPE_SERVER, 0, set_grant_lifetime },
    { "bind_grant_to_address", SCOPE_SERVER, 0, set_bind_grant_to_address },
    { "failure_window", SCOPE_SERVER, 0, set_failure_window },
    { "max_failures", SCOPE_SERVER, 0, set_max_failures },
    { "lockout", SCOPE_SERVER, 0, set_lockout },
    { "alert_command", SCOPE_SERVER, 0, set_alert_command },
    { "max_handshake_failures", SCOPE_SERVER, 0, set_max_handshake_failures },
};

#define TUNNEL_KEY_COUNT (sizeof(tunnel_keys) / sizeof(tunnel_keys[0]))

/* ---------------------------------------------------------------- global keys */

struct global_key {
    const char *name;
    int (*set)(struct loader *ld, const struct ini_section *section, const struct ini_key *key,
               struct global_config *global);
};

static int set_log_level(struct loader *ld, const struct ini_section *section,
                         const struct ini_key *key, struct global_config *global)
{
    if (log_level_parse(key->value, &global->log_level) < 0) {
        add_error(ld, key->line, section->name, key->name,
                  "'%s' is not a level (use error, warning, notice, info or debug)", key->value);
        return -1;
    }
    return 0;
}

static int set_directory(struct loader *ld, const struct ini_section *section,
                         const struct ini_key *key, char **field)
{
    if (require_value(ld, section, key) < 0)
        return -1;
    if (key->value[0] != '/') {
        add_error(ld, key->line, section->name, key->name, "'%s' is not an absolute path",
                  key->value);
        return -1;
    }
    return copy_string(ld, section, key, field);
}

static int set_state_dir(struct loader *ld, const struct ini_section *section,
                         const struct ini_key *key, struct global_config *global)
{
    return set_directory(ld, section, key, &global->state_dir);
}

static int set_runtime_dir(struct loader *ld, const struct ini_section *section,
                           const struct ini_key *key, struct global_config *global)
{
    return set_directory(ld, section, key, &global->runtime_dir);
}

/* getpwnam(3): these errno values, or none, all mean "not found". */
static int lookup_missed(int error)
{
    return error == 0 || error == ENOENT || error == ESRCH || error == EBADF || error == EPERM;
}

/* A typo in user= would otherwise surface only after binding, as a failed drop. */
static int set_user(struct loader *ld, const struct ini_section *section,
                    const struct ini_key *key, struct global_config *global)
{
    if (require_value(ld, section, key) < 0)
        return -1;
    errno = 0;
    if (getpwnam(key->value) == NULL) {
        int error = errno;
        if (lookup_missed(error))
            add_error(ld, key->line, section->name, key->name, "no such user '%s'", key->value);
        else
            add_error(ld, key->line, section->name, key->name, "cannot look up user '%s': %s",
                      key->value, strerror(error));
        return -1;
    }
    return copy_string(ld, section, key, &global->user);
}

static int set_group(struct loader *ld, const struct ini_section *section,
                     const struct ini_key *key, struct global_config *global)
{
    if (require_value(ld, section, key) < 0)
        return -1;
    errno = 0;
    if (getgrnam(key->value) == NULL) {
        int error = errno;
        if (lookup_missed(error))
            add_error(ld, key->line, section->name, key->name, "no such group '%s'", key->value);
        else
            add_error(ld, key->line, section->name, key->name, "cannot look up group '%s': %s",
                      key->value, strerror(error));
        return -1;
    }
    return copy_string(ld, section, key, &global->group);
}

static int set_workers(struct loader *ld, const struct ini_section *section,
                       const struct ini_key *key, struct global_config *global)
{
    uint64_t workers;

    if (parse_number(key->value, 0, WORKERS_MAX, &workers) < 0) {
        add_error(ld, key->line, section->name, key->name,
                  "'%s' is not a whole number from 0 (one per CPU) to %d", key->value,
                  WORKERS_MAX);
        return -1;
    }
    global->workers = (unsigned)workers;
    return 0;
}

static int set_shutdown_timeout(struct loader *ld, const struct ini_section *section,
                                const struct ini_key *key, struct global_config *global)
{
    return parse_timeout(ld, section, key, 0, &global->shutdown_timeout);
}

/* A bare port is the safe default: metrics stay on loopback unless an address says
 * otherwise. */
static int set_metrics_listen(struct loader *ld, const struct ini_section *section,
                              const struct ini_key *key, struct global_config *global)
{
    char with_host[300];
    const char *text = key->value;
    const char *reason;
    if (text[0] != '\0' && strspn(text, "0123456789") == strlen(text)) {
        snprintf(with_host, sizeof(with_host), "127.0.0.1:%s", text);
        text = with_host;
    }
    if (address_parse(text, &global->metrics_listen, &reason) < 0) {
        add_error(ld, key->line, section->name, key->name, "%s", reason);
        return -1;
    }
    if (global->metrics_listen.kind == ADDRESS_SYSTEMD) {
        add_error(ld, key->line, section->name, key->name,
                  "use an address or a port (systemd: sockets are for tunnels)");
        return -1;
    }
    global->metrics_enabled = 1;
    return 0;
}

static int set_expiry_warning(struct loader *ld, const struct ini_section *section,
                              const struct ini_key *key, struct global_config *global)
{
    return parse_timeout(ld, section, key, 0, &global->expiry_warning);
}

static const struct global_key global_keys[] = {
    { "log_level", set_log_level },
    { "state_dir", set_state_dir },
    { "runtime_dir", set_runtime_dir },
    { "user", set_user },
    { "group", set_group },
    { "workers", set_workers },
    { "shutdown_timeout", set_shutdown_timeout },
    { "metrics_listen", set_metrics_listen },
    { "expiry_warning", set_expiry_warning },
};

#define GLOBAL_KEY_COUNT (sizeof(global_keys) / sizeof(global_keys[0]))

static const struct tunnel_key *find_tunnel_key(const char *name)
{
    for (size_t i = 0; i < TUNNEL_KEY_COUNT; i++)
        if (strcmp(tunnel_keys[i].name, name) == 0)
            return &tunnel_keys[i];
    return NULL;
}

static const struct global_key *find_global_key(const char *name)
{
    for (size_t i = 0; i < GLOBAL_KEY_COUNT; i++)
        if (strcmp(global_keys[i].name, name) == 0)
            return &global_keys[i];
    return NULL;
}

/* ---------------------------------------------------------------- sections */

static int is_global_section(const struct ini_section *section)
{
    return strcasecmp(section->name, GLOBAL_SECTION) == 0;
}

static int parse_global(struct loader *ld, const struct ini_section *section)
{
    struct global_config *global = &ld->config->global;
    int result = 0;

    for (size_t i = 0; i < section->key_count; i++) {
        const struct ini_key *key = &section->keys[i];
        const struct global_key *known = find_global_key(key->name);
        if (known == NULL) {
            add_error(ld, key->line, section->name, key->name, "%s",
                      find_tunnel_key(key->name) != NULL
                          ? "unknown key in [global] (it belongs in a tunnel section)"
                          : "unknown key");
            result = -1;
        } else if (key->value != NULL && known->set(ld, section, key, global) < 0) {
            result = -1;
        }
    }
    return result;
}

static int valid_tunnel_name(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > TUNNEL_NAME_MAX)
        return 0;
    for (const char *cursor = name; *cursor != '\0'; cursor++) {
        unsigned char c = (unsigned char)*cursor;
        if (!isalnum(c) && c != '-' && c != '_' && c != '.')
            return 0;
    }
    return 1;
}

static void set_tunnel_defaults(struct tunnel_config *tunnel)
{
    tunnel->mode = TUNNEL_MODE_SERVER;
    tunnel->tls_min_version = TLS1_2_VERSION;
    tunnel->ktls = KTLS_POLICY_AUTO;
    tunnel->handshake_timeout = DEFAULT_HANDSHAKE_TIMEOUT;
    tunnel->idle_timeout = 0;
    tunnel->verify_cache = DEFAULT_VERIFY_CACHE;
    tunnel->max_connections = DEFAULT_MAX_CONNECTIONS;
    tunnel->second_factor = SECOND_FACTOR_NONE;
    tunnel->pam_timeout = DEFAULT_PAM_TIMEOUT;
    tunnel->grant_lifetime = DEFAULT_GRANT_LIFETIME;
    tunnel->failure_window = DEFAULT_FAILURE_WINDOW;
    tunnel->max_failures = DEFAULT_MAX_FAILURES;
    tunnel->lockout = DEFAULT_LOCKOUT;
    tunnel->max_handshake_failures = 0;
}

int config_key_line(const struct tunnel_config *tunnel, const char *key)
{
    for (size_t i = 0; i < tunnel->key_line_count; i++)
        if (strcmp(tunnel->key_lines[i].key, key) == 0)
            return tunnel->key_lines[i].line;
    return tunnel->line;
}

static int parse_tunnel(struct loader *ld, const struct ini_section *section,
                        struct tunnel_config *tunnel)
{
    int result = 0;
    int mode_known = 0;
    int valid[TUNNEL_KEY_COUNT] = { 0 };

    set_tunnel_defaults(tunnel);
    tunnel->line = section->line;
    if ((tunnel->name = strdup(section->name)) == NULL) {
        ld->out_of_memory = 1;
        return -1;
    }
    if (!valid_tunnel_name(section->name)) {
        add_error(ld, section->line, section->name, NULL,
                  "invalid tunnel name (use up to %d letters, digits, '-', '_' or '.')",
                  TUNNEL_NAME_MAX);
        result = -1;
    }

    /* The mode decides which keys are allowed, wherever it is written. */
    const struct ini_key *mode = ini_source_find_key(section, "mode");
    if (mode != NULL && mode->value != NULL) {
        if (set_mode(ld, section, mode, tunnel) == 0)
            mode_known = 1;
        else
            result = -1;
    }

    for (size_t i = 0; i < section->key_count; i++) {
        const struct ini_key *key = &section->keys[i];
        const struct tunnel_key *known = find_tunnel_key(key->name);
        if (known == NULL) {
            add_error(ld, key->line, section->name, key->name, "%s",
                      find_global_key(key->name) != NULL
                          ? "unknown key in a tunnel section (it belongs in [global])"
                          : "unknown key");
            result = -1;
            continue;
        }
        if (known->set == set_mode || key->value == NULL)
            continue;
        enum tunnel_mode needed = known->scope == SCOPE_SERVER ? TUNNEL_MODE_SERVER
                                                               : TUNNEL_MODE_CLIENT;
        if (known->scope != SCOPE_ANY && mode_known && tunnel->mode != needed) {
            add_error(ld, key->line, section->name, key->name,
                      "only valid in %s mode (this tunnel has mode = %s)",
                      config_mode_name(needed), config_mode_name(tunnel->mode));
            result = -1;
            continue;
        }
        if (known->set(ld, section, key, tunnel) < 0) {
            result = -1;
        } else {
            valid[known - tunnel_keys] = 1;
            if (tunnel->key_line_count < CONFIG_MAX_KEY_LINES)
                tunnel->key_lines[tunnel->key_line_count++] =
                    (struct config_key_line){ known->name, key->line };
        }
    }

    for (size_t i = 0; i < TUNNEL_KEY_COUNT; i++) {
        if (tunnel_keys[i].required && ini_source_find_key(section, tunnel_keys[i].name) == NULL) {
            add_error(ld, section->line, section->name, tunnel_keys[i].name,
                      "missing (required in every tunnel)");
            result = -1;
        }
    }

    /* SNI and certificate name checks need a host name; a socket path has none. */
    const struct tunnel_key *target = find_tunnel_key("target");
    if (mode_known && tunnel->mode == TUNNEL_MODE_CLIENT && valid[target - tunnel_keys]
        && tunnel->target.kind == ADDRESS_UNIX && tunnel->server_name == NULL
        && ini_source_find_key(section, "server_name") == NULL) {
        add_error(ld, section->line, section->name, "server_name",
                  "missing (required in client mode when target is a unix socket)");
        result = -1;
    }
    if (finish_second_factor(ld, section, tunnel) < 0)
        result = -1;
    return result;
}

/* ---------------------------------------------------------------- listen clashes */

struct bound_listen {
    const struct tunnel_config *tunnel;
    int line;
    struct sockaddr_storage addr;
    socklen_t len;
};

static int is_any_address(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
    return 0;
}

static int same_address(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return 0;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr
               == ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
    return strcmp(((const struct sockaddr_un *)a)->sun_path,
                  ((const struct sockaddr_un *)b)->sun_path) == 0;
}

static uint16_t port_of(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_port;
    if (ss->ss_family == AF_INET6)
        return ((const struct sockaddr_in6 *)ss)->sin6_port;
    return 0;
}

/* Two sockets that would share clients. An IPv6 wildcard also takes IPv4 connections
 * (net.ipv6.bindv6only = 0, Linux's default), so it overlaps IPv4 addresses too. */
static int listens_overlap(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family == AF_UNIX || b->ss_family == AF_UNIX)
        return same_address(a, b);
    if (port_of(a) != port_of(b))
        return 0;
    if (a->ss_family == b->ss_family)
        return same_address(a, b) || is_any_address(a) || is_any_address(b);
    return is_any_address(a->ss_family == AF_INET6 ? a : b);
}

/* Two tunnels cannot share one socket systemd passed. */
static void check_systemd_name_clash(struct loader *ld, const struct tunnel_config *tunnel, int line)
{
    for (size_t i = 0; i < ld->config->tunnel_count; i++) {
        const struct tunnel_config *other = &ld->config->tunnels[i];
        if (other == tunnel)
            return;
        if (other->listen.kind == ADDRESS_SYSTEMD &&
            strcmp(other->listen.fd_name, tunnel->listen.fd_name) == 0) {
            add_error(ld, line, tunnel->name, "listen",
                      "systemd:%s is already the listen socket of [%s]",
                      tunnel->listen.fd_name, other->name);
            return;
        }
    }
}

/* Also refuses a wildcard and a specific address on one port: with SO_REUSEPORT both
 * binds would succeed and the kernel would split one port's clients between tunnels. */
static void check_listen_clashes(struct loader *ld, const struct ini_source *source)
{
    struct bound_listen *bound = calloc(ld->config->tunnel_count + 1, sizeof(*bound));
    size_t bound_count = 0;
    char error[512];

    if (bound == NULL) {
        ld->out_of_memory = 1;
        return;
    }
    for (size_t t = 0; t < ld->config->tunnel_count; t++) {
        const struct tunnel_config *tunnel = &ld->config->tunnels[t];
        const struct ini_section *section = NULL;
        for (size_t s = 0; s < source->section_count && section == NULL; s++)
            if (strcmp(source->sections[s].name, tunnel->name) == 0)
                section = &source->sections[s];
        const struct ini_key *key = section ? ini_source_find_key(section, "listen") : NULL;
        /* address_parse never leaves an empty host: empty means listen had an error. */
        if (key == NULL || (tunnel->listen.kind == ADDRESS_INET && tunnel->listen.host[0] == '\0'))
            continue;
        if (tunnel->listen.kind == ADDRESS_SYSTEMD) {
            check_systemd_name_clash(ld, tunnel, key->line);
            continue;
        }

        struct bound_listen *mine = &bound[bound_count];
        mine->tunnel = tunnel;
        mine->line = key->line;
        if (address_resolve(&tunnel->listen, &mine->addr, &mine->len, error, sizeof(error)) < 0) {
            add_error(ld, key->line, tunnel->name, "listen", "%s", error);
            continue;
        }
        for (size_t i = 0; i < bound_count; i++) {
            const struct bound_listen *other = &bound[i];
            if (!listens_overlap(&other->addr, &mine->addr))
                continue;
            char shown[300], other_shown[300];
            address_format(&tunnel->listen, shown, sizeof(shown));
            address_format(&other->tunnel->listen, other_shown, sizeof(other_shown));
            if (same_address(&other->addr, &mine->addr))
                add_error(ld, key->line, tunnel->name, "listen",
                          "%s is already the listen address of [%s] (line %d)", shown,
                          other->tunnel->name, other->line);
            else
                add_error(ld, key->line, tunnel->name, "listen",
                          "%s overlaps %s, the listen address of [%s] (line %d)", shown,
                          other_shown, other->tunnel->name, other->line);
        }
        bound_count++;
    }
    free(bound);
}

/* ---------------------------------------------------------------- load */

static char *config_directory(const char *path)
{
    char *copy = strdup(path);
    char *resolved = NULL;

    if (copy != NULL)
        resolved = realpath(dirname(copy), NULL);
    free(copy);
    return resolved;
}

static void set_global_defaults(struct loader *ld)
{
    struct global_config *global = &ld->config->global;

    global->log_level = LOG_LEVEL_INFO;
    global->workers = 0;
    global->shutdown_timeout = DEFAULT_SHUTDOWN_TIMEOUT;
    global->expiry_warning = DEFAULT_EXPIRY_WARNING;
    global->state_dir = strdup(DEFAULT_STATE_DIR);
    global->runtime_dir = strdup(DEFAULT_RUNTIME_DIR);
    if (global->state_dir == NULL || global->runtime_dir == NULL)
        ld->out_of_memory = 1;
}

static unsigned online_cpus(void)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);

    if (cpus < 1)
        return 1;
    return cpus > WORKERS_MAX ? WORKERS_MAX : (unsigned)cpus;
}

static void free_loader(struct loader *ld)
{
    for (size_t i = 0; i < ld->error_count; i++)
        free(ld->errors[i].text);
    free(ld->errors);
    ini_source_free(&ld->source);
    free(ld->directory);
}

struct config *config_load(const char *path, char **errors)
{
    struct loader ld = { .path = path };
    struct config *config = NULL;

    *errors = NULL;
    if ((config = calloc(1, sizeof(*config))) == NULL || (config->path = strdup(path)) == NULL) {
        ld.out_of_memory = 1;
        goto out;
    }
    ld.config = config;
    set_global_defaults(&ld);

    if (ini_source_load(path, &ld.source) < 0) {
        add_error(&ld, 0, NULL, NULL, "%s", strerror(errno));
        goto out;
    }
    if ((ld.directory = config_directory(path)) == NULL) {
        add_error(&ld, 0, NULL, NULL, "cannot find its directory: %s", strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < ld.source.problem_count; i++) {
        const struct ini_problem *problem = &ld.source.problems[i];
        add_error(&ld, problem->line, problem->section, problem->key, "%s", problem->reason);
    }

    size_t tunnel_sections = 0;
    for (size_t s = 0; s < ld.source.section_count; s++)
        if (!is_global_section(&ld.source.sections[s]))
            tunnel_sections++;
    if (tunnel_sections > 0
        && (config->tunnels = calloc(tunnel_sections, sizeof(*config->tunnels))) == NULL) {
        ld.out_of_memory = 1;
        goto out;
    }

    for (size_t s = 0; s < ld.source.section_count; s++) {
        const struct ini_section *section = &ld.source.sections[s];
        if (is_global_section(section)) {
            parse_global(&ld, section);
        } else {
            config->tunnels[config->tunnel_count].source = config->path;
            parse_tunnel(&ld, section, &config->tunnels[config->tunnel_count]);
            config->tunnel_count++;
        }
    }
    if (tunnel_sections == 0)
        add_error(&ld, 0, NULL, NULL,
                  "no tunnel section (add one, e.g. [web] with mode, listen, target, cert, key "
                  "and ca)");
    if (config->global.workers == 0)
        config->global.workers = online_cpus();
    if (!ld.out_of_memory)
        check_listen_clashes(&ld, &ld.source);

out:
    if (ld.error_count > 0 || ld.out_of_memory) {
        *errors = join_errors(&ld);
        config_free(config);
        config = NULL;
    }
    free_loader(&ld);
    return config;
}

static void free_tunnel(struct tunnel_config *tunnel)
{
    free(tunnel->name);
    free(tunnel->cert);
    free(tunnel->key);
    free(tunnel->ca);
    free(tunnel->crl);
    string_list_clear(&tunnel->allow_cn);
    string_list_clear(&tunnel->allow_ou);
    string_list_clear(&tunnel->allow_dns);
    string_list_clear(&tunnel->allow_uri);
    string_list_clear(&tunnel->allow_email);
    string_list_clear(&tunnel->pin_sha256);
    free(tunnel->server_name);
    free(tunnel->ciphersuites);
    free(tunnel->ciphers);
    free(tunnel->groups);
    free(tunnel->pam_service);
    free(tunnel->pam_confdir);
    user_map_free(tunnel->user_map);
    string_list_clear(&tunnel->alert_command);
}

void config_free(struct config *config)
{
    if (config == NULL)
        return;
    for (size_t i = 0; i < config->tunnel_count; i++)
        free_tunnel(&config->tunnels[i]);
    free(config->tunnels);
    free(config->global.state_dir);
    free(config->global.runtime_dir);
    free(config->global.user);
    free(config->global.group);
    free(config->path);
    free(config);
}

const char *config_mode_name(enum tunnel_mode mode)
{
    return mode == TUNNEL_MODE_CLIENT ? "client" : "server";
}

const char *config_ktls_name(enum ktls_policy policy)
{
    switch (policy) {
    case KTLS_POLICY_REQUIRE:
        return "require";
    case KTLS_POLICY_OFF:
        return "off";
    case KTLS_POLICY_AUTO:
    default:
        return "auto";
    }
}
