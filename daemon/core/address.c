#include "core/address.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <net/if.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/un.h>

#define UNIX_PREFIX "unix:"
#define SYSTEMD_PREFIX "systemd:"

/* Digits only: "+443", " 443" and "0x1bb" are typos, not ports. */
static int parse_port(const char *text, uint16_t *port, const char **reason)
{
    unsigned long value = 0;

    if (*text == '\0') {
        *reason = "missing port";
        return -1;
    }
    for (const char *cursor = text; *cursor != '\0'; cursor++) {
        if (!isdigit((unsigned char)*cursor)) {
            *reason = "port must be a number";
            return -1;
        }
        value = value * 10 + (unsigned long)(*cursor - '0');
        if (value > 65535) {
            *reason = "port out of range (1-65535)";
            return -1;
        }
    }
    if (value == 0) {
        *reason = "port out of range (1-65535)";
        return -1;
    }
    *port = (uint16_t)value;
    return 0;
}

/* Names, IPv4 literals and "*": the characters of DNS names plus '_' (SRV-style labels
 * exist in /etc/hosts files). Anything else is a typo we can point at now rather than
 * a resolver error later. */
static int valid_host_name(const char *host)
{
    if (strcmp(host, "*") == 0)
        return 1;
    for (const char *cursor = host; *cursor != '\0'; cursor++) {
        unsigned char c = (unsigned char)*cursor;
        if (!isalnum(c) && c != '-' && c != '.' && c != '_')
            return 0;
    }
    return 1;
}

static int valid_ipv6_literal(const char *literal)
{
    char copy[INET6_ADDRSTRLEN + 32];
    struct in6_addr ignored;

    size_t len = strlen(literal);
    if (len >= sizeof(copy))
        return 0;
    memcpy(copy, literal, len + 1);
    /* A zone ("fe80::1%eth0") is for getaddrinfo to resolve; inet_pton rejects it. */
    char *zone = strchr(copy, '%');
    if (zone != NULL) {
        if (zone[1] == '\0')
            return 0;
        *zone = '\0';
    }
    return inet_pton(AF_INET6, copy, &ignored) == 1;
}

static int parse_unix(const char *path, struct address *out, const char **reason)
{
    if (path[0] == '\0') {
        *reason = "missing unix socket path";
        return -1;
    }
    if (path[0] != '/') {
        *reason = "unix socket path must be absolute";
        return -1;
    }
    size_t len = strlen(path);
    if (len >= sizeof(out->path)) {
        *reason = "unix socket path too long (at most 107 bytes)";
        return -1;
    }
    out->kind = ADDRESS_UNIX;
    memcpy(out->path, path, len + 1);
    return 0;
}

/* systemd accepts up to 255 printable ASCII characters except ':' in a
 * FileDescriptorName. */
static int parse_systemd(const char *name, struct address *out, const char **reason)
{
    size_t len = strlen(name);
    if (len == 0) {
        *reason = "missing socket name after systemd:";
        return -1;
    }
    if (len >= sizeof(out->fd_name)) {
        *reason = "systemd socket name too long (at most 255 characters)";
        return -1;
    }
    for (const char *cursor = name; *cursor != '\0'; cursor++) {
        if (*cursor <= ' ' || *cursor > '~' || *cursor == ':') {
            *reason = "systemd socket names are printable ASCII without ':' or blanks";
            return -1;
        }
    }
    out->kind = ADDRESS_SYSTEMD;
    memcpy(out->fd_name, name, len + 1);
    return 0;
}

static int parse_bracketed(const char *text, struct address *out, const char **reason)
{
    const char *close = strchr(text, ']');
    if (close == NULL) {
        *reason = "missing ']' after IPv6 address";
        return -1;
    }
    size_t host_len = (size_t)(close - text - 1);
    if (host_len == 0) {
        *reason = "missing IPv6 address between '[' and ']'";
        return -1;
    }
    if (host_len >= sizeof(out->host)) {
        *reason = "invalid IPv6 address in brackets";
        return -1;
    }
    memcpy(out->host, text + 1, host_len);
    out->host[host_len] = '\0';
    if (!valid_ipv6_literal(out->host)) {
        *reason = "invalid IPv6 address in brackets";
        return -1;
    }
    if (close[1] == '\0') {
        *reason = "missing port";
        return -1;
    }
    if (close[1] != ':') {
        *reason = "expected ':' and a port after ']'";
        return -1;
    }
    out->kind = ADDRESS_INET;
    return parse_port(close + 2, &out->port, reason);
}

int address_parse(const char *text, struct address *out, const char **reason)
{
    int result = -1;
    struct address parsed;

    memset(&parsed, 0, sizeof(parsed));
    if (text[0] == '\0') {
        *reason = "empty";
        goto out;
    }
    if (strncasecmp(text, UNIX_PREFIX, strlen(UNIX_PREFIX)) == 0) {
        result = parse_unix(text + strlen(UNIX_PREFIX), &parsed, reason);
        goto out;
    }
    if (strncasecmp(text, SYSTEMD_PREFIX, strlen(SYSTEMD_PREFIX)) == 0) {
        result = parse_systemd(text + strlen(SYSTEMD_PREFIX), &parsed, reason);
        goto out;
    }
    if (text[0] == '[') {
        result = parse_bracketed(text, &parsed, reason);
        goto out;
    }

    const char *colon = strrchr(text, ':');
    if (colon == NULL) {
        /* "::1" has colons, so it is reported below; a bare name or port lands here. */
        *reason = "missing port";
        goto out;
    }
    size_t host_len = (size_t)(colon - text);
    if (memchr(text, ':', host_len) != NULL) {
        *reason = "IPv6 literal needs brackets";
        goto out;
    }
    if (host_len == 0) {
        *reason = "missing host (use *:PORT for every address)";
        goto out;
    }
    if (host_len >= sizeof(parsed.host)) {
        *reason = "host name too long";
        goto out;
    }
    memcpy(parsed.host, text, host_len);
    parsed.host[host_len] = '\0';
    if (!valid_host_name(parsed.host)) {
        *reason = "invalid host name";
        goto out;
    }
    parsed.kind = ADDRESS_INET;
    result = parse_port(colon + 1, &parsed.port, reason);

out:
    if (result == 0)
        *out = parsed;
    return result;
}

