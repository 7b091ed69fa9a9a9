#include "config/user_map.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/text.h"

enum map_kind { MAP_CN, MAP_EMAIL_LOCAL_PART, MAP_URI_PATH, MAP_FILE };

/* What a file line's IDENTITY names. */
enum name_kind { NAME_CN, NAME_EMAIL, NAME_URI, NAME_DNS, NAME_SHA256 };

struct map_entry {
    enum name_kind kind;
    char *value;
    char *user;
};

struct user_map {
    enum map_kind kind;
    char *spec;
    size_t count;
    struct map_entry *entries;
};

#define MAP_FILE_LINE_MAX 1024

int user_map_valid_user(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > LIMIT_USER_NAME)
        return 0;
    if (!(islower((unsigned char)name[0]) || name[0] == '_'))
        return 0;
    for (const char *cursor = name; *cursor != '\0'; cursor++) {
        unsigned char c = (unsigned char)*cursor;
        if (!islower(c) && !isdigit(c) && c != '_' && c != '.' && c != '-')
            return 0;
    }
    return 1;
}

void user_map_free(struct user_map *map)
{
    if (map == NULL)
        return;
    for (size_t i = 0; i < map->count; i++) {
        free(map->entries[i].value);
        free(map->entries[i].user);
    }
    free(map->entries);
    free(map->spec);
    free(map);
}

const char *user_map_describe(const struct user_map *map)
{
    return map->spec;
}

/* "AB:cd…" (64 hex digits, colons allowed) → lowercase hex; 0 on success. */
/* A fingerprint as identity_from_cert() writes it: 64 lowercase hex digits. */
static int normalize_fingerprint(const char *text, char out[65])
{
    unsigned char digest[32];
    if (text_hex_decode_fingerprint(text, digest, sizeof(digest)) < 0)
        return -1;
    text_hex_encode(digest, sizeof(digest), out);
    return 0;
}

static int parse_identity(const char *text, enum name_kind *kind, char **value)
{
    static const struct {
        const char *prefix;
        enum name_kind kind;
    } prefixes[] = {
        { "cn:", NAME_CN }, { "email:", NAME_EMAIL }, { "uri:", NAME_URI },
        { "dns:", NAME_DNS }, { "sha256:", NAME_SHA256 },
    };
    const char *rest = text;
    *kind = NAME_CN;
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t len = strlen(prefixes[i].prefix);
        if (strncasecmp(text, prefixes[i].prefix, len) == 0) {
            *kind = prefixes[i].kind;
            rest = text + len;
            break;
        }
    }
    if (*rest == '\0')
        return -1;
    if (*kind == NAME_SHA256) {
        char hex[65];
        if (normalize_fingerprint(rest, hex) < 0)
            return -1;
        *value = strdup(hex);
    } else {
        *value = strdup(rest);
    }
    return *value == NULL ? -1 : 0;
}

static int load_file(struct user_map *map, const char *path, char *err, size_t errlen)
{
    int result = -1;
    char line[MAP_FILE_LINE_MAX + 2];
    int number = 0;
    FILE *file = fopen(path, "re");
    if (file == NULL) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), file) != NULL) {
        number++;
        size_t len = strlen(line);
        if (len > MAP_FILE_LINE_MAX && line[len - 1] != '\n') {
            snprintf(err, errlen, "%s:%d: line too long", path, number);
            goto out;
        }
        char *hash = strchr(line, '#');
        if (hash != NULL)
            *hash = '\0';
        char *save = NULL;
        char *identity = strtok_r(line, " \t\r\n", &save);
        if (identity == NULL)
            continue;
        char *user = strtok_r(NULL, " \t\r\n", &save);
        char *extra = strtok_r(NULL, " \t\r\n", &save);
        if (user == NULL || extra != NULL) {
            snprintf(err, errlen, "%s:%d: expected \"IDENTITY USER\"", path, number);
            goto out;
        }
        if (!user_map_valid_user(user)) {
            snprintf(err, errlen, "%s:%d: '%s' is not a valid user name", path, number, user);
            goto out;
        }
        struct map_entry entry = { 0 };
        if (parse_identity(identity, &entry.kind, &entry.value) < 0) {
            snprintf(err, errlen, "%s:%d: '%s' is not an identity (cn:NAME, email:ADDR, uri:URI, "
                     "dns:NAME or sha256:HEX)", path, number, identity);
            goto out;
        }
        struct map_entry *grown = realloc(map->entries, (map->count + 1) * sizeof(*grown));
        entry.user = strdup(user);
        if (grown == NULL || entry.user == NULL) {
            if (grown != NULL)
                map->entries = grown;
            free(entry.value);
            free(entry.user);
            snprintf(err, errlen, "out of memory");
            goto out;
        }
        map->entries = grown;
        map->entries[map->count++] = entry;
    }
    if (ferror(file)) {
        snprintf(err, errlen, "%s: read error", path);
        goto out;
    }
    result = 0;
