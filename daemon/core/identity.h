/* identity — who a peer certificate names: subject, CN, OUs, SANs, fingerprints. */
#ifndef KTLSTUN_IDENTITY_H
#define KTLSTUN_IDENTITY_H

#include <openssl/x509.h>

#include "core/string_list.h"

struct identity {
    char *subject;             /* RFC 2253 one line, "CN=alice,OU=eng,O=Example" */
    char *cn;                  /* first commonName, NULL when absent             */
    struct string_list ou;     /* every organizationalUnitName                   */
    struct string_list dns;    /* SAN dNSName                                    */
    struct string_list uri;    /* SAN uniformResourceIdentifier                  */
    struct string_list email;  /* SAN rfc822Name                                 */
    char *sans;                /* "DNS:a,URI:b,email:c" for logs, "" when none   */
    char sha256[65];           /* certificate fingerprint, lowercase hex         */
    char spki_sha256[65];      /* SubjectPublicKeyInfo SHA-256, lowercase hex    */
};

/* Extracts the identity of CERT. Returns a new identity the caller frees with
 * identity_free(), or NULL on allocation or encoding failure (logged). Names with
 * embedded NULs or control characters are escaped, never truncated silently. */
struct identity *identity_from_cert(X509 *cert);

/* Returns 1 when VALUE (a cn, ou, dns, uri or email string of an identity) holds a
 * "\XX" escape (two hex digits): the certificate's string had a NUL, a control
 * character or a byte its ASN.1 type forbids. Such a value is shown in logs but must
 * never satisfy an allow rule. A literal backslash is always written "\\", so the
 * test is unambiguous. */
int identity_value_has_escapes(const char *value);

/* Writes NAME in the one-line RFC 2253 form subjects take here ("CN=alice,O=Example",
 * UTF-8 left readable) into BUF (LEN bytes, truncated to fit): "(empty name)" when it
 * has no entry, "(unreadable name)" when it cannot be printed. Returns BUF. */
char *identity_format_name(const X509_NAME *name, char *buf, size_t len);

/* Reads SUBJECT as a one-line RFC 2253 name ("CN=alice,O=Example", escapes "\," and
 * "\XX" undone) and writes its commonName into CN (LEN bytes) in the form of
 * struct identity's cn, which is what grants and locks carry for a certificate that
 * has one. Returns 1 with CN written; 0 when SUBJECT is not such a name or has no
 * commonName; -1 when it names more than one or the value does not fit. */
int identity_subject_cn(const char *subject, char *cn, size_t len);

/* Frees ID (NULL is fine). */
void identity_free(struct identity *id);

#endif
