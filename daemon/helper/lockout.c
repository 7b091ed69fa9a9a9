#include "helper/lockout.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define STATE_MAGIC "ktlstun-lockout 1"
#define LEVEL_DECAY (24 * 3600)

struct record {
    char tunnel[LOCKOUT_TUNNEL_MAX + 1];
    enum lockout_kind kind;
    char key[LOCKOUT_KEY_MAX + 1];
    unsigned level;
    int64_t locked_until;     /* 0: never locked or lifted */
    int64_t last_lock_end;    /* end of the latest lock, for the level's decay */
    unsigned count;
    int64_t times[LOCKOUT_MAX_FAILURES_LIMIT];
    uint64_t tags[LOCKOUT_MAX_FAILURES_LIMIT];
    unsigned char hashes[LOCKOUT_MAX_FAILURES_LIMIT][LOCKOUT_HASH_LEN];
    unsigned char hashed[LOCKOUT_MAX_FAILURES_LIMIT];
};

struct lockout {
    size_t count;
    size_t capacity;
    struct record *records;
};

const char *lockout_kind_name(enum lockout_kind kind)
{
    switch (kind) {
    case LOCKOUT_SOURCE:
        return "source";
    case LOCKOUT_HANDSHAKE:
        return "handshake";
    case LOCKOUT_IDENTITY:
    default:
        return "identity";
    }
}

static int kind_from_name(const char *name, enum lockout_kind *kind)
{
    for (int k = LOCKOUT_IDENTITY; k <= LOCKOUT_HANDSHAKE; k++) {
        if (strcmp(name, lockout_kind_name((enum lockout_kind)k)) == 0) {
            *kind = (enum lockout_kind)k;
            return 0;
        }
    }
    return -1;
}

struct lockout *lockout_create(void)
{
    return calloc(1, sizeof(struct lockout));
}

void lockout_free(struct lockout *table)
{
    if (table == NULL)
        return;
    if (table->records != NULL)
        OPENSSL_cleanse(table->records, table->capacity * sizeof(*table->records));
    free(table->records);
    free(table);
}

static struct record *find(const struct lockout *table, const char *tunnel, enum lockout_kind kind,
                           const char *key)
{
    for (size_t i = 0; i < table->count; i++) {
        struct record *r = &table->records[i];
        if (r->kind == kind && strcmp(r->key, key) == 0 && strcmp(r->tunnel, tunnel) == 0)
            return r;
    }
    return NULL;
}

static struct record *add(struct lockout *table, const char *tunnel, enum lockout_kind kind,
                          const char *key)
{
    if (strlen(tunnel) > LOCKOUT_TUNNEL_MAX || strlen(key) > LOCKOUT_KEY_MAX ||
        table->count >= LOCKOUT_MAX_RECORDS)
        return NULL;
    if (table->count == table->capacity) {
        size_t capacity = table->capacity ? table->capacity * 2 : 16;
        struct record *grown = calloc(capacity, sizeof(*grown));
        if (grown == NULL)
            return NULL;
        if (table->count > 0)
            memcpy(grown, table->records, table->count * sizeof(*grown));
        if (table->records != NULL)
            OPENSSL_cleanse(table->records, table->capacity * sizeof(*table->records));
        free(table->records);
        table->records = grown;
        table->capacity = capacity;
    }
    struct record *r = &table->records[table->count++];
    memset(r, 0, sizeof(*r));
    snprintf(r->tunnel, sizeof(r->tunnel), "%s", tunnel);
    snprintf(r->key, sizeof(r->key), "%s", key);
    r->kind = kind;
    return r;
}

static void remove_record(struct lockout *table, struct record *r)
{
    size_t index = (size_t)(r - table->records);
    OPENSSL_cleanse(r, sizeof(*r));
    if (index + 1 < table->count)
        memmove(r, r + 1, (table->count - index - 1) * sizeof(*r));
    table->count--;
}

/* Keeps only the failures younger than WINDOW, oldest first. */
static void drop_old_failures(struct record *r, int64_t now, uint64_t window)
{
    unsigned kept = 0;
    for (unsigned i = 0; i < r->count; i++) {
        if ((uint64_t)(now - r->times[i]) >= window && now >= r->times[i])
            continue;
        if (kept != i) {
            r->times[kept] = r->times[i];
            r->tags[kept] = r->tags[i];
            memcpy(r->hashes[kept], r->hashes[i], LOCKOUT_HASH_LEN);
            r->hashed[kept] = r->hashed[i];
        }
        kept++;
    }
    for (unsigned i = kept; i < r->count; i++) {
        OPENSSL_cleanse(r->hashes[i], LOCKOUT_HASH_LEN);
        r->hashed[i] = 0;
    }
    r->count = kept;
}

