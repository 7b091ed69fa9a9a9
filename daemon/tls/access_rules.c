#include "tls/access_rules.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>

#include "core/log.h"

#define MAGIC "ktlstun-access-rules 1"

struct tunnel_rules {
    struct tunnel_config config;   /* only the fields access_rules.h lists */
    X509_STORE *store;
};

struct access_rules {
    unsigned generation;
    int64_t loaded_at;
    size_t count;
    struct tunnel_rules *tunnels;
};

int access_rules_write_header(FILE *out, unsigned generation, int64_t loaded_at)
{
    return fprintf(out, MAGIC "\ngeneration %u\nloaded_at %" PRId64 "\n", generation, loaded_at) < 0
               ? -1 : 0;
}

static int write_value(FILE *out, const char *tunnel, const char *key, const char *value)
{
    /* One value per line: INI values cannot hold a line break, so this never fires
     * for a configuration that loaded; it keeps a broken one from reading back as
     * another. */
    if (strchr(value, '\n') != NULL) {
        log_error("[%s] %s: a value with a line break cannot be handed to older workers", tunnel,
                  key);
        return -1;
    }
    return fprintf(out, "%s %s\n", key, value) < 0 ? -1 : 0;
}

static int write_list(FILE *out, const char *tunnel, const char *key, const struct string_list *list)
{
    for (size_t i = 0; i < list->count; i++)
        if (write_value(out, tunnel, key, list->items[i]) < 0)
            return -1;
    return 0;
}

/* Every certificate and CRL of CTX's trust store, as PEM in a new memory BIO, or NULL. */
static BIO *store_as_pem(SSL_CTX *ctx)
{
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    BIO *pem = BIO_new(BIO_s_mem());
    if (pem == NULL || !X509_STORE_lock(store)) {
        BIO_free(pem);
        return NULL;
    }
    int ok = 1;
    STACK_OF(X509_OBJECT) *objects = X509_STORE_get0_objects(store);
    for (int i = 0; ok && i < sk_X509_OBJECT_num(objects); i++) {
        const X509_OBJECT *object = sk_X509_OBJECT_value(objects, i);
        X509 *cert = X509_OBJECT_get0_X509(object);
        X509_CRL *crl = X509_OBJECT_get0_X509_CRL(object);
        if (cert != NULL)
            ok = PEM_write_bio_X509(pem, cert);
        else if (crl != NULL)
            ok = PEM_write_bio_X509_CRL(pem, crl);
    }
    X509_STORE_unlock(store);
    if (!ok) {
        BIO_free(pem);
        return NULL;
    }
    return pem;
}

int access_rules_write_tunnel(FILE *out, const struct tunnel_config *t, SSL_CTX *ctx)
{
    int result = -1;
    char number[32];
    const char *data = NULL;
    BIO *pem = store_as_pem(ctx);
    if (pem == NULL) {
        log_openssl(LOG_LEVEL_ERROR, "[%s] cannot encode the trust store for older workers", t->name);
        goto out;
    }
    long pem_len = BIO_get_mem_data(pem, &data);
    const char *server_name = t->server_name != NULL ? t->server_name
                              : t->target.kind == ADDRESS_INET ? t->target.host : NULL;
    snprintf(number, sizeof(number), "%" PRIu64, t->max_connection_lifetime);
    if (write_value(out, t->name, "tunnel", t->name) < 0 ||
        write_value(out, t->name, "mode", config_mode_name(t->mode)) < 0 ||
        (t->mode == TUNNEL_MODE_CLIENT && server_name != NULL &&
         write_value(out, t->name, "server_name", server_name) < 0) ||
        (t->crl != NULL && write_value(out, t->name, "crl", t->crl) < 0) ||
        write_value(out, t->name, "second_factor", t->second_factor == SECOND_FACTOR_PAM ? "pam" : "none") < 0 ||
        write_value(out, t->name, "bind_grant_to_address", t->bind_grant_to_address ? "1" : "0") < 0 ||
        write_value(out, t->name, "max_connection_lifetime", number) < 0 ||
        write_list(out, t->name, "allow_cn", &t->allow_cn) < 0 ||
        write_list(out, t->name, "allow_ou", &t->allow_ou) < 0 ||
        write_list(out, t->name, "allow_dns", &t->allow_dns) < 0 ||
        write_list(out, t->name, "allow_uri", &t->allow_uri) < 0 ||
        write_list(out, t->name, "allow_email", &t->allow_email) < 0 ||
        write_list(out, t->name, "pin_sha256", &t->pin_sha256) < 0)
        goto out;
    if (fprintf(out, "pem %ld\n", pem_len) < 0 ||
        fwrite(data, 1, (size_t)pem_len, out) != (size_t)pem_len || fputs("end\n", out) < 0)
        goto out;
    result = 0;
out:
    if (result < 0 && pem != NULL)
        log_error("[%s] cannot write the access rules for older workers", t->name);
    BIO_free(pem);
    return result;
}

