/* privdrop — workers give up root: setgroups, setresgid, setresuid, then verify. */
#ifndef KTLSTUN_PRIVDROP_H
#define KTLSTUN_PRIVDROP_H

#include <stddef.h>
#include <sys/types.h>

struct privdrop_target {
    int enabled;          /* 0: keep the starting user */
    uid_t uid;
    gid_t gid;
    char user[64];
};

/* Looks up USER and GROUP (either may be NULL; GROUP NULL = USER's primary group).
 * Returns 0, or -1 with the reason in ERR. */
int privdrop_resolve(const char *user, const char *group, struct privdrop_target *target,
                     char *err, size_t errlen);

/* Sets no_new_privs, switches this process to TARGET (when enabled) and checks that
 * root cannot be regained.
 * Returns 0, or -1 after logging. */
int privdrop_apply(const struct privdrop_target *target);

#endif
