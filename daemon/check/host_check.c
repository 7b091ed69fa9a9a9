#include "check/host_check.h"

#include <string.h>
#include <unistd.h>

#include "core/privdrop.h"
#include "ktls/ktls_offload.h"

void host_check_ktls(const struct config *config, struct check_report *report)
{
    char reason[256] = "";
    int asked = 0, ready = 1;
    for (size_t i = 0; i < config->tunnel_count; i++) {
        const struct tunnel_config *tunnel = &config->tunnels[i];
        if (tunnel->ktls != KTLS_POLICY_REQUIRE)
            continue;
        if (!asked) {
            ready = ktls_offload_kernel_ready(reason, sizeof(reason));
            asked = 1;
        }
        if (!ready)
            check_report_tunnel(report, CHECK_ERROR, tunnel, "ktls",
                                "require, but this kernel cannot offload TLS, so every "
                                "connection would be refused (%s): set ktls = auto, or load "
                                "the tls module / use a kernel with CONFIG_TLS", reason);
    }
}

void host_check_user(const struct config *config, enum check_severity severity,
                     struct check_report *report)
{
    const struct global_config *global = &config->global;
    struct privdrop_target target;
    char reason[256];
    if (global->user == NULL)
        return;
    if (privdrop_resolve(global->user, global->group, &target, reason, sizeof(reason)) < 0) {
        const char *key = strncmp(reason, "group", 5) == 0 ? "group" : "user";
        check_report_add(report, CHECK_ERROR, config->path, config_global_key_line(config, key),
                         "global", key, "%s", reason);
        return;
    }
    /* What privdrop_apply accepts without root: already being that user and group. */
    if (geteuid() == 0 || (getuid() == target.uid && geteuid() == target.uid &&
                           getgid() == target.gid && getegid() == target.gid))
        return;
    if (getuid() == target.uid && geteuid() == target.uid)
        check_report_add(report, severity, config->path,
                         config_global_key_line(config, global->group != NULL ? "group" : "user"),
                         "global", global->group != NULL ? "group" : "user",
                         "the workers' group differs from the one ktlstund runs as, and only "
                         "root can switch: start ktlstund as root, or under the systemd unit "
                         "set Group= in the unit instead and remove user/group");
    else
        check_report_add(report, severity, config->path, config_global_key_line(config, "user"),
                         "global", "user",
                         "user = %s needs ktlstund started as root; under the systemd unit, set "
                         "User= in the unit instead and remove user/group", global->user);
}
