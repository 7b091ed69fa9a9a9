#include "tls/verify_reason.h"

#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/identity.h"

/* "CN=alice", or the whole subject when there is no CN: the operator needs to know
 * which certificate of the chain failed, and the CN usually says it. */
static void describe_subject(X509 *cert, char *buf, size_t len)
{
    struct identity *id = cert != NULL ? identity_from_cert(cert) : NULL;
    if (cert == NULL)
        snprintf(buf, len, "no certificate");
    else if (id == NULL)
        snprintf(buf, len, "unreadable subject");
    else if (id->cn != NULL)
        snprintf(buf, len, "CN=%s", id->cn);
    else
        snprintf(buf, len, "%s", id->subject[0] != '\0' ? id->subject : "empty subject");
    identity_free(id);
}

static void describe_issuer(X509 *cert, char *buf, size_t len)
{
    if (cert != NULL)
        identity_format_name(X509_get_issuer_name(cert), buf, len);
    else
        snprintf(buf, len, "(unknown)");
}

/* "2026-11-21 12:00:00 UTC" */
static void describe_time(const ASN1_TIME *when, char *buf, size_t len)
{
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    if (when == NULL || ASN1_TIME_to_tm(when, &tm) != 1 || strftime(buf, len, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
        snprintf(buf, len, "(unreadable date)");
}

static const char *digest_name(int nid)
{
    switch (nid) {
    case NID_md2: return "MD2";
    case NID_md4: return "MD4";
    case NID_md5: return "MD5";
    case NID_md5_sha1: return "MD5+SHA-1";
    case NID_sha1: return "SHA-1";
    case NID_sha224: return "SHA-224";
    case NID_sha256: return "SHA-256";
    case NID_sha384: return "SHA-384";
    case NID_sha512: return "SHA-512";
    default: return NULL;
    }
}

/* "SHA-1"; for algorithms without a separate digest (RSA-PSS, EdDSA) the signature
 * algorithm's own name. */
static void describe_signature_digest(X509 *cert, char *buf, size_t len)
{
    int md_nid = NID_undef;
    const char *name = NULL;
    if (cert != NULL && X509_get_signature_info(cert, &md_nid, NULL, NULL, NULL) == 1)
        name = digest_name(md_nid);
    if (name == NULL && md_nid != NID_undef)
        name = OBJ_nid2sn(md_nid);
    if (name == NULL && cert != NULL)
        name = OBJ_nid2ln(X509_get_signature_nid(cert));
    snprintf(buf, len, "%s", name != NULL ? name : "unknown digest");
}

/* "RSA 1024 bits" */
static void describe_key(X509 *cert, char *buf, size_t len)
{
    EVP_PKEY *key = cert != NULL ? X509_get0_pubkey(cert) : NULL;
    const char *type = NULL;
    switch (key != NULL ? EVP_PKEY_get_base_id(key) : EVP_PKEY_NONE) {
    case EVP_PKEY_NONE: break;
    case EVP_PKEY_RSA: type = "RSA"; break;
    case EVP_PKEY_RSA_PSS: type = "RSA-PSS"; break;
    case EVP_PKEY_EC: type = "EC"; break;
    case EVP_PKEY_DSA: type = "DSA"; break;
    case EVP_PKEY_DH: type = "DH"; break;
    default: type = EVP_PKEY_get0_type_name(key); break;
    }
    if (key == NULL)
        snprintf(buf, len, "unreadable key");
    else
        snprintf(buf, len, "%s %d bits", type != NULL ? type : "unknown", EVP_PKEY_get_bits(key));
}

/* X509_V_ERR_INVALID_PURPOSE does not say which purpose was asked for; the
 * certificate's extendedKeyUsage does, when it names exactly one of the two. */
static void format_purpose(X509 *cert, const char *subject, char *buf, size_t len)
{
    uint32_t usage = cert != NULL ? X509_get_extended_key_usage(cert) : UINT32_MAX;
    int has_eku = cert != NULL && (X509_get_extension_flags(cert) & EXFLAG_XKUSAGE) != 0;
    int client = (usage & XKU_SSL_CLIENT) != 0;
    int server = (usage & XKU_SSL_SERVER) != 0;
    if (has_eku && !client && server)
        snprintf(buf, len, "certificate not allowed for client authentication: extendedKeyUsage lacks "
                           "clientAuth (%s)", subject);
    else if (has_eku && client && !server)
        snprintf(buf, len, "certificate not allowed for server authentication: extendedKeyUsage lacks "
                           "serverAuth (%s)", subject);
    else
        snprintf(buf, len, "certificate purpose not allowed (%s) (%s)",
                 has_eku ? "extendedKeyUsage" : "keyUsage or basicConstraints", subject);
}

void verify_reason_format(int error, X509 *cert, const char *crl_path, const char *server_name,
                          char *buf, size_t len)
{
    char subject[512];
    char detail[512];
    if (buf == NULL || len == 0)
        return;
    describe_subject(cert, subject, sizeof(subject));
    char crl[512];
    snprintf(crl, sizeof(crl), "CRL%s%s", crl_path != NULL ? " " : "", crl_path != NULL ? crl_path : "");

    switch (error) {
    case X509_V_ERR_CERT_HAS_EXPIRED:
        describe_time(cert != NULL ? X509_get0_notAfter(cert) : NULL, detail, sizeof(detail));
        snprintf(buf, len, "certificate expired on %s (%s)", detail, subject);
        break;
    case X509_V_ERR_CERT_NOT_YET_VALID:
        describe_time(cert != NULL ? X509_get0_notBefore(cert) : NULL, detail, sizeof(detail));
        snprintf(buf, len, "certificate not valid before %s (%s)", detail, subject);
        break;
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
    case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
    case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
    case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
        /* The error certificate is the last one that could be found; its issuer (its
         * own subject, for a root sent in the chain) is the CA to add to ca=. */
        describe_issuer(cert, detail, sizeof(detail));
        snprintf(buf, len, "unknown CA: issuer %s is not trusted", detail);
        break;
    case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        snprintf(buf, len, "self-signed certificate is not trusted (%s)", subject);
        break;
    case X509_V_ERR_CERT_REVOKED:
        snprintf(buf, len, "revoked (%s) (%s)", crl, subject);
        break;
    case X509_V_ERR_UNABLE_TO_GET_CRL:
        describe_issuer(cert, detail, sizeof(detail));
        snprintf(buf, len, "%s has no list from issuer %s (%s)", crl, detail, subject);
        break;
    case X509_V_ERR_CRL_HAS_EXPIRED:
        snprintf(buf, len, "%s has expired (nextUpdate passed): refresh it (%s)", crl, subject);
        break;
    case X509_V_ERR_CRL_NOT_YET_VALID:
        snprintf(buf, len, "%s is not yet valid (lastUpdate in the future) (%s)", crl, subject);
        break;
    case X509_V_ERR_UNABLE_TO_GET_CRL_ISSUER:
    case X509_V_ERR_CRL_SIGNATURE_FAILURE:
    case X509_V_ERR_UNABLE_TO_DECRYPT_CRL_SIGNATURE:
    case X509_V_ERR_ERROR_IN_CRL_LAST_UPDATE_FIELD:
    case X509_V_ERR_ERROR_IN_CRL_NEXT_UPDATE_FIELD:
    case X509_V_ERR_KEYUSAGE_NO_CRL_SIGN:
    case X509_V_ERR_DIFFERENT_CRL_SCOPE:
    case X509_V_ERR_CRL_PATH_VALIDATION_ERROR:
        snprintf(buf, len, "%s: %s (%s)", crl, X509_verify_cert_error_string(error), subject);
        break;
    case X509_V_ERR_INVALID_PURPOSE:
        format_purpose(cert, subject, buf, len);
        break;
    case X509_V_ERR_INVALID_NON_CA:
        /* Raised by tls_context at the leaf, which OpenSSL lets through as one. */
        snprintf(buf, len, "certificate is a CA certificate (basicConstraints CA:TRUE), not a leaf (%s)",
                 subject);
        break;
    case X509_V_ERR_HOSTNAME_MISMATCH:
    case X509_V_ERR_IP_ADDRESS_MISMATCH:
    case X509_V_ERR_EMAIL_MISMATCH:
        snprintf(buf, len, "server certificate does not match server_name %s (%s)",
                 server_name != NULL ? server_name : "(unset)", subject);
        break;
    case X509_V_ERR_CA_MD_TOO_WEAK:
        /* OpenSSL raises this one for every certificate in the chain, leaf included. */
        describe_signature_digest(cert, detail, sizeof(detail));
        snprintf(buf, len, "weak signature digest (%s) on %s", detail, subject);
        break;
    case X509_V_ERR_EE_KEY_TOO_SMALL:
    case X509_V_ERR_CA_KEY_TOO_SMALL:
        describe_key(cert, detail, sizeof(detail));
        snprintf(buf, len, "key too small (%s) in %s", detail, subject);
        break;
    default:
        snprintf(buf, len, "certificate verification failed: %s (%s)", X509_verify_cert_error_string(error),
                 subject);
        break;
    }
}
