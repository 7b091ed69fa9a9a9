#include "config/state_store_keys.h"

#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/limits.h"

/* A libpq keyword=value string, or a postgresql:// URI. */
static int looks_like_conninfo(const char *text)
{
    return strchr(text, '=') != NULL || strncmp(text, "postgresql://", 13) == 0 ||
           strncmp(text, "postgres://", 11) == 0;
}

static const char *option(const PQconninfoOption *options, const char *keyword)
{
    for (const PQconninfoOption *o = options; o->keyword != NULL; o++)
        if (strcmp(o->keyword, keyword) == 0)
            return o->val;
    return NULL;
}

/* Every host that is not a socket directory is reached over TCP: only verified TLS
 * keeps a man in the middle from handing out grants or lifting locks. */
static const char *unverified_tcp_host(const PQconninfoOption *options)
{
    const char *hosts = option(options, "host"), *addrs = option(options, "hostaddr");
    const char *sslmode = option(options, "sslmode");
    int verified = sslmode != NULL &&
                   (strcmp(sslmode, "verify-full") == 0 || strcmp(sslmode, "verify-ca") == 0);
    if (verified)
        return NULL;
    if (addrs != NULL && addrs[0] != '\0')
        return addrs;
    if (hosts == NULL || hosts[0] == '\0')
        return NULL;   /* libpq's default: the local socket directory */
    static char first_tcp[256];
    const char *h = hosts;
    while (*h != '\0') {
        size_t len = strcspn(h, ",");
        if (len > 0 && h[0] != '/' && h[0] != '@') {
            snprintf(first_tcp, sizeof(first_tcp), "%.*s", (int)len, h);
            return first_tcp;
        }
        h += len + (h[len] == ',');
    }
    return NULL;
}

int state_store_keys_set_store(struct config_loader *ld, const struct ini_section *section,
                               const struct ini_key *key, struct global_config *global)
{
    if (config_loader_require_value(ld, section, key) < 0)
        return -1;
    if (strcmp(key->value, "file") == 0) {
        free(global->state_store);
        global->state_store = NULL;
        return 0;
    }
    if (!looks_like_conninfo(key->value)) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "'%s' is neither 'file' nor a PostgreSQL connection string "
                            "(e.g. host=db1,db2 dbname=ktlstun user=ktlstun sslmode=verify-full "
                            "sslrootcert=FILE sslcert=FILE sslkey=FILE "
                            "target_session_attrs=read-write)", key->value);
        return -1;
    }
    char *why = NULL;
    PQconninfoOption *options = PQconninfoParse(key->value, &why);
    int status = -1;
    if (options == NULL) {
        if (why == NULL)
            ld->out_of_memory = 1;
        else
            config_loader_error(ld, key->line, section->name, key->name,
                                "not a valid PostgreSQL connection string: %.*s",
                                (int)strcspn(why, "\n"), why);
        goto out;
    }
    const char *password = option(options, "password");
    if (password != NULL && password[0] != '\0') {
        config_loader_error(ld, key->line, section->name, key->name,
                            "holds a password: put it in a file named by passfile= "
                            "(mode 0600, readable by pam_user) instead");
        goto out;
    }
    const char *host = unverified_tcp_host(options);
    if (host != NULL) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "the connection to %s is not verified TLS: add sslmode=verify-full "
                            "and sslrootcert=FILE (the CA of the database server)", host);
        goto out;
    }
    if (config_loader_copy_string(ld, section, key, &global->state_store) < 0)
        goto out;
    status = 0;
out:
    PQconninfoFree(options);
    PQfreemem(why);
    return status;
}

int state_store_keys_set_gateway_name(struct config_loader *ld, const struct ini_section *section,
                                      const struct ini_key *key, struct global_config *global)
{
    if (config_loader_require_value(ld, section, key) < 0)
        return -1;
    size_t len = strlen(key->value);
    if (len > LIMIT_GATEWAY_NAME ||
        strspn(key->value, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != len) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "'%s' is not a name of at most %d letters, digits, '.', '_' or '-'",
                            key->value, LIMIT_GATEWAY_NAME);
        return -1;
    }
    return config_loader_copy_string(ld, section, key, &global->gateway_name);
}

int state_store_keys_finish(struct config_loader *ld, struct global_config *global)
{
    if (global->state_store == NULL || global->gateway_name != NULL)
        return 0;
    char host[LIMIT_GATEWAY_NAME + 1];
    if (gethostname(host, sizeof(host)) < 0) {
        config_loader_error(ld, global->line, "global", "gateway_name",
                            "cannot read the host name (%s): set gateway_name", strerror(errno));
        return -1;
    }
    host[sizeof(host) - 1] = '\0';
    global->gateway_name = strdup(host);
    if (global->gateway_name == NULL) {
        ld->out_of_memory = 1;
        return -1;
    }
    return 0;
}
