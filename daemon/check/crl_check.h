/* crl_check — with `crl` set, OpenSSL checks the revocation of every certificate of a
 * peer's chain (X509_V_FLAG_CRL_CHECK_ALL), so each CA in `ca` needs its own current
 * CRL in the crl file: one missing, expired or not yet valid refuses every peer whose
 * chain passes through that CA ("unable to get certificate CRL"). */
#ifndef KTLSTUN_CRL_CHECK_H
#define KTLSTUN_CRL_CHECK_H

#include <time.h>

#include <openssl/x509.h>

#include "check/check_report.h"
#include "config/config.h"

/* Checks STORE (TUNNEL's ca certificates and crl lists, as its TLS context loaded
 * them) at time NOW into REPORT, at the crl key's line: an error for each CA
 * certificate (or self-signed one) in STORE with no CRL that it signed, and for one
 * whose CRLs have all expired or are all not yet valid. Nothing when TUNNEL has no
 * crl. CAs that only peers send (intermediates not in ca) cannot be seen here. */
void crl_check_store(const struct tunnel_config *tunnel, X509_STORE *store, time_t now,
                     struct check_report *report);

#endif
