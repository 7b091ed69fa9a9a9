#include "core/privdrop.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
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

int privdrop_apply(const struct privdrop_target *target)
{
    /* Workers never exec anything; make sure nothing they run could gain privileges. */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        log_error("cannot set no_new_privs: %s", strerror(errno));
        return -1;
    }
    if (!target->enabled)
        return 0;
    /* Started as that user already (systemd's User=): there is nothing to give up,
     * and setgroups would fail without CAP_SETGID. */
    if (geteuid() != 0 && getuid() == target->uid && geteuid() == target->uid &&
        getgid() == target->gid && getegid() == target->gid)
        return 0;
    if (setgroups(1, &target->gid) < 0 || setresgid(target->gid, target->gid, target->gid) < 0 ||
        setresuid(target->uid, target->uid, target->uid) < 0) {
        log_error("cannot drop privileges to %s: %s", target->user, strerror(errno));
        return -1;
    }
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
