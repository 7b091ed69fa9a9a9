#include "check/crl_check.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "core/identity.h"
#include "core/utc_time.h"

/* Past this many CAs without a CRL, one line says how many more (a whole system
 * bundle in ca would otherwise print a line per root). */
#define MAX_REPORTED 8

enum crl_state { CRL_MISSING, CRL_EXPIRED, CRL_NOT_YET_VALID, CRL_GOOD };

static long long epoch_of(const ASN1_TIME *when)
{
    struct tm tm;
    if (when == NULL || ASN1_TIME_to_tm(when, &tm) != 1)
        return -1;
    return (long long)timegm(&tm);
}

/* Whether any CRL among OBJECTS is CA's (its issuer, signed with its key) and current;
 * *WHEN is set to the date that makes the best non-current one unusable. */
static enum crl_state state_of(X509 *ca, STACK_OF(X509_OBJECT) *objects, time_t now,
                               long long *when)
{
    enum crl_state best = CRL_MISSING;
    EVP_PKEY *key = X509_get0_pubkey(ca);
    for (int i = 0; i < sk_X509_OBJECT_num(objects) && best != CRL_GOOD; i++) {
        X509_CRL *crl = X509_OBJECT_get0_X509_CRL(sk_X509_OBJECT_value(objects, i));
        if (crl == NULL || X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(ca)) != 0 ||
            key == NULL || X509_CRL_verify(crl, key) != 1)
            continue;
        long long last = epoch_of(X509_CRL_get0_lastUpdate(crl));
        long long next = epoch_of(X509_CRL_get0_nextUpdate(crl));
        if (last > (long long)now) {
            if (best == CRL_MISSING) {
                best = CRL_NOT_YET_VALID;
                *when = last;
            }
        } else if (next >= 0 && next < (long long)now) {
            if (best != CRL_EXPIRED || next > *when) {
                best = CRL_EXPIRED;
                *when = next;
            }
        } else {
            best = CRL_GOOD;
        }
    }
    ERR_clear_error();
    return best;
}

/* A CA signs certificates, so a chain can pass through it; a self-signed certificate
 * in ca stands for itself, and OpenSSL asks for its CRL too. */
static int issues_certificates(X509 *cert)
{
    return X509_check_ca(cert) != 0 || X509_self_signed(cert, 0) == 1;
}

void crl_check_store(const struct tunnel_config *tunnel, X509_STORE *store, time_t now,
                     struct check_report *report)
{
    if (tunnel->crl == NULL || !X509_STORE_lock(store))
        return;
    STACK_OF(X509_OBJECT) *objects = X509_STORE_get0_objects(store);
    unsigned missing = 0;
    for (int i = 0; i < sk_X509_OBJECT_num(objects); i++) {
        X509 *ca = X509_OBJECT_get0_X509(sk_X509_OBJECT_value(objects, i));
        if (ca == NULL || !issues_certificates(ca))
            continue;
        long long when = -1;
        enum crl_state state = state_of(ca, objects, now, &when);
        if (state == CRL_GOOD || ++missing > MAX_REPORTED)
            continue;
        char subject[300], date[32];
        identity_format_name(X509_get_subject_name(ca), subject, sizeof(subject));
        if (state == CRL_MISSING)
            check_report_tunnel(report, CHECK_ERROR, tunnel, "crl",
                                "%s has no CRL from %s (a CA in ca): every peer whose chain "
                                "passes through it is refused (unable to get certificate CRL); "
                                "add that CA's current CRL to the file", tunnel->crl, subject);
        else
            check_report_tunnel(report, CHECK_ERROR, tunnel, "crl",
                                "%s: the CRL from %s (a CA in ca) %s %s: every peer whose chain "
                                "passes through it is refused; replace it with that CA's "
                                "current CRL", tunnel->crl, subject,
                                state == CRL_EXPIRED ? "expired on" : "is not valid before",
                                utc_time_format(when, date, sizeof(date)));
    }
    X509_STORE_unlock(store);
    if (missing > MAX_REPORTED)
        check_report_tunnel(report, CHECK_ERROR, tunnel, "crl",
                            "%s: %u more CAs in ca have no current CRL in it", tunnel->crl,
                            missing - MAX_REPORTED);
}
