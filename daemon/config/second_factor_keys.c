#include "config/second_factor_keys.h"

#include <ctype.h>
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/user_map.h"
#include "core/limits.h"

#define DEFAULT_PAM_SERVICE "ktlstun"
#define DEFAULT_USER_MAP "cn"
#define DEFAULT_PAM_TIMEOUT 30
#define DEFAULT_GRANT_LIFETIME (8ULL * 3600)
#define DEFAULT_FAILURE_WINDOW (15ULL * 60)
#define DEFAULT_MAX_FAILURES 5
#define DEFAULT_LOCKOUT (10ULL * 60)
#define DEFAULT_MAX_HANDSHAKE_FAILURES 20
#define PAM_SERVICE_MAX 64
#define ALERT_COMMAND_ARGS_MAX 32

static int set_second_factor(struct config_loader *ld, const struct ini_section *section,
                             const struct ini_key *key, struct tunnel_config *tunnel)
{
    if (strcasecmp(key->value, "none") == 0)
        tunnel->second_factor = SECOND_FACTOR_NONE;
    else if (strcasecmp(key->value, "pam") == 0)
        tunnel->second_factor = SECOND_FACTOR_PAM;
    else {
        config_loader_error(ld, key->line, section->name, key->name,
                            "'%s' is not a second factor (use none or pam)", key->value);
        return -1;
    }
    return 0;
}

/* A PAM service is a file name under the PAM configuration directory. */
static int set_pam_service(struct config_loader *ld, const struct ini_section *section,
                           const struct ini_key *key, struct tunnel_config *tunnel)
{
    size_t len = strlen(key->value);
    int ok = len > 0 && len <= PAM_SERVICE_MAX && key->value[0] != '.';
    for (const char *cursor = key->value; ok && *cursor != '\0'; cursor++)
        ok = isalnum((unsigned char)*cursor) || strchr("._-", *cursor) != NULL;
    if (!ok) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "'%s' is not a PAM service name (letters, digits, '.', '_' and '-')",
                            key->value);
        return -1;
    }
    return config_loader_copy_string(ld, section, key, &tunnel->pam_service);
}

static int set_pam_confdir(struct config_loader *ld, const struct ini_section *section,
                           const struct ini_key *key, struct tunnel_config *tunnel)
{
    int is_directory = 0;
    if (config_loader_file(ld, section, key, 1, &tunnel->pam_confdir, &is_directory) < 0)
        return -1;
    if (!is_directory) {
        config_loader_error(ld, key->line, section->name, key->name, "%s is not a directory",
                            tunnel->pam_confdir);
        return -1;
    }
    return 0;
}

static int set_pam_timeout(struct config_loader *ld, const struct ini_section *section,
                           const struct ini_key *key, struct tunnel_config *tunnel)
{
    return config_loader_timeout(ld, section, key, 1, &tunnel->pam_timeout);
}

static int set_user_map(struct config_loader *ld, const struct ini_section *section,
                        const struct ini_key *key, struct tunnel_config *tunnel)
{
    char error[600];
    if (config_loader_require_value(ld, section, key) < 0)
        return -1;
    struct user_map *map = user_map_parse(key->value, ld->directory, error, sizeof(error));
    if (map == NULL) {
        config_loader_error(ld, key->line, section->name, key->name, "%s", error);
        return -1;
    }
    user_map_free(tunnel->user_map);
    tunnel->user_map = map;
    return 0;
}

static int set_grant_lifetime(struct config_loader *ld, const struct ini_section *section,
                              const struct ini_key *key, struct tunnel_config *tunnel)
{
    return config_loader_timeout(ld, section, key, 1, &tunnel->grant_lifetime);
}

static int set_bind_grant_to_address(struct config_loader *ld, const struct ini_section *section,
                                     const struct ini_key *key, struct tunnel_config *tunnel)
{
    return config_loader_yes_no(ld, section, key, &tunnel->bind_grant_to_address);
}

static int set_browser_login(struct config_loader *ld, const struct ini_section *section,
                             const struct ini_key *key, struct tunnel_config *tunnel)
{
    return config_loader_yes_no(ld, section, key, &tunnel->browser_login);
}

static int set_failure_window(struct config_loader *ld, const struct ini_section *section,
                              const struct ini_key *key, struct tunnel_config *tunnel)
{
    return config_loader_timeout(ld, section, key, 1, &tunnel->failure_window);
}

static int set_max_failures(struct config_loader *ld, const struct ini_section *section,
                            const struct ini_key *key, struct tunnel_config *tunnel)
{
    if (config_loader_number(key->value, 1, LIMIT_MAX_FAILURES,
                             &tunnel->max_failures) < 0) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "'%s' is not a whole number from 1 to %d", key->value,
                            LIMIT_MAX_FAILURES);
        return -1;
    }
    return 0;
}