out:
    fclose(file);
    return result;
}

struct user_map *user_map_parse(const char *spec, const char *base_dir, char *err, size_t errlen)
{
    struct user_map *map = calloc(1, sizeof(*map));
    if (map == NULL || (map->spec = strdup(spec)) == NULL) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    if (strcasecmp(spec, "cn") == 0) {
        map->kind = MAP_CN;
    } else if (strcasecmp(spec, "email-local-part") == 0) {
        map->kind = MAP_EMAIL_LOCAL_PART;
    } else if (strcasecmp(spec, "uri-path") == 0) {
        map->kind = MAP_URI_PATH;
    } else if (strncasecmp(spec, "file:", 5) == 0 && spec[5] != '\0') {
        map->kind = MAP_FILE;
        char path[4096];
        if (spec[5] == '/' || base_dir == NULL)
            snprintf(path, sizeof(path), "%s", spec + 5);
        else
            snprintf(path, sizeof(path), "%s/%s", base_dir, spec + 5);
        free(map->spec);
        if (asprintf(&map->spec, "file:%s", path) < 0) {
            map->spec = NULL;
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        if (load_file(map, path, err, errlen) < 0)
            goto fail;
    } else {
        snprintf(err, errlen, "'%s' is not a user map (use cn, email-local-part, uri-path or "
                 "file:/path)", spec);
        goto fail;
    }
    return map;
fail:
    user_map_free(map);
    return NULL;
}

/* ------------------------------------------------------------------ lookup */

struct candidates {
    char identity[LIMIT_IDENTITY + 1];
    char user[LIMIT_USER_NAME + 1];
    int found;
    int conflict;
    char rejected[200];     /* why the last rejected name did not count */
};

static void offer(struct candidates *c, const char *identity, const char *user)
{
    if (identity_value_has_escapes(identity) || identity_value_has_escapes(user)) {
        snprintf(c->rejected, sizeof(c->rejected), "its name holds bytes that are not text");
        return;
    }
    if (!user_map_valid_user(user)) {
        snprintf(c->rejected, sizeof(c->rejected), "'%.64s' is not a valid user name", user);
        return;
    }
    if (strlen(identity) > LIMIT_IDENTITY) {
        snprintf(c->rejected, sizeof(c->rejected), "its name is too long");
        return;
    }
    if (c->found && strcmp(c->user, user) != 0) {
        c->conflict = 1;
        return;
    }
    if (!c->found) {
        snprintf(c->identity, sizeof(c->identity), "%s", identity);
        snprintf(c->user, sizeof(c->user), "%s", user);
        c->found = 1;
    }
}

static void offer_email(struct candidates *c, const char *email)
{
    const char *at = strrchr(email, '@');
    if (at == NULL || at == email) {
        snprintf(c->rejected, sizeof(c->rejected), "email '%.64s' has no local part", email);
        return;
    }
    char local[LIMIT_USER_NAME + 2];
    size_t len = (size_t)(at - email);
    if (len >= sizeof(local)) {
        snprintf(c->rejected, sizeof(c->rejected), "email '%.64s' has a local part too long "
                 "for a user name", email);
        return;
    }
    memcpy(local, email, len);
    local[len] = '\0';
    offer(c, email, local);
}

/* The last non-empty segment of the URI's path (query and fragment removed). */
static void offer_uri(struct candidates *c, const char *uri)
{
    const char *scheme_end = strstr(uri, "://");
    const char *path = scheme_end != NULL ? strchr(scheme_end + 3, '/') : strchr(uri, '/');
    if (path == NULL) {
        snprintf(c->rejected, sizeof(c->rejected), "URI '%.64s' has no path", uri);
        return;
    }
    size_t end = strcspn(path, "?#");
    while (end > 0 && path[end - 1] == '/')
        end--;
    size_t start = end;
    while (start > 0 && path[start - 1] != '/')
        start--;
    char segment[LIMIT_USER_NAME + 2];
    if (end == start || end - start >= sizeof(segment)) {
        snprintf(c->rejected, sizeof(c->rejected), "URI '%.64s' has no usable last path segment",
                 uri);
        return;
    }
    memcpy(segment, path + start, end - start);
    segment[end - start] = '\0';
    offer(c, uri, segment);
}

static const struct string_list *names_of(const struct identity *id, enum name_kind kind)
{
    switch (kind) {
    case NAME_EMAIL:
        return &id->email;
    case NAME_URI:
        return &id->uri;
    case NAME_DNS:
        return &id->dns;
    default:
        return NULL;
    }
}

static void offer_file_matches(const struct user_map *map, const struct identity *id,
                               struct candidates *c)
{
    for (size_t i = 0; i < map->count; i++) {
        const struct map_entry *entry = &map->entries[i];
        if (entry->kind == NAME_CN) {
            if (id->cn != NULL && strcmp(id->cn, entry->value) == 0)
                offer(c, id->cn, entry->user);
        } else if (entry->kind == NAME_SHA256) {
            if (strcmp(id->sha256, entry->value) == 0)
                offer(c, id->sha256, entry->user);
        } else {
            const struct string_list *names = names_of(id, entry->kind);
            int exact = entry->kind == NAME_URI;
            for (size_t n = 0; n < names->count; n++) {
                const char *name = names->items[n];
                if (exact ? strcmp(name, entry->value) == 0 : strcasecmp(name, entry->value) == 0)
                    offer(c, name, entry->user);
            }
        }
    }
}

int user_map_lookup(const struct user_map *map, const struct identity *id, char *identity,
                    char *user, char *reason, size_t reason_len)
{
    struct candidates c;
    memset(&c, 0, sizeof(c));
    const char *shown = id->cn != NULL ? id->cn : id->sha256;

    switch (map->kind) {
    case MAP_CN:
        if (id->cn == NULL) {
            snprintf(reason, reason_len, "the certificate has no commonName (user_map = cn)");
            return 0;
        }
        offer(&c, id->cn, id->cn);
        break;
    case MAP_EMAIL_LOCAL_PART:
        for (size_t i = 0; i < id->email.count; i++)
            offer_email(&c, id->email.items[i]);
        if (id->email.count == 0) {
            snprintf(reason, reason_len, "the certificate of %s has no email name "
                     "(user_map = email-local-part)", shown);
            return 0;
        }
        break;
    case MAP_URI_PATH:
        for (size_t i = 0; i < id->uri.count; i++)
            offer_uri(&c, id->uri.items[i]);
        if (id->uri.count == 0) {
            snprintf(reason, reason_len, "the certificate of %s has no URI name "
                     "(user_map = uri-path)", shown);
            return 0;
        }
        break;
    case MAP_FILE:
        offer_file_matches(map, id, &c);
        if (!c.found && c.rejected[0] == '\0') {
            snprintf(reason, reason_len, "%s (sha256 %.16s…) is not listed in %s", shown,
                     id->sha256, map->spec + 5);
            return 0;
        }
        break;
    }
    if (c.conflict) {
        snprintf(reason, reason_len, "the certificate of %s names more than one user "
                 "(%s); refusing to guess", shown, user_map_describe(map));
        return 0;
    }
    if (!c.found) {
        snprintf(reason, reason_len, "the certificate of %s maps to no user: %s", shown,
                 c.rejected);
        return 0;
    }
    memcpy(identity, c.identity, sizeof(c.identity));
    memcpy(user, c.user, sizeof(c.user));
    return 1;
}
