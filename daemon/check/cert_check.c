#include "check/cert_check.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "core/identity.h"
#include "core/utc_time.h"

#define SUBJECT_LEN 300

static const char *subject_of(X509 *cert, char *buf, size_t len)
{
    return identity_format_name(X509_get_subject_name(cert), buf, len);
}

static int is_ca(X509 *cert)
{
    return (X509_get_extension_flags(cert) & EXFLAG_CA) != 0;
}

static int issued(X509 *issuer, X509 *subject)
{
    return X509_check_issued(issuer, subject) == X509_V_OK;
}

static long long epoch_of(const ASN1_TIME *when)
{
    struct tm tm;
    if (when == NULL || ASN1_TIME_to_tm(when, &tm) != 1)
        return -1;
    return (long long)timegm(&tm);
}

/* "the certificate" for the leaf, "certificate 2 in the file (CN=...)" for the rest. */
static const char *which(STACK_OF(X509) *chain, int index, char *buf, size_t len)
{
    char subject[SUBJECT_LEN];
    if (index == 0)
        snprintf(buf, len, "the certificate (%s)", subject_of(sk_X509_value(chain, 0), subject,
                                                              sizeof(subject)));
    else
        snprintf(buf, len, "certificate %d in the file (%s)", index + 1,
                 subject_of(sk_X509_value(chain, index), subject, sizeof(subject)));
    return buf;
}

/* Returns 1 when the order of CHAIN is right, after reporting what is wrong. */
static int check_order(const struct tunnel_config *tunnel, STACK_OF(X509) *chain,
                       struct check_report *report)
{
    int count = sk_X509_num(chain);
    char subject[SUBJECT_LEN], what[SUBJECT_LEN + 40];
    if (is_ca(sk_X509_value(chain, 0))) {
        for (int i = 1; i < count; i++) {
            if (is_ca(sk_X509_value(chain, i)))
                continue;
            check_report_tunnel(report, CHECK_ERROR, tunnel, "cert",
                                "%s: the leaf (%s) is certificate %d, after a CA certificate: "
                                "put the leaf first, then its intermediates",
                                tunnel->cert, subject_of(sk_X509_value(chain, i), subject,
                                                         sizeof(subject)), i + 1);
            return 0;
        }
    }
    for (int i = 1; i < count; i++) {
        if (issued(sk_X509_value(chain, i), sk_X509_value(chain, i - 1)))
            continue;
        check_report_tunnel(report, CHECK_ERROR, tunnel, "cert",
                            "%s: out of order: %s did not issue the certificate before it; "
                            "put the leaf first, then each certificate's issuer right after it",
                            tunnel->cert, which(chain, i, what, sizeof(what)));
        return 0;
    }
    return 1;
}

static void check_dates(const struct tunnel_config *tunnel, STACK_OF(X509) *chain, time_t now,
                        uint64_t expiry_warning, struct check_report *report)
{
    char what[SUBJECT_LEN + 40], date[32];
    for (int i = 0; i < sk_X509_num(chain); i++) {
        X509 *cert = sk_X509_value(chain, i);
        long long not_before = epoch_of(X509_get0_notBefore(cert));
        long long not_after = epoch_of(X509_get0_notAfter(cert));
        if (not_before > (long long)now) {
            check_report_tunnel(report, CHECK_ERROR, tunnel, "cert",
                                "%s: %s is not valid before %s, and peers refuse it until then: "
                                "use a certificate that is valid now",
                                tunnel->cert, which(chain, i, what, sizeof(what)),
                                utc_time_format(not_before, date, sizeof(date)));
        } else if (not_after >= 0 && not_after < (long long)now) {
            check_report_tunnel(report, CHECK_ERROR, tunnel, "cert",
                                "%s: %s expired on %s, and peers refuse it: renew it",
                                tunnel->cert, which(chain, i, what, sizeof(what)),
                                utc_time_format(not_after, date, sizeof(date)));
        } else if (not_after >= 0 && (uint64_t)(not_after - (long long)now) <= expiry_warning) {
            long long left = not_after - (long long)now;
            int in_days = left >= 2LL * 86400;
            check_report_tunnel(report, CHECK_WARNING, tunnel, "cert",
                                "%s: %s expires on %s (in %lld %s), within expiry_warning: "
                                "renew it",
                                tunnel->cert, which(chain, i, what, sizeof(what)),
                                utc_time_format(not_after, date, sizeof(date)),
                                in_days ? left / 86400 : left / 3600, in_days ? "days" : "hours");
        }
    }
}

