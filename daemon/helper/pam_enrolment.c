#include "helper/pam_enrolment.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define PAM_DEFAULT_DIR "/etc/pam.d"
#define USER_VARIABLE "${USER}"

/* The usersfile= argument of a "auth ... pam_oath.so ..." LINE (changed in place), or
 * NULL. */
static char *oath_usersfile(char *line)
{
    char *save = NULL;
    char *type = strtok_r(line, " \t\n", &save);
    if (type == NULL || type[0] == '#')
        return NULL;
    if (type[0] == '-')
        type++;
    if (strcmp(type, "auth") != 0)
        return NULL;
    char *control = strtok_r(NULL, " \t\n", &save);
    /* A control in brackets may hold blanks: "[success=ok default=bad]". */
    while (control != NULL && control[0] == '[' && control[strlen(control) - 1] != ']')
        control = strtok_r(NULL, " \t\n", &save);
    char *module = control != NULL ? strtok_r(NULL, " \t\n", &save) : NULL;
    if (module == NULL)
        return NULL;
    const char *base = strrchr(module, '/');
    if (strcmp(base != NULL ? base + 1 : module, "pam_oath.so") != 0)
        return NULL;
    for (char *arg = strtok_r(NULL, " \t\n", &save); arg != NULL && arg[0] != '#';
         arg = strtok_r(NULL, " \t\n", &save))
        if (strncmp(arg, "usersfile=", 10) == 0)
            return arg + 10;
    return NULL;
}

/* Writes TEMPLATE with every ${USER} replaced by USER into PATH. Returns 0, or -1 when
 * TEMPLATE names no ${USER} (one file for everyone), another variable, or is too long. */
static int expand(const char *template, const char *user, char *path, size_t cap)
{
    size_t used = 0;
    int per_user = 0;
    for (const char *p = template; *p != '\0';) {
        const char *piece = p;
        size_t len = 1;
        if (strncmp(p, USER_VARIABLE, strlen(USER_VARIABLE)) == 0) {
            piece = user;
            len = strlen(user);
            p += strlen(USER_VARIABLE);
            per_user = 1;
        } else if (p[0] == '$' && p[1] == '{') {
            return -1;
        } else {
            p++;
        }
        if (used + len >= cap)
            return -1;
        memcpy(path + used, piece, len);
        used += len;
    }
    path[used] = '\0';
    return per_user ? 0 : -1;
}

int pam_enrolment_missing(const char *confdir, const char *service, const char *user, char *path,
                          size_t cap)
{
    char file_name[4200], line[1024];
    int missing = 0;
    snprintf(file_name, sizeof(file_name), "%s/%s", confdir != NULL ? confdir : PAM_DEFAULT_DIR,
             service);
    FILE *file = fopen(file_name, "re");
    if (file == NULL)
        return 0;
    while (fgets(line, sizeof(line), file) != NULL) {
        const char *usersfile = oath_usersfile(line);
        if (usersfile == NULL)
            continue;
        missing = expand(usersfile, user, path, cap) == 0 && access(path, F_OK) < 0 &&
                  errno == ENOENT;
        break;
    }
    fclose(file);
    return missing;
}