static void clear_failures(struct record *r)
{
    OPENSSL_cleanse(r->hashes, sizeof(r->hashes));
    memset(r->hashed, 0, sizeof(r->hashed));
    memset(r->times, 0, sizeof(r->times));
    memset(r->tags, 0, sizeof(r->tags));
    r->count = 0;
}

/* lockout * 2^(level-1), capped, without overflowing on large levels. */
static uint64_t lock_duration(uint64_t lockout, unsigned level)
{
    uint64_t duration = lockout;
    for (unsigned i = 1; i < level && duration < LOCKOUT_MAX_DURATION; i++)
        duration *= 2;
    return duration > LOCKOUT_MAX_DURATION ? LOCKOUT_MAX_DURATION : duration;
}

uint64_t lockout_tag(const char *name)
{
    uint64_t hash = 0xcbf29ce484222325ull;
    for (const unsigned char *p = (const unsigned char *)name; *p != '\0'; p++) {
        hash ^= *p;
        hash *= 0x100000001b3ull;
    }
    return hash != 0 ? hash : 1;
}

static unsigned distinct_tags(const struct record *r)
{
    unsigned distinct = 0;
    for (unsigned i = 0; i < r->count; i++) {
        unsigned seen = 0;
        for (unsigned j = 0; j < i && !seen; j++)
            seen = r->tags[j] == r->tags[i];
        distinct += !seen;
    }
    return distinct;
}

int64_t lockout_locked_until(const struct lockout *table, const char *tunnel,
                             enum lockout_kind kind, const char *key, int64_t now)
{
    const struct record *r = find(table, tunnel, kind, key);
    return r != NULL && r->locked_until > now ? r->locked_until : 0;
}

int lockout_record_failure(struct lockout *table, const struct lockout_policy *policy,
                           const char *tunnel, enum lockout_kind kind, const char *key,
                           const unsigned char *hash, uint64_t tag, int64_t now,
                           struct lockout_verdict *verdict)
{
    memset(verdict, 0, sizeof(*verdict));
    struct record *r = find(table, tunnel, kind, key);
    if (r == NULL && (r = add(table, tunnel, kind, key)) == NULL)
        return -1;
    unsigned max = policy->max_failures;
    if (max < 1)
        max = 1;
    if (max > LOCKOUT_MAX_FAILURES_LIMIT)
        max = LOCKOUT_MAX_FAILURES_LIMIT;
    verdict->level = r->level;
    if (r->locked_until > now) {
        verdict->locked_until = r->locked_until;
        return 0;
    }
    drop_old_failures(r, now, policy->window);
    verdict->failures = r->count;
    if (hash != NULL) {
        for (unsigned i = 0; i < r->count; i++)
            if (r->hashed[i] && CRYPTO_memcmp(r->hashes[i], hash, LOCKOUT_HASH_LEN) == 0)
                return 0;
    }
    if (r->count >= LOCKOUT_MAX_FAILURES_LIMIT) {
        /* Cannot happen with max <= the limit, but never write past the arrays. */
        return 0;
    }
    r->times[r->count] = now;
    r->tags[r->count] = tag;
    if (hash != NULL) {
        memcpy(r->hashes[r->count], hash, LOCKOUT_HASH_LEN);
        r->hashed[r->count] = 1;
    }
    r->count++;
    verdict->counted = 1;
    verdict->failures = r->count;
    if (r->count < max || distinct_tags(r) < policy->min_tags)
        return 0;
    if (r->level > 0 && r->last_lock_end > 0 && now - r->last_lock_end > LEVEL_DECAY)
        r->level = 0;
    r->level++;
    r->locked_until = now + (int64_t)lock_duration(policy->lockout, r->level);
    r->last_lock_end = r->locked_until;
    clear_failures(r);
    verdict->locked_now = 1;
    verdict->locked_until = r->locked_until;
    verdict->level = r->level;
    return 0;
}

int lockout_record_success(struct lockout *table, const char *tunnel, enum lockout_kind kind,
                           const char *key)
{
    struct record *r = find(table, tunnel, kind, key);
    if (r == NULL)
        return 0;
    remove_record(table, r);
    return 1;
}