/* Returns the certificate in STORE that issued CERT (a new reference), or NULL. */
static X509 *issuer_in_store(X509_STORE *store, X509 *cert)
{
    X509 *issuer = NULL;
    X509_STORE_CTX *store_ctx = X509_STORE_CTX_new();
    if (store_ctx != NULL && X509_STORE_CTX_init(store_ctx, store, cert, NULL) == 1 &&
        X509_STORE_CTX_get1_issuer(&issuer, store_ctx, cert) != 1)
        issuer = NULL;
    X509_STORE_CTX_free(store_ctx);
    return issuer;
}

static int issuer_in_stack(STACK_OF(X509) *certs, X509 *cert)
{
    for (int i = 0; certs != NULL && i < sk_X509_num(certs); i++)
        if (issued(sk_X509_value(certs, i), cert))
            return 1;
    return 0;
}

static void check_issuer_sent(const struct tunnel_config *tunnel, STACK_OF(X509) *chain,
                              X509_STORE *trusted, STACK_OF(X509) *sent,
                              struct check_report *report)
{
    X509 *leaf = sk_X509_value(chain, 0);
    if (trusted == NULL || issued(leaf, leaf) || issuer_in_stack(chain, leaf) ||
        issuer_in_stack(sent, leaf))
        return;
    char issuer_name[SUBJECT_LEN];
    identity_format_name(X509_get_issuer_name(leaf), issuer_name, sizeof(issuer_name));
    X509 *issuer = issuer_in_store(trusted, leaf);
    if (issuer == NULL)
        check_report_tunnel(report, CHECK_WARNING, tunnel, "cert",
                            "%s has only the leaf of its chain, and its issuer %s is not in ca "
                            "either: unless that is a root CA its peers trust, they refuse the "
                            "certificate as from an unknown CA; append the issuer's certificate "
                            "after the leaf", tunnel->cert, issuer_name);
    else if (!X509_self_signed(issuer, 0))
        check_report_tunnel(report, CHECK_ERROR, tunnel, "cert",
                            "%s lacks its intermediate CA (issuer %s): append it after the "
                            "leaf; peers refuse the certificate as from an unknown CA",
                            tunnel->cert, issuer_name);
    X509_free(issuer);
}

/* "serverAuth, clientAuth" from CERT's extendedKeyUsage. */
static void list_purposes(X509 *cert, char *buf, size_t len)
{
    EXTENDED_KEY_USAGE *usage = X509_get_ext_d2i(cert, NID_ext_key_usage, NULL, NULL);
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; usage != NULL && i < sk_ASN1_OBJECT_num(usage); i++) {
        char name[80];
        const ASN1_OBJECT *object = sk_ASN1_OBJECT_value(usage, i);
        int nid = OBJ_obj2nid(object);
        if (nid != NID_undef)
            snprintf(name, sizeof(name), "%s", OBJ_nid2sn(nid));
        else if (OBJ_obj2txt(name, (int)sizeof(name), object, 1) <= 0)
            snprintf(name, sizeof(name), "?");
        if (used < len)
            used += (size_t)snprintf(buf + used, len - used, "%s%s", i > 0 ? ", " : "", name);
    }
    EXTENDED_KEY_USAGE_free(usage);
    if (buf[0] == '\0')
        snprintf(buf, len, "nothing");
}

