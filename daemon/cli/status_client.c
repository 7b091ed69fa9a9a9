#include "cli/status_client.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <iniparser/iniparser.h>

#include "cli/cli_args.h"
#include "config/config.h"
#include "core/text.h"
#include "core/utc_time.h"
#include "proto/status_record.h"
#include "proto/status_socket.h"
#include "cli/unlock.h"

#define DEFAULT_RUNTIME_DIR "/run/ktlstun"

static void usage(FILE *out)
{
    fprintf(out, "usage: ktlstun status [--json] [-c FILE]\n");
}

struct collected {
    char **lines;            /* owned; records point into them */
    struct status_record *records;
    size_t count, capacity;
    unsigned sockets_answered;
};

static int add_line(struct collected *all, const char *line)
{
    if (all->count == all->capacity) {
        size_t capacity = all->capacity ? all->capacity * 2 : 64;
        char **lines = realloc(all->lines, capacity * sizeof(*lines));
        if (lines == NULL)
            return -1;
        all->lines = lines;
        struct status_record *records = realloc(all->records, capacity * sizeof(*records));
        if (records == NULL)
            return -1;
        all->records = records;
        all->capacity = capacity;
    }
    char *copy = strdup(line);
    if (copy == NULL)
        return -1;
    if (status_record_parse(copy, &all->records[all->count]) < 0) {
        free(copy);
        return 0;   /* a line we cannot read is skipped, not fatal */
    }
    all->lines[all->count++] = copy;
    return 0;
}

/* One line of a worker's answer. */
static int collect_line(char *line, void *arg)
{
    return add_line(arg, line);
}

/* Locks are the PAM helper's: its control socket lists them one per line,
 * "TUNNEL KIND KEY until EPOCH (level N)" (KEY may hold blanks). Not reachable (no
 * second factor, or not root) is not an error: there is simply nothing to show. */
/* Reads " until EPOCH (level N)" at TEXT. Returns 0, or -1 when it is not that. */
static int parse_lock_end(const char *text, long long *epoch, unsigned long *level)
{
    static const char until[] = " until ", level_text[] = " (level ";
    if (strncmp(text, until, sizeof(until) - 1) != 0)
        return -1;
    const char *p = text + sizeof(until) - 1;
    char *end;
    errno = 0;
    *epoch = strtoll(p, &end, 10);
    if (errno != 0 || end == p || strncmp(end, level_text, sizeof(level_text) - 1) != 0)
        return -1;
    p = end + sizeof(level_text) - 1;
    *level = strtoul(p, &end, 10);
    return errno != 0 || end == p || *end != ')' ? -1 : 0;
}

static void ask_locks(const char *runtime_dir, struct collected *all)
{
    char reply[16384];
    if (unlock_ask_daemon(runtime_dir, "list", reply, sizeof(reply)) < 0 ||
        strncmp(reply, "ok\n", 3) != 0)
        return;
    long long now = (long long)time(NULL);
    for (char *line = strtok(reply + 3, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char *until = strstr(line, " until ");
        char *first = strchr(line, ' ');
        char *second = first ? strchr(first + 1, ' ') : NULL;
        long long epoch = 0;
        unsigned long level = 0;
        if (until == NULL || second == NULL || second >= until ||
            parse_lock_end(until, &epoch, &level) < 0)
            continue;
        *first = *second = *until = '\0';
        char *text = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&text, &len);
        if (out == NULL)
            return;
        status_record_begin(out, "lock");
        status_record_text(out, "tunnel", line);
        status_record_text(out, "kind", first + 1);
        status_record_text(out, "key", second + 1);
        status_record_number(out, "locked_for", epoch > now ? (uint64_t)(epoch - now) : 0);
        status_record_number(out, "level", level);
        fclose(out);
        add_line(all, text);
        free(text);
    }
}

/* Every worker reports the grants of the one shared table: list each once. */
static int is_repeated_grant(const struct collected *all, size_t index)
{
    const struct status_record *r = &all->records[index];
    if (strcmp(r->kind, "grant") != 0)
        return 0;
    for (size_t i = 0; i < index; i++)
        if (strcmp(all->records[i].kind, "grant") == 0 &&
            strcmp(status_record_get(&all->records[i], "tunnel", ""), status_record_get(r, "tunnel", "")) == 0 &&
            strcmp(status_record_get(&all->records[i], "sha256", ""), status_record_get(r, "sha256", "")) == 0)
            return 1;
    return 0;
}


