#include "check/listen_check.h"

#include <errno.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/limits.h"

static int is_held(const char *address, const struct listen_check_held *held)
{
    for (size_t i = 0; held != NULL && i < held->count; i++)
        if (strcmp(held->addresses[i], address) == 0)
            return 1;
    return 0;
}

static void check_unix(const struct tunnel_config *tunnel, struct check_report *report)
{
    char directory[sizeof(tunnel->listen.path)];
    struct stat st;
    snprintf(directory, sizeof(directory), "%s", tunnel->listen.path);
    if (lstat(tunnel->listen.path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            check_report_tunnel(report, CHECK_ERROR, tunnel, "listen",
                                "%s exists and is not a socket: remove it or choose another path",
                                tunnel->listen.path);
        return;
    }
    const char *parent = dirname(directory);
    if (stat(parent, &st) < 0 || !S_ISDIR(st.st_mode))
        check_report_tunnel(report, CHECK_ERROR, tunnel, "listen",
                            "directory %s does not exist: create it, or choose another path",
                            parent);
}

static void check_inet(const struct config *config, const struct tunnel_config *tunnel,
                       const char *shown, const struct listen_check_held *held,
                       enum check_severity privilege_severity, struct check_report *report)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    char err[256];
    if (address_resolve(&tunnel->listen, &ss, &sslen, err, sizeof(err)) < 0) {
        check_report_tunnel(report, CHECK_ERROR, tunnel, "listen", "%s: %s", shown, err);
        return;
    }
    int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        check_report_tunnel(report, CHECK_ERROR, tunnel, "listen", "%s: socket: %s", shown,
                            strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    int bound = bind(fd, (struct sockaddr *)&ss, sslen);
    int error = errno;
    close(fd);
    if (bound == 0)
        return;
    if (error == EADDRINUSE && held != NULL && held->unknown)
        check_report_tunnel(report, CHECK_WARNING, tunnel, "listen",
                            "%s is in use, perhaps by the running ktlstund, which this user may "
                            "not ask (its status sockets in %s): check as root or in the "
                            "daemon's group to know", shown, config->global.runtime_dir);
    else if (error == EADDRINUSE)
        check_report_tunnel(report, CHECK_ERROR, tunnel, "listen",
                            "%s is already in use by another program (`ss -ltnp 'sport = :%u'` "
                            "shows which): stop it, or choose another address",
                            shown, (unsigned)tunnel->listen.port);
    else if (error == EACCES)
        check_report_tunnel(report, privilege_severity, tunnel, "listen",
                            "%s: port %u needs privileges to bind: use the socket unit "
                            "(listen = systemd:NAME) or CAP_NET_BIND_SERVICE", shown,
                            (unsigned)tunnel->listen.port);
    else if (error == EADDRNOTAVAIL)
        check_report_tunnel(report, CHECK_ERROR, tunnel, "listen",
                            "%s is not an address of this host: use one it has (or 0.0.0.0, "
                            "[::])", shown);
    else
        check_report_tunnel(report, CHECK_ERROR, tunnel, "listen", "%s: bind: %s", shown,
                            strerror(error));
}

void listen_check_config(const struct config *config, const struct listen_check_held *held,
                         enum check_severity privilege_severity, struct check_report *report)
{
    if (config->tunnel_count > LIMIT_TUNNELS) {
        const struct tunnel_config *first = &config->tunnels[LIMIT_TUNNELS];
        check_report_add(report, CHECK_ERROR, first->source, first->line, first->name, NULL,
                         "tunnel %d of %zu: ktlstund serves at most %d tunnels; remove some, or "
                         "run a second ktlstund with its own configuration", LIMIT_TUNNELS + 1,
                         config->tunnel_count, LIMIT_TUNNELS);
    }
    for (size_t i = 0; i < config->tunnel_count; i++) {
        const struct tunnel_config *tunnel = &config->tunnels[i];
        char shown[300];
        if (!config_tunnel_listens(tunnel))
            continue;
        address_format(&tunnel->listen, shown, sizeof(shown));
        if (tunnel->listen.kind == ADDRESS_SYSTEMD || is_held(shown, held))
            continue;
        if (tunnel->listen.kind == ADDRESS_UNIX)
            check_unix(tunnel, report);
        else
            check_inet(config, tunnel, shown, held, privilege_severity, report);
    }
}
