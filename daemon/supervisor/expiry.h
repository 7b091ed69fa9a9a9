/* expiry — warns before the certificates and CRLs a generation loaded run out. */
#ifndef KTLSTUN_EXPIRY_H
#define KTLSTUN_EXPIRY_H

#include <stddef.h>

#include "supervisor/generation.h"

/* Logs a warning (MESSAGE_ID_EXPIRY) for each tunnel certificate or CRL of GEN that
 * expires within GEN's expiry_warning, or has expired, and writes a one-line summary
 * for systemd's STATUS= into SUMMARY ("" when all is well). Returns how many. */
int expiry_check(const struct generation *gen, char *summary, size_t len);

#endif