static int is_number_key(const char *key)
{
    static const char *const numbers[] = { "pid", "generation", "connections", "age_seconds",
                                           "bytes_in", "bytes_out", "active", "failures",
                                           "expires_in", "locked_for", "level", "buffer_bytes",
                                           "last_refusal_at", "packets_in", "packets_out",
                                           "dropped_invalid", "dropped_source",
                                           "dropped_device", "skipped_frames" };
    for (size_t i = 0; i < sizeof(numbers) / sizeof(numbers[0]); i++)
        if (strcmp(key, numbers[i]) == 0)
            return 1;
    return 0;
}

static int is_flag_key(const char *key)
{
    return strcmp(key, "draining") == 0 || strcmp(key, "ktls_tx") == 0 ||
           strcmp(key, "ktls_rx") == 0;
}

static void print_json_record(const struct status_record *record, const char *extra_key,
                              unsigned long long extra_value)
{
    putchar('{');
    for (size_t i = 0; i < record->count; i++) {
        if (i > 0)
            putchar(',');
        text_json_string(stdout, record->keys[i]);
        putchar(':');
        const char *value = record->values[i];
        if (is_number_key(record->keys[i]) && value[0] != '\0' &&
            strspn(value, "0123456789") == strlen(value))
            fputs(value, stdout);
        else if (is_flag_key(record->keys[i]))
            fputs(strcmp(value, "0") != 0 ? "true" : "false", stdout);
        else
            text_json_string(stdout, value);
    }
    if (extra_key != NULL)
        printf("%s\"%s\":%llu", record->count ? "," : "", extra_key, extra_value);
    putchar('}');
}

static unsigned long long newest_generation(const struct collected *all)
{
    unsigned long long newest = 0;
    for (size_t i = 0; i < all->count; i++)
        if (strcmp(all->records[i].kind, "tunnel") == 0) {
            unsigned long long g = strtoull(status_record_get(&all->records[i], "generation", "0"), NULL, 10);
            if (g > newest)
                newest = g;
        }
    return newest;
}

/* A tunnel is listed once, from the newest generation (older ones are draining). */
static int is_current_tunnel(const struct collected *all, size_t index, unsigned long long newest)
{
    const struct status_record *r = &all->records[index];
    if (strcmp(r->kind, "tunnel") != 0 ||
        strtoull(status_record_get(r, "generation", "0"), NULL, 10) != newest)
        return 0;
    const char *name = status_record_get(r, "name", "");
    for (size_t i = 0; i < index; i++)
        if (strcmp(all->records[i].kind, "tunnel") == 0 &&
            strtoull(status_record_get(&all->records[i], "generation", "0"), NULL, 10) == newest &&
            strcmp(status_record_get(&all->records[i], "name", ""), name) == 0)
            return 0;
    return 1;
}

static unsigned long long active_on(const struct collected *all, const char *tunnel)
{
    unsigned long long count = 0;
    for (size_t i = 0; i < all->count; i++)
        if (strcmp(all->records[i].kind, "conn") == 0 &&
            strcmp(status_record_get(&all->records[i], "tunnel", ""), tunnel) == 0)
            count++;
    return count;
}

static void print_json_array(const struct collected *all, const char *kind, const char *name,
                             int *first_array)
{
    unsigned long long newest = newest_generation(all);
    printf("%s\"%s\":[", *first_array ? "" : ",", name);
    *first_array = 0;
    int first = 1;
    for (size_t i = 0; i < all->count; i++) {
        const struct status_record *r = &all->records[i];
        if (strcmp(r->kind, kind) != 0)
            continue;
        if ((strcmp(kind, "tunnel") == 0 && !is_current_tunnel(all, i, newest)) ||
            is_repeated_grant(all, i))
            continue;
        if (!first)
            putchar(',');
        first = 0;
        if (strcmp(kind, "tunnel") == 0)
            print_json_record(r, "active", active_on(all, status_record_get(r, "name", "")));
        else
            print_json_record(r, NULL, 0);
    }
    putchar(']');
}

static void print_json(const struct collected *all)
{
    int first_array = 1;
    putchar('{');
    print_json_array(all, "worker", "workers", &first_array);
    print_json_array(all, "tunnel", "tunnels", &first_array);
    print_json_array(all, "conn", "connections", &first_array);
    /* Other record kinds (grants, locks, ...) become arrays named after them. */
    for (size_t i = 0; i < all->count; i++) {
        const char *kind = all->records[i].kind;
        if (strcmp(kind, "worker") == 0 || strcmp(kind, "tunnel") == 0 || strcmp(kind, "conn") == 0)
            continue;
        int seen = 0;
        for (size_t j = 0; j < i && !seen; j++)
            seen = strcmp(all->records[j].kind, kind) == 0;
        if (!seen) {
            char plural[64];
            snprintf(plural, sizeof(plural), "%ss", kind);
            print_json_array(all, kind, plural, &first_array);
        }
    }
    puts("}");
}

