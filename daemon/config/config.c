/* The loader: walks the INI source section by section, runs each key through its
 * table (tunnel_keys.c, second_factor_keys.c, global_keys.c), then checks what needs
 * the whole file (required keys, listen clashes). Errors are collected, never fatal
 * on the first one, so a single run lists every problem. */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/config_loader.h"
#include "config/global_keys.h"
#include "config/state_store_keys.h"
#include "config/key_source_keys.h"
#include "config/key_suggest.h"
#include "config/listen_clash.h"
#include "config/network_keys.h"
#include "config/proxy_keys.h"
#include "config/second_factor_keys.h"
#include "config/tunnel_keys.h"
#include "config/user_map.h"
#include "core/limits.h"

#define GLOBAL_SECTION "global"

/* ---------------------------------------------------------------- key tables */

/* A tunnel section takes the keys of both tables; each file owns one group of keys. */
static const struct config_tunnel_key *(*const tunnel_tables[])(size_t *count) = {
    tunnel_keys_list,
    second_factor_keys_list,
    network_keys_list,
    proxy_keys_list,
    key_source_keys_list,
};

#define TUNNEL_TABLE_COUNT (sizeof(tunnel_tables) / sizeof(tunnel_tables[0]))

static const struct config_tunnel_key *find_tunnel_key(const char *name)
{
    for (size_t t = 0; t < TUNNEL_TABLE_COUNT; t++) {
        size_t count;
        const struct config_tunnel_key *keys = tunnel_tables[t](&count);
        for (size_t i = 0; i < count; i++)
            if (strcmp(keys[i].name, name) == 0)
                return &keys[i];
    }
    return NULL;
}

static const struct config_global_key *find_global_key(const char *name)
{
    size_t count;
    const struct config_global_key *keys = global_keys_list(&count);

    for (size_t i = 0; i < count; i++)
        if (strcmp(keys[i].name, name) == 0)
            return &keys[i];
    return NULL;
}

/* Every key name valid in [global] (IN_GLOBAL) or in a tunnel section, into NAMES
 * (room for MAX); returns how many. */
static size_t valid_key_names(int in_global, const char **names, size_t max)
{
    size_t used = 0, count;
    if (in_global) {
        const struct config_global_key *keys = global_keys_list(&count);
        for (size_t i = 0; i < count && used < max; i++)
            names[used++] = keys[i].name;
        return used;
    }
    for (size_t t = 0; t < TUNNEL_TABLE_COUNT; t++) {
        const struct config_tunnel_key *keys = tunnel_tables[t](&count);
        for (size_t i = 0; i < count && used < max; i++)
            names[used++] = keys[i].name;
    }
    return used;
}

#define MAX_KEY_NAMES 96
#define MIGRATION_HINT "see README: Coming from other tools"

/* An unknown KEY of SECTION: says where it belongs, what a stunnel or ghostunnel key
 * is called here, or which key it is a typo of, whichever applies first. */
static void report_unknown_key(struct config_loader *ld, const struct ini_section *section,
                               const struct ini_key *key, int in_global)
{
    const char *names[MAX_KEY_NAMES];
    const char *name = key->name;
    const struct key_suggest_foreign *foreign = key_suggest_foreign(name);
    const char *near = key_suggest_closest(name, names,
                                           valid_key_names(in_global, names, MAX_KEY_NAMES));
    if (in_global && find_tunnel_key(name) != NULL)
        config_loader_error(ld, key->line, section->name, name,
                            "unknown key in [global] (it belongs in a tunnel section)");
    else if (!in_global && find_global_key(name) != NULL)
        config_loader_error(ld, key->line, section->name, name,
                            "unknown key in a tunnel section (it belongs in [global])");
    else if (foreign != NULL && foreign->ours != NULL)
        config_loader_error(ld, key->line, section->name, name,
                            "unknown key: `%s` is %s's name; in ktlstun it is `%s` (%s%s%s)",
                            name, foreign->tool, foreign->ours,
                            foreign->note != NULL ? foreign->note : "",
                            foreign->note != NULL ? "; " : "", MIGRATION_HINT);
    else if (foreign != NULL)
        config_loader_error(ld, key->line, section->name, name,
                            "unknown key: `%s` is %s's; ktlstun has no such key: %s (%s)",
                            name, foreign->tool, foreign->note, MIGRATION_HINT);
    else if (near != NULL)
        config_loader_error(ld, key->line, section->name, name,
                            "unknown key; did you mean '%s'?", near);
    else
        config_loader_error(ld, key->line, section->name, name, "unknown key");
}

