/* fuzz_user_map — libFuzzer target for the user map: the file of a "file:" map
 * (user_map_parse), and the mapping of certificate names (user_map_lookup), which come
 * from the peer's certificate.
 *
 * The input is the map file. Then the first word of each of its first lines, its
 * "cn:" / "email:" / ... prefix taken off, is a certificate's CN, email, URI and DNS
 * name, looked up in that map and in the cn, email-local-part and uri-path maps.
 * Checked: a refused file or name comes with a reason; a mapped name yields a valid
 * user name and one of the certificate's own names, never one with escapes.
 *
 *   make fuzz FUZZ_RUN=user_map
 * tests/unit/test_fuzz_corpus.c replays the corpus in `make check` without clang. */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fuzz_check.h"
#include "config/user_map.h"
#include "core/identity.h"
#include "fuzz_file.h"

#define MAX_NAMES 8

static int is_name_of(const struct identity *id, const char *name)
{
    if ((id->cn != NULL && strcmp(id->cn, name) == 0) || strcmp(id->sha256, name) == 0)
        return 1;
    const struct string_list *lists[] = { &id->email, &id->uri, &id->dns };
    for (size_t l = 0; l < 3; l++)
        for (size_t i = 0; i < lists[l]->count; i++)
            if (strcmp(lists[l]->items[i], name) == 0)
                return 1;
    return 0;
}

static void check_lookup(const struct user_map *map, const struct identity *id)
{
    char identity[LIMIT_IDENTITY + 1], user[LIMIT_USER_NAME + 1], reason[512] = "";
    memset(identity, 0x5a, sizeof(identity));
    memset(user, 0x5a, sizeof(user));
    if (user_map_lookup(map, id, identity, user, reason, sizeof(reason))) {
        CHECK(memchr(identity, '\0', sizeof(identity)) != NULL);
        CHECK(memchr(user, '\0', sizeof(user)) != NULL);
        CHECK(user_map_valid_user(user));
        CHECK(is_name_of(id, identity));
        CHECK(!identity_value_has_escapes(identity));
    } else {
        CHECK(reason[0] != '\0' && strlen(reason) < sizeof(reason));
    }
}

/* NAME (the first word of a line, prefix taken off) as every name of a certificate. */
static void check_name(const struct user_map *const *maps, size_t map_count, char *name)
{
    char *items[1] = { name };
    struct identity id;
    memset(&id, 0, sizeof(id));
    id.cn = name;
    id.email.items = id.uri.items = id.dns.items = items;
    id.email.count = id.uri.count = id.dns.count = 1;
    size_t i = 0;
    for (; i < 64 && name[i] != '\0'; i++)
        id.sha256[i] = (char)tolower((unsigned char)name[i]);
    for (; i < 64; i++)
        id.sha256[i] = '0';
    for (size_t m = 0; m < map_count; m++)
        check_lookup(maps[m], &id);
}

static void check_names(const struct user_map *const *maps, size_t map_count,
                        const uint8_t *data, size_t size)
{
    static const char *const prefixes[] = { "cn:", "email:", "uri:", "dns:", "sha256:" };
    char *copy = malloc(size + 1);
    CHECK(copy != NULL);
    memcpy(copy, data, size);
    copy[size] = '\0';
    char *save = NULL;
    char *line = strtok_r(copy, "\n", &save);
    for (int n = 0; line != NULL && n < MAX_NAMES; n++, line = strtok_r(NULL, "\n", &save)) {
        char *word = line + strspn(line, " \t");
        word[strcspn(word, " \t\r#")] = '\0';
        for (size_t p = 0; p < sizeof(prefixes) / sizeof(prefixes[0]); p++) {
            size_t len = strlen(prefixes[p]);
            if (strncasecmp(word, prefixes[p], len) == 0) {
                word += len;
                break;
            }
        }
        check_name(maps, map_count, word);
    }
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct user_map *fixed[3];
    char err[512] = "";
    if (fixed[0] == NULL) {
        fixed[0] = user_map_parse("cn", NULL, err, sizeof(err));
        fixed[1] = user_map_parse("email-local-part", NULL, err, sizeof(err));
        fixed[2] = user_map_parse("uri-path", NULL, err, sizeof(err));
        CHECK(fixed[0] != NULL && fixed[1] != NULL && fixed[2] != NULL);
    }
    const char *path = fuzz_file_path(data, size);
    char spec[128];
    snprintf(spec, sizeof(spec), "file:%s", path);
    struct user_map *map = user_map_parse(spec, NULL, err, sizeof(err));
    if (map == NULL) {
        CHECK(err[0] != '\0' && strlen(err) < sizeof(err));
        check_names((const struct user_map *const *)fixed, 3, data, size);
        return 0;
    }
    CHECK(strcmp(user_map_describe(map), spec) == 0);
    const struct user_map *maps[] = { map, fixed[0], fixed[1], fixed[2] };
    check_names(maps, 4, data, size);
    user_map_free(map);
    return 0;
}