/* An address of R's KEY as shown in the table: "-" when the tunnel has none (a network
 * client listens nowhere, a network hub has no target: the worker sends ":0"). */
static const char *address_shown(const struct status_record *r, const char *key)
{
    const char *value = status_record_get(r, key, "");
    return value[0] == '\0' || strcmp(value, ":0") == 0 ? "-" : value;
}

static void human_bytes(unsigned long long bytes, char *buf, size_t len)
{
    const char *units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
    double value = (double)bytes;
    size_t unit = 0;
    while (value >= 1024 && unit + 1 < sizeof(units) / sizeof(units[0])) {
        value /= 1024;
        unit++;
    }
    snprintf(buf, len, unit == 0 ? "%.0f%s" : "%.1f%s", value, units[unit]);
}

static void print_grants_and_locks(const struct collected *all)
{
    int header = 0;
    for (size_t i = 0; i < all->count; i++) {
        const struct status_record *r = &all->records[i];
        if (strcmp(r->kind, "grant") != 0 || is_repeated_grant(all, i))
            continue;
        if (!header++)
            printf("\n%-16s %-32s %-18s %s\n", "TUNNEL", "GRANTED TO", "FROM", "EXPIRES IN");
        unsigned long long left = strtoull(status_record_get(r, "expires_in", "0"), NULL, 10);
        printf("%-16s %-32.32s %-18s %lluh%02llum\n", status_record_get(r, "tunnel", ""),
               status_record_get(r, "identity", ""), status_record_get(r, "source", ""),
               left / 3600, left / 60 % 60);
    }
    header = 0;
    for (size_t i = 0; i < all->count; i++) {
        const struct status_record *r = &all->records[i];
        if (strcmp(r->kind, "lock") != 0)
            continue;
        if (!header++)
            printf("\n%-16s %-9s %-32s %-10s %s\n", "TUNNEL", "LOCKED", "WHO", "FOR", "LEVEL");
        unsigned long long left = strtoull(status_record_get(r, "locked_for", "0"), NULL, 10);
        printf("%-16s %-9s %-32.32s %lluh%02llum%02llus %s\n", status_record_get(r, "tunnel", ""),
               status_record_get(r, "kind", ""), status_record_get(r, "key", ""), left / 3600,
               left / 60 % 60, left % 60, status_record_get(r, "level", ""));
    }
}

/* Each tunnel's last refusal: for a client tunnel the one it received, for a server
 * tunnel the one it gave. */
/* The network tunnels' connections again, with what only they have: device, tunnel
 * address, packets, and the packets dropped by reason. */
static void print_network_peers(const struct collected *all)
{
    int header = 0;
    for (size_t i = 0; i < all->count; i++) {
        const struct status_record *r = &all->records[i];
        if (strcmp(r->kind, "conn") != 0 || status_record_get(r, "device", NULL) == NULL)
            continue;
        if (!header)
            printf("\n%-16s %-22s %-15s %-20s %10s %10s %s\n", "NETWORK TUNNEL", "PEER", "DEVICE",
                   "ADDRESS", "PKTS IN", "PKTS OUT", "DROPPED source/invalid/device");
        header = 1;
        printf("%-16s %-22s %-15s %-20s %10s %10s %s/%s/%s\n", status_record_get(r, "tunnel", ""),
               status_record_get(r, "peer", ""), status_record_get(r, "device", ""),
               status_record_get(r, "address", "-"), status_record_get(r, "packets_in", "0"),
               status_record_get(r, "packets_out", "0"), status_record_get(r, "dropped_source", "0"),
               status_record_get(r, "dropped_invalid", "0"),
               status_record_get(r, "dropped_device", "0"));
    }
}

static void print_last_refusals(const struct collected *all, unsigned long long newest)
{
    int header = 0;
    for (size_t i = 0; i < all->count; i++) {
        const struct status_record *r = &all->records[i];
        const char *words = status_record_get(r, "last_refusal", NULL);
        if (words == NULL || !is_current_tunnel(all, i, newest))
            continue;
        if (!header++)
            printf("\n%-16s %-20s %-24s %s\n", "TUNNEL", "LAST REFUSAL (UTC)", "WHO", "WHY");
        char when[32];
        utc_time_format((int64_t)strtoll(status_record_get(r, "last_refusal_at", "0"), NULL, 10),
                        when, sizeof(when));
        const char *who = status_record_get(r, "last_refusal_identity", "-");
        printf("%-16s %-20s %-24.24s %s\n", status_record_get(r, "name", ""), when, who, words);
    }
}

