/* host_check — what the configuration asks of this host and this process, that no
 * file can show: kernel TLS where a tunnel requires it, and root to become `user`. */
#ifndef KTLSTUN_HOST_CHECK_H
#define KTLSTUN_HOST_CHECK_H

#include "check/check_report.h"
#include "config/config.h"

/* An error at the ktls line of each tunnel with ktls = require when this kernel
 * cannot offload TLS (no tls ULP registered), with the reason and the fix. */
void host_check_ktls(const struct config *config, struct check_report *report);

/* [global] user and group: an error when they do not exist; when this process is not
 * root and is not already that user and group (the workers could not switch), a
 * problem of SEVERITY at the user line (a warning for a check run by whoever, who
 * cannot know how the daemon is started). */
void host_check_user(const struct config *config, enum check_severity severity,
                     struct check_report *report);

#endif
