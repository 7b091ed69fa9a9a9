#include "config/proxy_keys.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#define HTTP_SCHEME "http://"
/* "user:password" on one line; a longer file is not a credentials file. */
#define CREDENTIALS_MAX 512

static int set_proxy_protocol(struct config_loader *ld, const struct ini_section *section,
                              const struct ini_key *key, struct tunnel_config *tunnel)
{
    if (tunnel->type == TUNNEL_TYPE_NETWORK) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "a network tunnel has no target to send a PROXY header to");
        return -1;
    }
    if (strcasecmp(key->value, "none") == 0)
        tunnel->proxy_protocol = PROXY_PROTOCOL_NONE;
    else if (strcasecmp(key->value, "v2") == 0)
        tunnel->proxy_protocol = PROXY_PROTOCOL_V2;
    else {
        config_loader_error(ld, key->line, section->name, key->name,
                            "'%s' is not a PROXY protocol version (use none or v2)", key->value);
        return -1;
    }
    return 0;
}

static int set_proxy(struct config_loader *ld, const struct ini_section *section,
                     const struct ini_key *key, struct tunnel_config *tunnel)
{
    struct proxy_config *proxy = &tunnel->proxy;
    const char *value = key->value;
    const char *reason;
    char text[300], error[512];

    /* A network client dials its hub as a stream client dials its server; a hub
     * dials nothing. */
    if (tunnel->type == TUNNEL_TYPE_NETWORK && tunnel->mode != TUNNEL_MODE_CLIENT) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "a hub dials no server: only a client goes through an HTTP proxy");
        return -1;
    }
    if (strcasecmp(value, "none") == 0) {
        proxy->enabled = 0;
        return 0;
    }
    if (strncasecmp(value, HTTP_SCHEME, strlen(HTTP_SCHEME)) != 0) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "'%s' is not an HTTP proxy: only http://HOST:PORT is supported "
                            "(the tunnel's own TLS protects what crosses it)", value);
        return -1;
    }
    value += strlen(HTTP_SCHEME);
    size_t len = strcspn(value, "/");
    if (strchr(value, '@') != NULL) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "no user or password in the URL: put them in proxy_credentials");
        return -1;
    }
    if (len >= sizeof(text) || (value[len] == '/' && value[len + 1] != '\0')) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "use http://HOST:PORT, without a path");
        return -1;
    }
    memcpy(text, value, len);
    text[len] = '\0';
    if (address_parse(text, &proxy->address, &reason) < 0 ||
        (proxy->address.kind != ADDRESS_INET && (reason = "use http://HOST:PORT") != NULL)) {
        config_loader_error(ld, key->line, section->name, key->name, "%s", reason);
        return -1;
    }
    if (address_resolve(&proxy->address, &proxy->addr, &proxy->addr_len, error,
                        sizeof(error)) < 0) {
        config_loader_error(ld, key->line, section->name, key->name, "%s", error);
        return -1;
    }
    proxy->enabled = 1;
    return 0;
}

/* Reads PATH's one "user:password" line into LINE (CAP bytes). Returns 0, or -1 with
 * the reason in WHY. The file is held as ssh holds a key: not for others' eyes. */
static int read_credentials(const char *path, char *line, size_t cap, const char **why)
{
    int result = -1;
    struct stat st;
    ssize_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);

    if (fd < 0) {
        *why = strerror(errno);
        goto out;
    }
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        *why = "not a regular file";
        goto out;
    }
    if ((st.st_mode & (S_IRWXO | S_IWGRP)) != 0) {
        *why = "open to other users (chmod 600 or 640 it): it holds a password";
        goto out;
    }
    got = read(fd, line, cap - 1);
    if (got < 0) {
        *why = strerror(errno);
        goto out;
    }
    line[got] = '\0';
    if ((size_t)got == cap - 1) {
        *why = "too long for one user:password line";
        goto out;
    }
    size_t len = strcspn(line, "\r\n");
    if (line[len + strspn(line + len, "\r\n")] != '\0') {
        *why = "more than one line (write user:password on one line)";
        goto out;
    }
    line[len] = '\0';
    const char *colon = strchr(line, ':');
    if (colon == NULL || colon == line) {
        *why = "not user:password";
        goto out;
    }
    for (const char *c = line; *c != '\0'; c++) {
        if ((unsigned char)*c < 0x20 || *c == 0x7f) {
            *why = "a control character in user:password";
            goto out;
        }
    }
    result = 0;
out:
    if (fd >= 0)
        close(fd);
    return result;
}

static int set_proxy_credentials(struct config_loader *ld, const struct ini_section *section,
                                 const struct ini_key *key, struct tunnel_config *tunnel)
{
    struct proxy_config *proxy = &tunnel->proxy;
    char line[CREDENTIALS_MAX];
    const char *why = NULL;
    int result = -1;

    if (config_loader_file(ld, section, key, 0, &proxy->credentials, NULL) < 0)
        return -1;
    if (read_credentials(proxy->credentials, line, sizeof(line), &why) < 0) {
        config_loader_error(ld, key->line, section->name, key->name, "%s: %s",
                            proxy->credentials, why);
        goto out;
    }
    size_t len = strlen(line);
    size_t room = 4 * ((len + 2) / 3) + 1;
    if (proxy->basic != NULL)
        OPENSSL_clear_free(proxy->basic, strlen(proxy->basic));
    if ((proxy->basic = malloc(room)) == NULL) {
        ld->out_of_memory = 1;
        goto out;
    }
    EVP_EncodeBlock((unsigned char *)proxy->basic, (const unsigned char *)line, (int)len);
    result = 0;
out:
    OPENSSL_cleanse(line, sizeof(line));
    return result;
}

static const struct config_tunnel_key proxy_keys[] = {
    { "proxy_protocol", SCOPE_SERVER, 0, set_proxy_protocol },
    { "proxy", SCOPE_CLIENT, 0, set_proxy },
    { "proxy_credentials", SCOPE_CLIENT, 0, set_proxy_credentials },
};

const struct config_tunnel_key *proxy_keys_list(size_t *count)
{
    *count = sizeof(proxy_keys) / sizeof(proxy_keys[0]);
    return proxy_keys;
}

void proxy_keys_defaults(struct tunnel_config *tunnel)
{
    tunnel->proxy_protocol = PROXY_PROTOCOL_NONE;
    memset(&tunnel->proxy, 0, sizeof(tunnel->proxy));
}

int proxy_keys_finish(struct config_loader *ld, const struct ini_section *section,
                      struct tunnel_config *tunnel)
{
    const struct proxy_config *proxy = &tunnel->proxy;
    const struct ini_key *credentials = ini_source_find_key(section, "proxy_credentials");

    if (proxy->basic != NULL && !proxy->enabled && credentials != NULL) {
        config_loader_error(ld, credentials->line, section->name, credentials->name,
                            "needs proxy = http://HOST:PORT");
        return -1;
    }
    if (proxy->enabled && tunnel->target.kind != ADDRESS_INET) {
        const struct ini_key *key = ini_source_find_key(section, "proxy");
        config_loader_error(ld, key != NULL ? key->line : section->line, section->name,
                            "proxy", "an HTTP proxy needs a target HOST:PORT, not a socket");
        return -1;
    }
    return 0;
}

void proxy_keys_free(struct tunnel_config *tunnel)
{
    if (tunnel->proxy.basic != NULL)
        OPENSSL_clear_free(tunnel->proxy.basic, strlen(tunnel->proxy.basic));
    tunnel->proxy.basic = NULL;
    free(tunnel->proxy.credentials);
    tunnel->proxy.credentials = NULL;
}