static int set_lockout(struct config_loader *ld, const struct ini_section *section,
                       const struct ini_key *key, struct tunnel_config *tunnel)
{
    if (config_loader_timeout(ld, section, key, 1, &tunnel->lockout) < 0)
        return -1;
    if (tunnel->lockout > LIMIT_LOCK_SECONDS) {
        config_loader_error(ld, key->line, section->name, key->name,
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

static int set_alert_command(struct config_loader *ld, const struct ini_section *section,
                             const struct ini_key *key, struct tunnel_config *tunnel)
{
    string_list_clear(&tunnel->alert_command);
    if (config_loader_require_value(ld, section, key) < 0)
        return -1;
    if (split_command(key->value, &tunnel->alert_command) < 0 ||
        tunnel->alert_command.count == 0 || tunnel->alert_command.count > ALERT_COMMAND_ARGS_MAX) {
        string_list_clear(&tunnel->alert_command);
        config_loader_error(ld, key->line, section->name, key->name,
                            "cannot split '%s' into a program and its arguments "
                            "(unbalanced quote?)", key->value);
        return -1;
    }
    const char *program = tunnel->alert_command.items[0];
    if (program[0] != '/' || access(program, X_OK) < 0) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "%s: %s (give the absolute path of an executable; it runs "
                            "without a shell)", program,
                            program[0] != '/' ? "not an absolute path" : strerror(errno));
        string_list_clear(&tunnel->alert_command);
        return -1;
    }
    return 0;
}

static int set_max_handshake_failures(struct config_loader *ld, const struct ini_section *section,
                                      const struct ini_key *key, struct tunnel_config *tunnel)
{
    if (config_loader_number(key->value, 0, LIMIT_MAX_FAILURES,
                             &tunnel->max_handshake_failures) < 0) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "'%s' is not a whole number from 0 (off) to %d", key->value,
                            LIMIT_MAX_FAILURES);
        return -1;
    }
    return 0;
}

/* Keys that mean nothing unless a login is asked for. */
static const char *const pam_only_keys[] = {
    "pam_service", "pam_confdir", "pam_timeout", "user_map", "grant_lifetime",
    "bind_grant_to_address", "max_failures", "browser_login",
};

/* Defaults that depend on second_factor, and keys that need it. */
int second_factor_keys_finish(struct config_loader *ld, const struct ini_section *section,
                              struct tunnel_config *tunnel)
{
    char error[600];
    int result = 0;
    if (tunnel->second_factor != SECOND_FACTOR_PAM) {
        for (size_t i = 0; i < sizeof(pam_only_keys) / sizeof(pam_only_keys[0]); i++) {
            const struct ini_key *key = ini_source_find_key(section, pam_only_keys[i]);
            if (key != NULL && tunnel->mode == TUNNEL_MODE_SERVER) {
                config_loader_error(ld, key->line, section->name, key->name,
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

static const struct config_tunnel_key second_factor_keys[] = {
    { "second_factor", SCOPE_SERVER, 0, set_second_factor },
    { "pam_service", SCOPE_SERVER, 0, set_pam_service },
    { "pam_confdir", SCOPE_SERVER, 0, set_pam_confdir },
    { "pam_timeout", SCOPE_SERVER, 0, set_pam_timeout },
    { "user_map", SCOPE_SERVER, 0, set_user_map },
    { "grant_lifetime", SCOPE_SERVER, 0, set_grant_lifetime },
    { "bind_grant_to_address", SCOPE_SERVER, 0, set_bind_grant_to_address },
    { "browser_login", SCOPE_SERVER, 0, set_browser_login },
    { "failure_window", SCOPE_SERVER, 0, set_failure_window },
    { "max_failures", SCOPE_SERVER, 0, set_max_failures },
    { "lockout", SCOPE_SERVER, 0, set_lockout },
    { "alert_command", SCOPE_SERVER, 0, set_alert_command },
    { "max_handshake_failures", SCOPE_SERVER, 0, set_max_handshake_failures },
};

const struct config_tunnel_key *second_factor_keys_list(size_t *count)
{
    *count = sizeof(second_factor_keys) / sizeof(second_factor_keys[0]);
    return second_factor_keys;
}

void second_factor_keys_defaults(struct tunnel_config *tunnel)
{
    tunnel->second_factor = SECOND_FACTOR_NONE;
    tunnel->pam_timeout = DEFAULT_PAM_TIMEOUT;
    tunnel->grant_lifetime = DEFAULT_GRANT_LIFETIME;
    /* A copied key and certificate must not ride the owner's grant from elsewhere. */
    tunnel->bind_grant_to_address = 1;
    tunnel->browser_login = 0;
    tunnel->failure_window = DEFAULT_FAILURE_WINDOW;
    tunnel->max_failures = DEFAULT_MAX_FAILURES;
    tunnel->lockout = DEFAULT_LOCKOUT;
    tunnel->max_handshake_failures = 0;
}
