/* pam_enrolment — whether a local user has a second-factor enrolment, where the PAM
 * stack lets that be known before PAM runs: a service file whose auth lines run
 * pam_oath with one users file per user (usersfile=...${USER}..., as the shipped
 * /etc/pam.d/ktlstun does) has no enrolment for a user whose file does not exist.
 * pam_oath itself would ask for a code and then answer "Authentication failure", the
 * same as for a wrong one. For any other stack this cannot be told here, and PAM
 * decides (pam_oath says "User not known" for a users file without the user's line). */
#ifndef KTLSTUN_PAM_ENROLMENT_H
#define KTLSTUN_PAM_ENROLMENT_H

#include <stddef.h>

/* Reads the PAM service SERVICE in CONFDIR (NULL: /etc/pam.d). Returns 1 when it runs
 * pam_oath with a per-user users file and USER's does not exist (its path in PATH, CAP
 * bytes), else 0 (enrolled, or not known here). */
int pam_enrolment_missing(const char *confdir, const char *service, const char *user, char *path,
                          size_t cap);

#endif
