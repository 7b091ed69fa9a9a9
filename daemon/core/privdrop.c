#include "core/privdrop.h"

#include <errno.h>
#include <grp.h>
#include <linux/capability.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/log.h"

int privdrop_resolve(const char *user, const char *group, struct privdrop_target *target,
                     char *err, size_t errlen)
{
    memset(target, 0, sizeof(*target));
    if (user == NULL)
        return 0;
    struct passwd *pw = getpwnam(user);
    if (pw == NULL) {
        snprintf(err, errlen, "user %s does not exist", user);
        return -1;
    }
    target->uid = pw->pw_uid;
    target->gid = pw->pw_gid;
    if (group != NULL) {
        struct group *gr = getgrnam(group);
        if (gr == NULL) {
            snprintf(err, errlen, "group %s does not exist", group);
            return -1;
        }
        target->gid = gr->gr_gid;
    }
    snprintf(target->user, sizeof(target->user), "%s", user);
    target->enabled = 1;
    return 0;
}

int privdrop_resolve_member(const char *user, struct privdrop_target *target, char *err,
                            size_t errlen)
{
    if (privdrop_resolve(user, NULL, target, err, errlen) < 0)
        return -1;
    int count = PRIVDROP_MAX_GROUPS;
    if (getgrouplist(user, target->gid, target->groups, &count) < 0) {
        snprintf(err, errlen, "user %s is in more than %d groups", user, PRIVDROP_MAX_GROUPS);
        return -1;
    }
    target->group_count = (size_t)count;
    return 0;
}

static int read_capabilities(struct __user_cap_data_struct data[2])
{
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };
    memset(data, 0, 2 * sizeof(*data));
    return (int)syscall(SYS_capget, &header, data);
}

static int holds(const struct __user_cap_data_struct data[2], int cap)
{
    return (data[cap / 32].effective & (1u << (cap % 32))) != 0;
}

int privdrop_can_switch(void)
{
    struct __user_cap_data_struct data[2];
    if (geteuid() == 0)
        return 1;
    return read_capabilities(data) == 0 && holds(data, CAP_SETUID) && holds(data, CAP_SETGID);
}

int privdrop_clear_capabilities(uint64_t keep)
{
    if (geteuid() == 0)
        return 0;
    struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };
    struct __user_cap_data_struct data[2], now[2];
    if (read_capabilities(now) < 0) {
        log_error("cannot read the capabilities: %s", strerror(errno));
        return -1;
    }
    memset(data, 0, sizeof(data));
    for (int i = 0; i < 2; i++) {
        uint32_t kept = (uint32_t)(keep >> (32 * i)) & now[i].permitted;
        data[i].permitted = data[i].effective = kept;
    }
    /* Ambient first: an ambient set left behind would come back in anything this
     * process runs. */
    if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL) {
        log_error("cannot clear the ambient capabilities: %s", strerror(errno));
        return -1;
    }
    if (syscall(SYS_capset, &header, data) < 0) {
        log_error("cannot give up capabilities: %s", strerror(errno));
        return -1;
    }
    if (read_capabilities(now) < 0 || now[0].permitted != data[0].permitted ||
        now[1].permitted != data[1].permitted || now[0].inheritable != 0 ||
        now[1].inheritable != 0) {
        log_error("capabilities are left after giving them up");
        return -1;
    }
    return 0;
}

static int switch_user(const struct privdrop_target *target)
{
    size_t count = target->group_count > 0 ? target->group_count : 1;
    const gid_t *groups = target->group_count > 0 ? target->groups : &target->gid;
    if (setgroups(count, groups) < 0 || setresgid(target->gid, target->gid, target->gid) < 0 ||
        setresuid(target->uid, target->uid, target->uid) < 0) {
        log_error("cannot drop privileges to %s: %s", target->user, strerror(errno));
        return -1;
    }
    return 0;
}

int privdrop_apply(const struct privdrop_target *target)
{
    /* Nothing a dropped process runs may gain privileges. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        log_error("cannot set no_new_privs: %s", strerror(errno));
        return -1;
    }
    /* Started as that user already without the means to switch (systemd's User=
     * alone): there is no user to give up, and setgroups would fail. */
    int already = !target->enabled ||
                  (getuid() == target->uid && geteuid() == target->uid &&
                   getgid() == target->gid && getegid() == target->gid && !privdrop_can_switch());
    if (!already && switch_user(target) < 0)
        return -1;
    if (privdrop_clear_capabilities(0) < 0)
        return -1;
    if (!target->enabled)
        return 0;
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;
    if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0 ||
        ruid != target->uid || euid != target->uid || suid != target->uid ||
        rgid != target->gid || egid != target->gid || sgid != target->gid ||
        (target->uid != 0 && setuid(0) == 0)) {
        log_error("privilege drop to %s did not stick", target->user);
        return -1;
    }
    return 0;
}
