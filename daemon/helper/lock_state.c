#include "helper/lock_state.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/text.h"

#define STATE_MAGIC "ktlstun-lockout 1"

static int kind_from_name(const char *name, enum lock_policy_kind *kind)
{
    for (int k = 0; k < LOCK_POLICY_KINDS; k++) {
        if (strcmp(name, lock_policy_kind_name((enum lock_policy_kind)k)) == 0) {
            *kind = (enum lock_policy_kind)k;
            return 0;
        }
    }
    return -1;
}

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

static int unescape_key(const char *text, char *out, size_t cap)
{
    size_t used = 0;
    for (const char *p = text; *p != '\0'; p++) {
        if (used + 1 >= cap)
            return -1;
        if (*p == '%') {
            int high = text_hex_digit(p[1]), low = high >= 0 ? text_hex_digit(p[2]) : -1;
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

static int write_records(const struct lock_policy *table, FILE *file)
{
    if (fprintf(file, "# ktlstun second-factor lock state (written by ktlstund and "
                      "`ktlstun unlock`; do not edit while the daemon runs)\n%s\n",
                STATE_MAGIC) < 0)
        return -1;
    struct lock_policy_entry r;
    for (size_t i = 0; i < lock_policy_count(table); i++) {
        lock_policy_get(table, i, &r);
        char key[LIMIT_IDENTITY * 3 + 1];
        escape_key(r.key, key, sizeof(key));
        if (fprintf(file, "%s %s %s %u %lld %lld %u", r.tunnel, lock_policy_kind_name(r.kind), key,
                    r.level, (long long)r.locked_until, (long long)r.last_lock_end, r.count) < 0)
            return -1;
        for (unsigned f = 0; f < r.count; f++)
            if (fprintf(file, " %lld:%016llx", (long long)r.times[f],
                        (unsigned long long)r.tags[f]) < 0)
                return -1;
        if (fputc('\n', file) == EOF)
            return -1;
    }
    return 0;
}

int lock_state_save(const struct lock_policy *table, const char *path, char *err, size_t errlen)
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
    /* The new file takes the place of the old one with its owner and mode: `ktlstun
     * unlock` run as root while the daemon is stopped must leave the file readable by
     * the helper's user. The helper itself cannot give a file away; what it rewrites
     * becomes its own (it owns state_dir). */
    struct stat existing;
    if (stat(path, &existing) == 0) {
        if (fchown(fd, existing.st_uid, existing.st_gid) < 0 && geteuid() == 0) {
            snprintf(err, errlen, "cannot give %s the owner of %s: %s", temp, path,
                     strerror(errno));
            goto out_unlink;
        }
        if (fchmod(fd, existing.st_mode & 07777) < 0) {
            snprintf(err, errlen, "%s: %s", temp, strerror(errno));
            goto out_unlink;
        }
    } else if (errno != ENOENT) {
        snprintf(err, errlen, "cannot read the owner of %s: %s", path, strerror(errno));
        goto out_unlink;
    } else if (fchmod(fd, 0600) < 0) {
        snprintf(err, errlen, "%s: %s", temp, strerror(errno));
        goto out_unlink;
    }
    if ((file = fdopen(fd, "w")) == NULL) {
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

static int parse_line(struct lock_policy *table, char *line)
{
    char *save = NULL;
    char *fields[8 + LIMIT_MAX_FAILURES];
    unsigned n = 0;
    for (char *f = strtok_r(line, " \t\n", &save); f != NULL; f = strtok_r(NULL, " \t\n", &save)) {
        if (n == sizeof(fields) / sizeof(fields[0]))
            return -1;
        fields[n++] = f;
    }
    if (n < 7)
        return -1;
    struct lock_policy_entry entry;
    memset(&entry, 0, sizeof(entry));
    int64_t level, count;
    if (strlen(fields[0]) > LIMIT_TUNNEL_NAME || kind_from_name(fields[1], &entry.kind) < 0 ||
        unescape_key(fields[2], entry.key, sizeof(entry.key)) < 0 ||
        parse_int64(fields[3], &level) < 0 || parse_int64(fields[4], &entry.locked_until) < 0 ||
        parse_int64(fields[5], &entry.last_lock_end) < 0 || parse_int64(fields[6], &count) < 0 ||
        count > LIMIT_MAX_FAILURES || n != 7 + (unsigned)count || level > 64)
        return -1;
    memcpy(entry.tunnel, fields[0], strlen(fields[0]) + 1);
    entry.level = (unsigned)level;
    entry.count = (unsigned)count;
    for (unsigned i = 0; i < entry.count; i++) {
        char *colon = strchr(fields[7 + i], ':');
        char *end = NULL;
        if (colon != NULL) {
            *colon = '\0';
            errno = 0;
            entry.tags[i] = strtoull(colon + 1, &end, 16);
        }
        if (parse_int64(fields[7 + i], &entry.times[i]) < 0 ||
            (colon != NULL && (errno != 0 || end == colon + 1 || *end != '\0'))) {
            /* A bad failure field takes an earlier line of the same key with it. */
            lock_policy_forget(table, entry.tunnel, entry.kind, entry.key);
            return -1;
        }
    }
    return lock_policy_restore(table, &entry);
}

int lock_state_load(struct lock_policy *table, const char *path, char *err, size_t errlen)
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
        /* Indented too, or a record's tunnel could start with '#' and be saved as a
         * comment. */
        if (line[strspn(line, " \t")] == '#' || line[0] == '\n')
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