static void free_tunnel_rules(struct tunnel_rules *r)
{
    struct tunnel_config *t = &r->config;
    free(t->name);
    free(t->server_name);
    free(t->crl);
    struct string_list *lists[] = { &t->allow_cn, &t->allow_ou, &t->allow_dns, &t->allow_uri,
                                    &t->allow_email, &t->pin_sha256 };
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        string_list_clear(lists[i]);
    X509_STORE_free(r->store);
}

void access_rules_free(struct access_rules *rules)
{
    if (rules == NULL)
        return;
    for (size_t i = 0; i < rules->count; i++)
        free_tunnel_rules(&rules->tunnels[i]);
    free(rules->tunnels);
    free(rules);
}

/* Where the reader is: TEXT is a NUL-terminated copy whose lines it cuts in place. */
struct reader {
    char *at, *end;
    unsigned line;
    struct access_rules *rules;
    struct tunnel_rules *tunnel;   /* the one being read, or NULL before the first */
};

static int parse_u64(const char *text, uint64_t *value)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || text[0] == '-')
        return -1;
    *value = v;
    return 0;
}

static int set_string(char **field, const char *value)
{
    free(*field);
    *field = strdup(value);
    return *field != NULL ? 0 : -1;
}

static struct tunnel_rules *add_tunnel(struct reader *rd, const char *name)
{
    struct access_rules *rules = rd->rules;
    struct tunnel_rules *grown = realloc(rules->tunnels, (rules->count + 1) * sizeof(*grown));
    if (grown == NULL)
        return NULL;
    rules->tunnels = grown;
    struct tunnel_rules *r = &grown[rules->count];
    memset(r, 0, sizeof(*r));
    /* No target travels: an empty inet host must never stand in for a server name. */
    r->config.target.kind = ADDRESS_UNIX;
    r->store = X509_STORE_new();
    if (r->store == NULL || set_string(&r->config.name, name) < 0) {
        X509_STORE_free(r->store);
        free(r->config.name);
        return NULL;
    }
    rules->count++;
    return r;
}

/* The PEM block of LEN bytes at the reader's position goes into the tunnel's store. */
static int read_pem(struct reader *rd, uint64_t len)
{
    int result = -1;
    if (len > (uint64_t)(rd->end - rd->at) || len > INT32_MAX)
        return -1;
    BIO *bio = BIO_new_mem_buf(rd->at, (int)len);
    STACK_OF(X509_INFO) *infos = bio != NULL ? PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL) : NULL;
    if (infos == NULL)
        goto out;
    for (int i = 0; i < sk_X509_INFO_num(infos); i++) {
        const X509_INFO *info = sk_X509_INFO_value(infos, i);
        if ((info->x509 != NULL && !X509_STORE_add_cert(rd->tunnel->store, info->x509)) ||
            (info->crl != NULL && !X509_STORE_add_crl(rd->tunnel->store, info->crl)))
            goto out;
    }
    /* As the tunnel's context has them (tls_context's load_crls). */
    if (rd->tunnel->config.crl != NULL)
        X509_STORE_set_flags(rd->tunnel->store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    for (const char *p = rd->at; p < rd->at + len; p++)
        if (*p == '\n')
            rd->line++;
    rd->at += len;
    result = 0;
out:
    sk_X509_INFO_pop_free(infos, X509_INFO_free);
    BIO_free(bio);
    ERR_clear_error();
    return result;
}

static int read_list_value(struct tunnel_config *t, const char *key, const char *value)
{
    struct { const char *key; struct string_list *list; } lists[] = {
        { "allow_cn", &t->allow_cn }, { "allow_ou", &t->allow_ou }, { "allow_dns", &t->allow_dns },
        { "allow_uri", &t->allow_uri }, { "allow_email", &t->allow_email },
        { "pin_sha256", &t->pin_sha256 },
    };
    for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++)
        if (strcmp(key, lists[i].key) == 0)
            return string_list_append(lists[i].list, value, strlen(value));
    return -1;
}

