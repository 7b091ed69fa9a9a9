/* config_loader — internal to daemon/config/: the state of one config_load() and the
 * helpers the key files (tunnel_keys.c, second_factor_keys.c, global_keys.c) and
 * listen_clash.c share. Nothing outside daemon/config/ includes this header.
 *
 * Every problem becomes one error "FILE:LINE: [section] key: reason"; a setter reports
 * its own problems and returns -1, so one load lists them all. */
#ifndef KTLSTUN_CONFIG_LOADER_H
#define KTLSTUN_CONFIG_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "config/ini_source.h"

struct config_error {
    int line;
    size_t sequence;     /* keeps errors of one line in the order they were found */
    char *text;
};

struct config_loader {
    const char *path;
    char *directory;     /* absolute directory of the config file, for relative paths */
    struct ini_source source;
    struct config *config;
    size_t error_count;
    struct config_error *errors;
    int out_of_memory;
};

/* Which tunnel mode a key is valid in. */
enum config_key_scope { SCOPE_ANY, SCOPE_SERVER, SCOPE_CLIENT };

/* One key of a tunnel section. SET validates KEY's value (never NULL) into TUNNEL and
 * returns 0, or reports the problem with config_loader_error() and returns -1. */
struct config_tunnel_key {
    const char *name;
    enum config_key_scope scope;
    int required;
    int (*set)(struct config_loader *ld, const struct ini_section *section,
               const struct ini_key *key, struct tunnel_config *tunnel);
};

/* One key of [global]; SET as for struct config_tunnel_key. */
struct config_global_key {
    const char *name;
    int (*set)(struct config_loader *ld, const struct ini_section *section,
               const struct ini_key *key, struct global_config *global);
};

/* Adds the error "PATH:LINE: [SECTION] KEY: reason" to LD, the reason formatted from
 * FMT. LINE 0 leaves out ":LINE", a NULL SECTION or KEY leaves out that part. When
 * memory runs out it sets ld->out_of_memory instead. */
void config_loader_error(struct config_loader *ld, int line, const char *section,
                         const char *key, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* Returns every error of LD, sorted by line (those of one line in the order they were
 * found), one per line, as a new string the caller frees; NULL when out of memory.
 * Adds "out of memory" first when ld->out_of_memory is set. */
char *config_loader_join_errors(struct config_loader *ld);

/* Frees what LD owns (errors, source, directory), not ld->config. */
void config_loader_free(struct config_loader *ld);

/* Parses TEXT as a decimal number from MIN to MAX into *VALUE. Returns 0, or -1
 * (nothing reported) when TEXT is empty, not all digits or out of range. */
int config_loader_number(const char *text, uint64_t min, uint64_t max, uint64_t *value);

/* Parses KEY's value as a duration of at least MINIMUM seconds and at most 365 days
 * into *SECONDS. Returns 0, or reports why not and returns -1. */
int config_loader_timeout(struct config_loader *ld, const struct ini_section *section,
                          const struct ini_key *key, uint64_t minimum, uint64_t *seconds);

/* Parses KEY's value as yes or no (also true/false, on/off, 1/0, in any case) into
 * *VALUE (1 or 0). Returns 0, or reports "'VALUE' is not yes or no" and returns -1. */
int config_loader_yes_no(struct config_loader *ld, const struct ini_section *section,
                         const struct ini_key *key, int *value);

/* Returns 0 when KEY has a value, or reports "empty value" and returns -1. */
int config_loader_require_value(struct config_loader *ld, const struct ini_section *section,
                                const struct ini_key *key);

/* Replaces *FIELD (freed) with a copy of KEY's non-empty value. Returns 0, or -1 after
 * reporting an empty value or setting out_of_memory. */
int config_loader_copy_string(struct config_loader *ld, const struct ini_section *section,
                              const struct ini_key *key, char **field);

/* Replaces *FIELD (freed) with KEY's value as an absolute path (a relative one is
 * taken from the config file's directory), after proving it can be opened: a regular
 * file, or a directory when DIRECTORY_ALLOWED (then *IS_DIRECTORY, when not NULL,
 * says which). Returns 0, or reports why not and returns -1. */
int config_loader_file(struct config_loader *ld, const struct ini_section *section,
                       const struct ini_key *key, int directory_allowed, char **field,
                       int *is_directory);

/* Replaces LIST with the comma-separated items of KEY's value. Returns 0, or -1 after
 * reporting an empty list or setting out_of_memory. */
int config_loader_list(struct config_loader *ld, const struct ini_section *section,
                       const struct ini_key *key, struct string_list *list);

#endif