static void check_purpose(const struct tunnel_config *tunnel, X509 *leaf,
                          struct check_report *report)
{
    if ((X509_get_extension_flags(leaf) & EXFLAG_XKUSAGE) == 0)
        return;
    int server = tunnel->mode == TUNNEL_MODE_SERVER;
    /* What OpenSSL's ssl_server and ssl_client purposes accept. */
    uint32_t needed = server ? XKU_SSL_SERVER | XKU_SGC : XKU_SSL_CLIENT;
    if ((X509_get_extended_key_usage(leaf) & needed) != 0)
        return;
    char has[200];
    list_purposes(leaf, has, sizeof(has));
    check_report_tunnel(report, CHECK_ERROR, tunnel, "cert",
                        "%s: the certificate's extendedKeyUsage lacks %s (it has %s), so %s "
                        "refuse it (unsuitable certificate purpose): a %s tunnel needs a "
                        "certificate issued for %s",
                        tunnel->cert, server ? "serverAuth" : "clientAuth", has,
                        server ? "clients" : "servers", config_mode_name(tunnel->mode),
                        server ? "serverAuth" : "clientAuth");
}

void cert_check_chain(const struct tunnel_config *tunnel, STACK_OF(X509) *file_chain,
                      X509_STORE *trusted, STACK_OF(X509) *sent, time_t now,
                      uint64_t expiry_warning, struct check_report *report)
{
    if (sk_X509_num(file_chain) < 1)
        return;
    int in_order = check_order(tunnel, file_chain, report);
    check_dates(tunnel, file_chain, now, expiry_warning, report);
    if (!in_order)
        return;
    check_issuer_sent(tunnel, file_chain, trusted, sent, report);
    check_purpose(tunnel, sk_X509_value(file_chain, 0), report);
}

/* Reads every certificate of PATH, in order. Returns NULL when there is none. */
static STACK_OF(X509) *read_chain(const char *path)
{
    STACK_OF(X509) *chain = NULL;
    BIO *bio = BIO_new_file(path, "r");
    if (bio == NULL)
        goto out;
    chain = sk_X509_new_null();
    X509 *cert;
    while (chain != NULL && (cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(chain, cert))
            X509_free(cert);
    }
    if (chain != NULL && sk_X509_num(chain) == 0) {
        sk_X509_free(chain);
        chain = NULL;
    }
out:
    BIO_free(bio);
    /* The end of the file reads as "no start line"; any other failure the context's
     * own load has reported. */
    ERR_clear_error();
    return chain;
}

/* The context's own certificate followed by the chain it sends; NULL when out of
 * memory. */
static STACK_OF(X509) *chain_of_context(SSL_CTX *ctx, STACK_OF(X509) *sent)
{
    STACK_OF(X509) *chain = sent != NULL ? X509_chain_up_ref(sent) : sk_X509_new_null();
    X509 *leaf = SSL_CTX_get0_certificate(ctx);
    if (chain == NULL || !X509_up_ref(leaf))
        goto fail;
    if (!sk_X509_unshift(chain, leaf)) {
        X509_free(leaf);
        goto fail;
    }
    return chain;
fail:
    sk_X509_pop_free(chain, X509_free);
    return NULL;
}

void cert_check_tunnel(const struct tunnel_config *tunnel, SSL_CTX *ctx, time_t now,
                       uint64_t expiry_warning, struct check_report *report)
{
    STACK_OF(X509) *chain = read_chain(tunnel->cert);
    STACK_OF(X509) *sent = NULL;
    if (ctx != NULL)
        SSL_CTX_get0_chain_certs(ctx, &sent);
    /* A PKCS#12 bundle has no PEM to read: its certificates are the context's. */
    if (chain == NULL && ctx != NULL && SSL_CTX_get0_certificate(ctx) != NULL)
        chain = chain_of_context(ctx, sent);
    if (chain == NULL)
        return;
    cert_check_chain(tunnel, chain, ctx != NULL ? SSL_CTX_get_cert_store(ctx) : NULL, sent, now,
                     expiry_warning, report);
    sk_X509_pop_free(chain, X509_free);
}
