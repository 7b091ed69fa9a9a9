/* privdrop — a process gives up what it started with: setgroups, setresgid,
 * setresuid, every capability, then a check that none of it comes back. */
#ifndef KTLSTUN_PRIVDROP_H
#define KTLSTUN_PRIVDROP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PRIVDROP_MAX_GROUPS 32

struct privdrop_target {
    int enabled;          /* 0: keep the starting user */
    uid_t uid;
    gid_t gid;
    size_t group_count;   /* supplementary groups; 0 = GID alone */
    gid_t groups[PRIVDROP_MAX_GROUPS];
    char user[64];
};

/* Looks up USER and GROUP (either may be NULL; GROUP NULL = USER's primary group).
 * The target's only group is that one. Returns 0, or -1 with the reason in ERR. */
int privdrop_resolve(const char *user, const char *group, struct privdrop_target *target,
                     char *err, size_t errlen);

/* Looks up USER with its primary group and every group the group database makes it
 * a member of (at most PRIVDROP_MAX_GROUPS). Returns 0, or -1 with the reason in ERR. */
int privdrop_resolve_member(const char *user, struct privdrop_target *target, char *err,
                            size_t errlen);

/* Returns 1 when this process may switch users: it is root, or holds CAP_SETUID and
 * CAP_SETGID (the systemd unit's ambient capabilities); else 0. */
int privdrop_can_switch(void);

/* Sets no_new_privs, switches this process to TARGET (when enabled), and, unless it
 * is root afterwards, clears every capability it holds (the unit's ambient ones
 * included); then checks that neither root nor a capability can be regained.
 * Returns 0, or -1 after logging. */
int privdrop_apply(const struct privdrop_target *target);

/* Clears every capability of this process that is not root (permitted, effective,
 * inheritable, ambient) but those of KEEP it holds (bit N: capability N, e.g.
 * 1ULL << CAP_NET_BIND_SERVICE), and checks that no other is left; root keeps its
 * own. Returns 0, or -1 after logging. */
int privdrop_clear_capabilities(uint64_t keep);

#endif