char *address_format(const struct address *addr, char *buf, size_t len)
{
    if (addr->kind == ADDRESS_UNIX)
        snprintf(buf, len, UNIX_PREFIX "%s", addr->path);
    else if (addr->kind == ADDRESS_SYSTEMD)
        snprintf(buf, len, SYSTEMD_PREFIX "%s", addr->fd_name);
    else if (strchr(addr->host, ':') != NULL)
        snprintf(buf, len, "[%s]:%u", addr->host, (unsigned)addr->port);
    else
        snprintf(buf, len, "%s:%u", addr->host, (unsigned)addr->port);
    return buf;
}

static int resolve_unix(const struct address *addr, struct sockaddr_storage *ss, socklen_t *sslen,
                        char *err, size_t errlen)
{
    struct sockaddr_un *sun = (struct sockaddr_un *)ss;
    size_t path_len = strlen(addr->path);

    if (path_len == 0 || path_len >= sizeof(sun->sun_path)) {
        snprintf(err, errlen, "unix socket path must be 1 to %zu bytes",
                 sizeof(sun->sun_path) - 1);
        return -1;
    }
    memset(ss, 0, sizeof(*ss));
    sun->sun_family = AF_UNIX;
    memcpy(sun->sun_path, addr->path, path_len + 1);
    *sslen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + path_len + 1);
    return 0;
}

int address_resolve(const struct address *addr, struct sockaddr_storage *ss, socklen_t *sslen,
                    char *err, size_t errlen)
{
    int result = -1;
    struct addrinfo hints;
    struct addrinfo *found = NULL;
    char service[8];

    if (addr->kind == ADDRESS_UNIX)
        return resolve_unix(addr, ss, sslen, err, errlen);
    if (addr->kind == ADDRESS_SYSTEMD) {
        snprintf(err, errlen, "systemd:%s is a socket systemd passes, not an address", addr->fd_name);
        return -1;
    }

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV;
    const char *node = addr->host;
    if (strcmp(addr->host, "*") == 0) {
        node = NULL;
        hints.ai_flags |= AI_PASSIVE;
    }
    snprintf(service, sizeof(service), "%u", (unsigned)addr->port);

    int rc = getaddrinfo(node, service, &hints, &found);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve %s: %s", addr->host,
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        goto out;
    }
    if (found == NULL || found->ai_addrlen > sizeof(*ss)) {
        snprintf(err, errlen, "cannot resolve %s: no usable address", addr->host);
        goto out;
    }
    memset(ss, 0, sizeof(*ss));
    memcpy(ss, found->ai_addr, found->ai_addrlen);
    *sslen = found->ai_addrlen;
    result = 0;

out:
    if (found != NULL)
        freeaddrinfo(found);
    return result;
}

char *address_format_sockaddr(const struct sockaddr *sa, socklen_t len, char *buf, size_t buflen)
{
    char text[INET6_ADDRSTRLEN];

    if (buflen == 0)
        return buf;
    buf[0] = '\0';
    if (sa == NULL || len < (socklen_t)sizeof(sa->sa_family)) {
        snprintf(buf, buflen, "unknown");
        return buf;
    }
    switch (sa->sa_family) {
    case AF_INET: {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        if (len < (socklen_t)sizeof(*in)
            || inet_ntop(AF_INET, &in->sin_addr, text, sizeof(text)) == NULL)
            snprintf(buf, buflen, "unknown");
        else
            snprintf(buf, buflen, "%s:%u", text, (unsigned)ntohs(in->sin_port));
        break;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (len < (socklen_t)sizeof(*in6)
            || inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof(text)) == NULL)
            snprintf(buf, buflen, "unknown");
        else if (in6->sin6_scope_id != 0) {
            char zone[IF_NAMESIZE];
            if (if_indextoname(in6->sin6_scope_id, zone) == NULL)
                snprintf(zone, sizeof(zone), "%u", (unsigned)in6->sin6_scope_id);
            snprintf(buf, buflen, "[%s%%%s]:%u", text, zone, (unsigned)ntohs(in6->sin6_port));
        } else
            snprintf(buf, buflen, "[%s]:%u", text, (unsigned)ntohs(in6->sin6_port));
        break;
    }
    case AF_UNIX: {
        const struct sockaddr_un *sun = (const struct sockaddr_un *)sa;
        size_t offset = offsetof(struct sockaddr_un, sun_path);
        size_t path_len = (size_t)len > offset ? (size_t)len - offset : 0;
        if (path_len > sizeof(sun->sun_path))
            path_len = sizeof(sun->sun_path);
        if (path_len == 0) {
            snprintf(buf, buflen, "unix");
        } else if (sun->sun_path[0] == '\0') {
            /* Abstract socket: shown the way ss(8) shows it. */
            snprintf(buf, buflen, "unix:@%.*s", (int)(path_len - 1), sun->sun_path + 1);
        } else {
            size_t used = strnlen(sun->sun_path, path_len);
            snprintf(buf, buflen, "unix:%.*s", (int)used, sun->sun_path);
        }
        break;
    }
    default:
        snprintf(buf, buflen, "unknown (family %d)", (int)sa->sa_family);
        break;
    }
    return buf;
}