/* One line KEY VALUE of a tunnel's rules. Returns 0, or -1 when it is not one. */
static int read_tunnel_line(struct reader *rd, const char *key, const char *value)
{
    struct tunnel_config *t = &rd->tunnel->config;
    uint64_t number;
    if (strcmp(key, "mode") == 0 && (strcmp(value, "server") == 0 || strcmp(value, "client") == 0))
        t->mode = strcmp(value, "server") == 0 ? TUNNEL_MODE_SERVER : TUNNEL_MODE_CLIENT;
    else if (strcmp(key, "server_name") == 0 || strcmp(key, "crl") == 0)
        return set_string(strcmp(key, "crl") == 0 ? &t->crl : &t->server_name, value);
    else if (strcmp(key, "second_factor") == 0 && (strcmp(value, "pam") == 0 || strcmp(value, "none") == 0))
        t->second_factor = strcmp(value, "pam") == 0 ? SECOND_FACTOR_PAM : SECOND_FACTOR_NONE;
    else if (strcmp(key, "bind_grant_to_address") == 0 && parse_u64(value, &number) == 0 && number <= 1)
        t->bind_grant_to_address = (int)number;
    else if (strcmp(key, "max_connection_lifetime") == 0 && parse_u64(value, &number) == 0)
        t->max_connection_lifetime = number;
    else if (strcmp(key, "pem") == 0 && parse_u64(value, &number) == 0)
        return read_pem(rd, number);
    else
        return read_list_value(t, key, value);
    return 0;
}

/* Cuts the next line; returns it, or NULL at the end of the text. */
static char *next_line(struct reader *rd)
{
    if (rd->at >= rd->end)
        return NULL;
    char *line = rd->at;
    char *newline = memchr(line, '\n', (size_t)(rd->end - line));
    if (newline == NULL) {
        rd->at = rd->end;
    } else {
        *newline = '\0';
        rd->at = newline + 1;
    }
    rd->line++;
    return line;
}

static int read_line(struct reader *rd, char *line)
{
    char *value = strchr(line, ' ');
    if (value == NULL)
        return strcmp(line, "end") == 0 && rd->tunnel != NULL ? 0 : -1;
    *value++ = '\0';
    uint64_t number;
    if (strcmp(line, "generation") == 0 && parse_u64(value, &number) == 0 && number <= UINT32_MAX)
        rd->rules->generation = (unsigned)number;
    else if (strcmp(line, "loaded_at") == 0 && parse_u64(value, &number) == 0 && number <= INT64_MAX)
        rd->rules->loaded_at = (int64_t)number;
    else if (strcmp(line, "tunnel") == 0)
        return (rd->tunnel = add_tunnel(rd, value)) != NULL ? 0 : -1;
    else if (rd->tunnel == NULL)
        return -1;
    else
        return read_tunnel_line(rd, line, value);
    return 0;
}

struct access_rules *access_rules_read(const char *text, size_t len)
{
    char *copy = malloc(len + 1);
    struct access_rules *rules = calloc(1, sizeof(*rules));
    if (copy == NULL || rules == NULL) {
        log_error("access rules: out of memory");
        goto fail;
    }
    memcpy(copy, text, len);
    copy[len] = '\0';
    struct reader rd = { .at = copy, .end = copy + len, .rules = rules };
    char *line = next_line(&rd);
    if (line == NULL || strcmp(line, MAGIC) != 0) {
        log_error("access rules: not a ktlstun access rules text");
        goto fail;
    }
    while ((line = next_line(&rd)) != NULL) {
        if (read_line(&rd, line) < 0) {
            log_error("access rules: line %u cannot be read", rd.line);
            goto fail;
        }
    }
    free(copy);
    return rules;
fail:
    free(copy);
    access_rules_free(rules);
    return NULL;
}

unsigned access_rules_generation(const struct access_rules *rules)
{
    return rules->generation;
}

int64_t access_rules_loaded_at(const struct access_rules *rules)
{
    return rules->loaded_at;
}

const struct tunnel_config *access_rules_tunnel(const struct access_rules *rules,
                                                const char *name, X509_STORE **store)
{
    for (size_t i = 0; i < rules->count; i++) {
        if (strcmp(rules->tunnels[i].config.name, name) == 0) {
            if (store != NULL)
                *store = rules->tunnels[i].store;
            return &rules->tunnels[i].config;
        }
    }
    return NULL;
}