int lockout_unlock(struct lockout *table, const char *key, int64_t now)
{
    int found = 0, lifted = 0;
    for (size_t i = 0; i < table->count;) {
        struct record *r = &table->records[i];
        if (strcmp(r->key, key) != 0) {
            i++;
            continue;
        }
        found = 1;
        if (r->locked_until > now) {
            lifted++;
            r->locked_until = 0;
            /* The lock ended now: the level's 24-hour memory starts here. */
            r->last_lock_end = now;
        }
        clear_failures(r);
        i++;
    }
    return found ? lifted : -1;
}

unsigned lockout_list(const struct lockout *table, int64_t now, char *buf, size_t cap)
{
    unsigned locks = 0;
    size_t used = 0;
    if (cap > 0)
        buf[0] = '\0';
    for (size_t i = 0; i < table->count; i++) {
        const struct record *r = &table->records[i];
        if (r->locked_until <= now)
            continue;
        locks++;
        if (used >= cap)
            continue;
        int n = snprintf(buf + used, cap - used, "%s %s %s until %lld (level %u)\n", r->tunnel,
                         lockout_kind_name(r->kind), r->key, (long long)r->locked_until, r->level);
        if (n > 0)
            used = (size_t)n < cap - used ? used + (size_t)n : cap;
    }
    return locks;
}

void lockout_prune(struct lockout *table, int64_t now, uint64_t max_window)
{
    for (size_t i = 0; i < table->count;) {
        struct record *r = &table->records[i];
        drop_old_failures(r, now, max_window);
        int level_counts = r->level > 0 && now - r->last_lock_end <= LEVEL_DECAY;
        if (r->locked_until <= now && r->count == 0 && !level_counts)
            remove_record(table, r);
        else
            i++;
    }
}

/* ------------------------------------------------------------------ state file */

static int plain_key_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           strchr("._@:/+=-", c) != NULL;
}

static void escape_key(const char *key, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t used = 0;
    for (const unsigned char *p = (const unsigned char *)key; *p != '\0' && used + 4 < cap; p++) {
        if (plain_key_char(*p)) {
            out[used++] = (char)*p;
        } else {
            out[used++] = '%';
            out[used++] = hex[*p >> 4];
            out[used++] = hex[*p & 15];
        }
    }
    out[used] = '\0';
}

static int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static int unescape_key(const char *text, char *out, size_t cap)
{
    size_t used = 0;
    for (const char *p = text; *p != '\0'; p++) {
        if (used + 1 >= cap)
            return -1;
        if (*p == '%') {
            int high = hex_value(p[1]), low = high >= 0 ? hex_value(p[2]) : -1;
            if (low < 0 || (high == 0 && low == 0))
                return -1;
            out[used++] = (char)(high * 16 + low);
            p += 2;
        } else if (plain_key_char((unsigned char)*p)) {
            out[used++] = *p;
        } else {
            return -1;
        }
    }
    out[used] = '\0';
    return used > 0 ? 0 : -1;
}

static int write_records(const struct lockout *table, FILE *file)
{
    if (fprintf(file, "# ktlstun second-factor lock state (written by ktlstund and "
                      "`ktlstun unlock`; do not edit while the daemon runs)\n%s\n",
                STATE_MAGIC) < 0)
        return -1;
    for (size_t i = 0; i < table->count; i++) {
        const struct record *r = &table->records[i];
        char key[LOCKOUT_KEY_MAX * 3 + 1];
        escape_key(r->key, key, sizeof(key));
        if (fprintf(file, "%s %s %s %u %lld %lld %u", r->tunnel, lockout_kind_name(r->kind), key,
                    r->level, (long long)r->locked_until, (long long)r->last_lock_end, r->count) < 0)
            return -1;
        for (unsigned f = 0; f < r->count; f++)
            if (fprintf(file, " %lld:%016llx", (long long)r->times[f],
                        (unsigned long long)r->tags[f]) < 0)
                return -1;
        if (fputc('\n', file) == EOF)
            return -1;
    }
    return 0;
}