/* ---------------------------------------------------------------- sections */

static int is_global_section(const struct ini_section *section)
{
    return strcasecmp(section->name, GLOBAL_SECTION) == 0;
}

static int parse_global(struct config_loader *ld, const struct ini_section *section)
{
    struct global_config *global = &ld->config->global;
    int result = 0;

    global->line = section->line;
    for (size_t i = 0; i < section->key_count; i++) {
        const struct ini_key *key = &section->keys[i];
        const struct config_global_key *known = find_global_key(key->name);
        if (known == NULL) {
            report_unknown_key(ld, section, key, 1);
            result = -1;
        } else if (key->value != NULL && known->set(ld, section, key, global) < 0) {
            result = -1;
        } else if (global->key_line_count < CONFIG_MAX_KEY_LINES) {
            global->key_lines[global->key_line_count++] =
                (struct config_key_line){ known->name, key->line };
        }
    }
    return result;
}

static int valid_tunnel_name(const char *name)
{
    size_t len = strlen(name);

    if (len == 0 || len > LIMIT_TUNNEL_NAME)
        return 0;
    for (const char *cursor = name; *cursor != '\0'; cursor++) {
        unsigned char c = (unsigned char)*cursor;
        if (!isalnum(c) && c != '-' && c != '_' && c != '.')
            return 0;
    }
    return 1;
}

int config_key_line(const struct tunnel_config *tunnel, const char *key)
{
    for (size_t i = 0; i < tunnel->key_line_count; i++)
        if (strcmp(tunnel->key_lines[i].key, key) == 0)
            return tunnel->key_lines[i].line;
    return tunnel->line;
}

int config_global_key_line(const struct config *config, const char *key)
{
    const struct global_config *global = &config->global;
    for (size_t i = 0; i < global->key_line_count; i++)
        if (strcmp(global->key_lines[i].key, key) == 0)
            return global->key_lines[i].line;
    return global->line;
}

/* Reports each required key SECTION lacks, at its [section] line (but those TUNNEL's
 * type has no use for). */
static int report_missing_keys(struct config_loader *ld, const struct ini_section *section,
                               const struct tunnel_config *tunnel)
{
    int result = 0;

    for (size_t t = 0; t < TUNNEL_TABLE_COUNT; t++) {
        size_t count;
        const struct config_tunnel_key *keys = tunnel_tables[t](&count);
        for (size_t i = 0; i < count; i++) {
            if (keys[i].required && ini_source_find_key(section, keys[i].name) == NULL
                && !network_keys_not_needed(tunnel, keys[i].name)
                && !key_source_keys_not_needed(tunnel, keys[i].name)) {
                config_loader_error(ld, section->line, section->name, keys[i].name,
                                    "missing (required in every tunnel)");
                result = -1;
            }
        }
    }
    return result;
}

static int parse_tunnel(struct config_loader *ld, const struct ini_section *section,
                        struct tunnel_config *tunnel)
{
    int result = 0;
    int mode_known = 0;
    int type_known = 0;
    int target_valid = 0;
    const struct config_tunnel_key *mode_key = find_tunnel_key("mode");
    const struct config_tunnel_key *type_key = find_tunnel_key("type");
    const struct config_tunnel_key *target_key = find_tunnel_key("target");

    tunnel_keys_defaults(tunnel);
    second_factor_keys_defaults(tunnel);
    network_keys_defaults(tunnel);
    proxy_keys_defaults(tunnel);
    tunnel->line = section->line;
    if ((tunnel->name = strdup(section->name)) == NULL) {
        ld->out_of_memory = 1;
        return -1;
    }
    if (!valid_tunnel_name(section->name)) {
        config_loader_error(ld, section->line, section->name, NULL,
                            "invalid tunnel name (use up to %d letters, digits, '-', '_' or '.')",
                            LIMIT_TUNNEL_NAME);
        result = -1;
    }

    /* The mode decides which keys are allowed, wherever it is written. */
    const struct ini_key *mode = ini_source_find_key(section, "mode");
    if (mode != NULL && mode->value != NULL) {
        if (mode_key->set(ld, section, mode, tunnel) == 0)
            mode_known = 1;
        else
            result = -1;
    }
    /* So does the type: a network tunnel has keys of its own and lacks others. */
    if (network_keys_type(ld, section, tunnel) == 0)
        type_known = 1;
    else
        result = -1;