static void print_table(const struct collected *all)
{
    unsigned workers = 0, draining = 0, connections = 0;
    for (size_t i = 0; i < all->count; i++) {
        const struct status_record *r = &all->records[i];
        if (strcmp(r->kind, "worker") == 0) {
            workers++;
            draining += strcmp(status_record_get(r, "draining", "0"), "0") != 0;
        } else if (strcmp(r->kind, "conn") == 0) {
            connections++;
        }
    }
    unsigned long long newest = newest_generation(all);
    printf("ktlstund: %u workers (%u draining), configuration generation %llu, %u connections\n\n",
           workers, draining, newest, connections);
    printf("%-16s %-6s %-24s %-24s %-7s %s\n", "TUNNEL", "MODE", "LISTEN", "TARGET", "KTLS", "ACTIVE");
    for (size_t i = 0; i < all->count; i++) {
        const struct status_record *r = &all->records[i];
        if (!is_current_tunnel(all, i, newest))
            continue;
        const char *name = status_record_get(r, "name", "");
        printf("%-16s %-6s %-24s %-24s %-7s %llu\n", name, status_record_get(r, "mode", ""),
               address_shown(r, "listen"), address_shown(r, "target"),
               status_record_get(r, "ktls", ""), active_on(all, name));
    }
    print_last_refusals(all, newest);
    print_grants_and_locks(all);
    if (connections == 0)
        return;
    printf("\n%-16s %-22s %-24s %6s %9s %9s %-8s %-24s %s\n", "TUNNEL", "PEER", "IDENTITY", "AGE",
           "IN", "OUT", "TLS", "CIPHER", "KTLS");
    for (size_t i = 0; i < all->count; i++) {
        const struct status_record *r = &all->records[i];
        if (strcmp(r->kind, "conn") != 0)
            continue;
        char in[16], out[16];
        human_bytes(strtoull(status_record_get(r, "bytes_in", "0"), NULL, 10), in, sizeof(in));
        human_bytes(strtoull(status_record_get(r, "bytes_out", "0"), NULL, 10), out, sizeof(out));
        const char *subject = status_record_get(r, "subject", "");
        int tx = strcmp(status_record_get(r, "ktls_tx", "0"), "0") != 0;
        int rx = strcmp(status_record_get(r, "ktls_rx", "0"), "0") != 0;
        printf("%-16s %-22s %-24.24s %5ss %9s %9s %-8s %-24s %s\n",
               status_record_get(r, "tunnel", ""), status_record_get(r, "peer", ""),
               subject[0] ? subject : status_record_get(r, "state", ""),
               status_record_get(r, "age_seconds", "0"), in, out, status_record_get(r, "tls", ""),
               status_record_get(r, "cipher", ""),
               tx && rx ? "tx+rx" : tx ? "tx" : rx ? "rx" : "off");
    }
    print_network_peers(all);
}

/* Only runtime_dir is needed, so keys the operator may not read are not opened. */
char *status_client_runtime_dir(const char *config_path)
{
    if (access(config_path, R_OK) < 0) {
        fprintf(stderr, "ktlstun: %s: %s\n", config_path, strerror(errno));
        return NULL;
    }
    dictionary *ini = iniparser_load(config_path);
    if (ini == NULL) {
        fprintf(stderr, "ktlstun: %s: cannot be read as INI\n", config_path);
        return NULL;
    }
    char *dir = strdup(iniparser_getstring(ini, "global:runtime_dir", DEFAULT_RUNTIME_DIR));
    iniparser_freedict(ini);
    return dir;
}

int status_client_command(int argc, char **argv)
{
    static const struct cli_args_spec spec = {
        .own = { { "json", 0, 0 } }, .min_args = 0, .max_args = 0, .usage = usage,
    };
    struct cli_args args;
    int parsed = cli_args_parse(argc, argv, &spec, &args);
    if (parsed >= 0)
        return parsed;
    const char *config_path = args.config_path;
    int json = args.own[0] != NULL;

    char *dir = status_client_runtime_dir(config_path);
    if (dir == NULL)
        return 1;
    struct collected all = { 0 };
    all.sockets_answered = status_socket_ask_all(dir, collect_line, &all, NULL);
    if (all.sockets_answered > 0)
        ask_locks(dir, &all);
    int status = 0;
    if (all.sockets_answered == 0) {
        fprintf(stderr, "ktlstun: ktlstund is not running, or its status sockets in %s cannot "
                        "be reached (needs root or the daemon's group)\n", dir);
        status = 1;
    } else if (json) {
        print_json(&all);
    } else {
        print_table(&all);
    }
    for (size_t i = 0; i < all.count; i++)
        free(all.lines[i]);
    free(all.lines);
    free(all.records);
    free(dir);
    return status;
}