int lockout_save(const struct lockout *table, const char *path, char *err, size_t errlen)
{
    int result = -1;
    char temp[4200];
    FILE *file = NULL;
    int fd = -1;

    if (snprintf(temp, sizeof(temp), "%s.XXXXXX", path) >= (int)sizeof(temp)) {
        snprintf(err, errlen, "%s: path too long", path);
        goto out;
    }
    fd = mkostemp(temp, O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot create a file next to %s: %s", path, strerror(errno));
        goto out;
    }
    if (fchmod(fd, 0600) < 0 || (file = fdopen(fd, "w")) == NULL) {
        snprintf(err, errlen, "%s: %s", temp, strerror(errno));
        goto out_unlink;
    }
    fd = -1;
    if (write_records(table, file) < 0 || fflush(file) != 0 || fsync(fileno(file)) < 0) {
        snprintf(err, errlen, "cannot write %s: %s", temp, strerror(errno));
        goto out_unlink;
    }
    if (fclose(file) != 0) {
        file = NULL;
        snprintf(err, errlen, "cannot write %s: %s", temp, strerror(errno));
        goto out_unlink;
    }
    file = NULL;
    if (rename(temp, path) < 0) {
        snprintf(err, errlen, "cannot replace %s: %s", path, strerror(errno));
        goto out_unlink;
    }
    /* The rename itself must reach the disk, or a crash could bring the old file back. */
    char directory_copy[4200];
    snprintf(directory_copy, sizeof(directory_copy), "%s", path);
    int dir_fd = open(dirname(directory_copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd >= 0) {
        fsync(dir_fd);
        close(dir_fd);
    }
    result = 0;
    goto out;
out_unlink:
    unlink(temp);
out:
    if (file != NULL)
        fclose(file);
    if (fd >= 0)
        close(fd);
    return result;
}

static int parse_int64(const char *text, int64_t *value)
{
    char *end;
    errno = 0;
    long long parsed = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || parsed < 0)
        return -1;
    *value = parsed;
    return 0;
}

static int parse_line(struct lockout *table, char *line)
{
    char *save = NULL;
    char *fields[8 + LOCKOUT_MAX_FAILURES_LIMIT];
    unsigned n = 0;
    for (char *f = strtok_r(line, " \t\n", &save); f != NULL; f = strtok_r(NULL, " \t\n", &save)) {
        if (n == sizeof(fields) / sizeof(fields[0]))
            return -1;
        fields[n++] = f;
    }
    if (n < 7)
        return -1;
    enum lockout_kind kind;
    char key[LOCKOUT_KEY_MAX + 1];
    int64_t level, locked_until, last_lock_end, count;
    if (strlen(fields[0]) > LOCKOUT_TUNNEL_MAX || kind_from_name(fields[1], &kind) < 0 ||
        unescape_key(fields[2], key, sizeof(key)) < 0 || parse_int64(fields[3], &level) < 0 ||
        parse_int64(fields[4], &locked_until) < 0 || parse_int64(fields[5], &last_lock_end) < 0 ||
        parse_int64(fields[6], &count) < 0 || count > LOCKOUT_MAX_FAILURES_LIMIT ||
        n != 7 + (unsigned)count || level > 64)
        return -1;
    struct record *r = find(table, fields[0], kind, key);
    if (r == NULL && (r = add(table, fields[0], kind, key)) == NULL)
        return -1;
    r->level = (unsigned)level;
    r->locked_until = locked_until;
    r->last_lock_end = last_lock_end;
    clear_failures(r);
    for (unsigned i = 0; i < (unsigned)count; i++) {
        char *colon = strchr(fields[7 + i], ':');
        char *end = NULL;
        if (colon != NULL) {
            *colon = '\0';
            errno = 0;
            r->tags[i] = strtoull(colon + 1, &end, 16);
        }
        if (parse_int64(fields[7 + i], &r->times[i]) < 0 ||
            (colon != NULL && (errno != 0 || end == colon + 1 || *end != '\0'))) {
            remove_record(table, r);
            return -1;
        }
    }
    r->count = (unsigned)count;
    return 0;
}

int lockout_load(struct lockout *table, const char *path, char *err, size_t errlen)
{
    int skipped = 0;
    char line[8192];
    FILE *file = fopen(path, "re");
    if (file == NULL) {
        if (errno == ENOENT)
            return 0;
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        return -1;
    }
    int seen_magic = 0;
    while (fgets(line, sizeof(line), file) != NULL) {
        if (line[0] == '#' || line[0] == '\n')
            continue;
        if (!seen_magic) {
            line[strcspn(line, "\n")] = '\0';
            if (strcmp(line, STATE_MAGIC) != 0) {
                snprintf(err, errlen, "%s is not a ktlstun lock state file", path);
                fclose(file);
                return -1;
            }
            seen_magic = 1;
            continue;
        }
        if (parse_line(table, line) < 0)
            skipped++;
    }
    if (ferror(file)) {
        snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
        fclose(file);
        return -1;
    }
    fclose(file);
    if (skipped > 0)
        snprintf(err, errlen, "%s: %d malformed line(s) skipped", path, skipped);
    return skipped;
}