    for (size_t i = 0; i < section->key_count; i++) {
        const struct ini_key *key = &section->keys[i];
        const struct config_tunnel_key *known = find_tunnel_key(key->name);
        if (known == NULL) {
            report_unknown_key(ld, section, key, 0);
            result = -1;
            continue;
        }
        if (known == mode_key || known == type_key || key->value == NULL)
            continue;
        if (type_known && network_keys_allowed(ld, section, key, tunnel) < 0) {
            result = -1;
            continue;
        }
        enum tunnel_mode needed = known->scope == SCOPE_SERVER ? TUNNEL_MODE_SERVER
                                                               : TUNNEL_MODE_CLIENT;
        if (known->scope != SCOPE_ANY && mode_known && tunnel->mode != needed) {
            config_loader_error(ld, key->line, section->name, key->name,
                                "only valid in %s mode (this tunnel has mode = %s)",
                                config_mode_name(needed), config_mode_name(tunnel->mode));
            result = -1;
            continue;
        }
        if (known->set(ld, section, key, tunnel) < 0) {
            result = -1;
        } else {
            if (known == target_key)
                target_valid = 1;
            if (tunnel->key_line_count < CONFIG_MAX_KEY_LINES)
                tunnel->key_lines[tunnel->key_line_count++] =
                    (struct config_key_line){ known->name, key->line };
        }
    }

    if (report_missing_keys(ld, section, tunnel) < 0)
        result = -1;

    /* SNI and certificate name checks need a host name; a socket path has none. */
    if (mode_known && tunnel->mode == TUNNEL_MODE_CLIENT && target_valid
        && tunnel->target.kind == ADDRESS_UNIX && tunnel->server_name == NULL
        && ini_source_find_key(section, "server_name") == NULL) {
        config_loader_error(ld, section->line, section->name, "server_name",
                            "missing (required in client mode when target is a unix socket)");
        result = -1;
    }
    if (second_factor_keys_finish(ld, section, tunnel) < 0)
        result = -1;
    if (key_source_keys_finish(ld, section, tunnel) < 0)
        result = -1;
    if (mode_known && type_known && network_keys_finish(ld, section, tunnel) < 0)
        result = -1;
    if (proxy_keys_finish(ld, section, tunnel) < 0)
        result = -1;
    return result;
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

struct config *config_load(const char *path, char **errors)
{
    struct config_loader ld = { .path = path };
    struct config *config = NULL;

    *errors = NULL;
    if ((config = calloc(1, sizeof(*config))) == NULL || (config->path = strdup(path)) == NULL) {
        ld.out_of_memory = 1;
        goto out;
    }
    ld.config = config;
    global_keys_defaults(&ld);

    if (ini_source_load(path, &ld.source) < 0) {
        config_loader_error(&ld, 0, NULL, NULL, "%s", strerror(errno));
        goto out;
    }
    if ((ld.directory = config_directory(path)) == NULL) {
        config_loader_error(&ld, 0, NULL, NULL, "cannot find its directory: %s", strerror(errno));
        goto out;
    }
    for (size_t i = 0; i < ld.source.problem_count; i++) {
        const struct ini_problem *problem = &ld.source.problems[i];
        config_loader_error(&ld, problem->line, problem->section, problem->key, "%s",
                            problem->reason);
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
        config_loader_error(&ld, 0, NULL, NULL,
                            "no tunnel section (add one, e.g. [web] with mode, listen, target, "
                            "cert, key and ca)");
    global_keys_finish(&config->global);
    state_store_keys_finish(&ld, &config->global);
    if (!ld.out_of_memory) {
        listen_clash_check(&ld, &ld.source);
        network_keys_check_all(&ld);
    }

out:
    if (ld.error_count > 0 || ld.out_of_memory) {
        *errors = config_loader_join_errors(&ld);
        config_free(config);
        config = NULL;
    }
    config_loader_free(&ld);
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
    network_keys_free(tunnel);
    proxy_keys_free(tunnel);
    key_source_keys_free(tunnel);
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
    free(config->global.pam_user);
    free(config->global.state_store);
    free(config->global.gateway_name);
    free(config->path);
    free(config);
}

int config_tunnel_listens(const struct tunnel_config *tunnel)
{
    return tunnel->type != TUNNEL_TYPE_NETWORK || tunnel->mode != TUNNEL_MODE_CLIENT;
}

int config_tunnel_has_target(const struct tunnel_config *tunnel)
{
    return tunnel->type != TUNNEL_TYPE_NETWORK || tunnel->mode != TUNNEL_MODE_SERVER;
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
