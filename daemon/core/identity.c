#include "core/identity.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/log.h"
#include "core/text.h"

/* Writes the LEN bytes at DATA as a new string in which a NUL, a control character
 * (and, for ASN.1 types that only allow ASCII, any byte >= 0x80) becomes "\XX", and a
 * backslash becomes "\\". Nothing is dropped, so "good.example\0.evil" can never come
 * out as "good.example", and the escaping itself can never be forged by a literal
 * backslash in the certificate. Returns NULL when out of memory. */
static char *escape_bytes(const unsigned char *data, size_t len, int ascii_only)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out = malloc(len * 3 + 1);
    if (out == NULL)
        return NULL;
    size_t pos = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = data[i];
        if (c == '\\') {
            out[pos++] = '\\';
            out[pos++] = '\\';
        } else if (c < 0x20 || c == 0x7f || (ascii_only && c >= 0x80)) {
            out[pos++] = '\\';
            out[pos++] = hex[c >> 4];
            out[pos++] = hex[c & 0x0f];
        } else {
            out[pos++] = (char)c;
        }
    }
    out[pos] = '\0';
    return out;
}

int identity_value_has_escapes(const char *value)
{
    for (const char *cursor = value; *cursor != '\0'; cursor++) {
        if (*cursor != '\\')
            continue;
        if (cursor[1] != '\\')
            return 1;
        cursor++;
    }
    return 0;
}

static int is_cn_type(const char *type, size_t len)
{
    return (len == 2 && strncasecmp(type, "CN", 2) == 0) ||
           (len == 10 && strncasecmp(type, "commonName", 10) == 0) ||
           (len == 7 && strncmp(type, "2.5.4.3", 7) == 0);
}

int identity_subject_cn(const char *subject, char *cn, size_t len)
{
    unsigned char value[1024], found[1024];
    size_t found_len = 0;
    int count = 0;
    const char *at = subject;
    for (;;) {
        const char *type = at;
        while (isalnum((unsigned char)*at) || *at == '.' || *at == '-')
            at++;
        if (at == type || *at != '=')
            return count > 0 ? -1 : 0;   /* not a name, or one that breaks off */
        size_t type_len = (size_t)(at - type), value_len = 0;
        for (at++; *at != '\0' && *at != ',' && *at != '+'; at++) {
            int c = (unsigned char)*at;
            if (c == '\\') {
                int hi = text_hex_digit(at[1]), lo = hi >= 0 ? text_hex_digit(at[2]) : -1;
                if (lo >= 0) {
                    c = hi * 16 + lo;
                    at += 2;
                } else if (at[1] != '\0') {
                    c = (unsigned char)*++at;
                } else {
                    return -1;
                }
            }
            if (value_len == sizeof(value))
                return -1;
            value[value_len++] = (unsigned char)c;
        }
        if (is_cn_type(type, type_len)) {
            if (count++ > 0)
                return -1;
            memcpy(found, value, value_len);
            found_len = value_len;
        }
        if (*at == '\0')
            break;
        at++;
    }
    if (count == 0)
        return 0;
    char *text = escape_bytes(found, found_len, 0);
    int fits = text != NULL && strlen(text) < len;
    if (fits)
        snprintf(cn, len, "%s", text);
    free(text);
    return fits ? 1 : -1;
}

/* Directory string types (UTF8String, BMPString, ...) are converted to UTF-8 first, so
 * only bytes that are not valid in their type end up escaped. OpenSSL refuses to parse
 * names that do not convert, but should one get through it is kept as escaped raw
 * bytes: still worth logging, and its escapes keep it from matching a rule. */
static char *name_entry_text(const X509_NAME_ENTRY *entry)
{
    const ASN1_STRING *data = X509_NAME_ENTRY_get_data(entry);
    unsigned char *utf8 = NULL;
    int utf8_len = ASN1_STRING_to_UTF8(&utf8, data);
    char *text;
    if (utf8_len >= 0) {
        text = escape_bytes(utf8, (size_t)utf8_len, 0);
        OPENSSL_free(utf8);
    } else {
        text = escape_bytes(ASN1_STRING_get0_data(data), (size_t)ASN1_STRING_length(data), 1);
    }
    return text;
}

/* RFC 2253 escaping (ESC_2253 | ESC_CTRL | UTF8_CONVERT | DUMP_UNKNOWN ...), but UTF-8
 * left readable: the log line is UTF-8 anyway and "Jos\C3\A9" helps nobody. */
#define NAME_PRINT_FLAGS (XN_FLAG_RFC2253 & ~ASN1_STRFLGS_ESC_MSB)

char *identity_format_name(const X509_NAME *name, char *buf, size_t len)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *text = NULL;
    long text_len = 0;
    snprintf(buf, len, "(unreadable name)");
    if (bio == NULL)
        goto out;
    if (X509_NAME_print_ex(bio, name, 0, NAME_PRINT_FLAGS) < 0)
        goto out;
    text_len = BIO_get_mem_data(bio, &text);
    if (text_len == 0)
        snprintf(buf, len, "(empty name)");
    else if (text_len > 0)
        snprintf(buf, len, "%.*s", (int)text_len, text);
out:
    BIO_free(bio);
    return buf;
}

static int read_subject(struct identity *id, const X509_NAME *name, const char **failure)
{
    int result = -1;
    unsigned long flags = NAME_PRINT_FLAGS;
    BIO *bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        *failure = "out of memory";
        goto out;
    }
    if (X509_NAME_print_ex(bio, name, 0, flags) < 0) {
        *failure = "cannot print the subject";
        goto out;
    }
    char *text = NULL;
    long len = BIO_get_mem_data(bio, &text);
    id->subject = strndup(len > 0 ? text : "", len > 0 ? (size_t)len : 0);
    if (id->subject == NULL) {
        *failure = "out of memory";
        goto out;
    }
    result = 0;
out:
    BIO_free(bio);
    return result;
}

static int read_name_entries(struct identity *id, const X509_NAME *name, const char **failure)
{
    int cn_index = X509_NAME_get_index_by_NID(name, NID_commonName, -1);
    if (cn_index >= 0) {
        id->cn = name_entry_text(X509_NAME_get_entry(name, cn_index));
        if (id->cn == NULL)
            goto oom;
    }
    for (int index = -1;;) {
        index = X509_NAME_get_index_by_NID(name, NID_organizationalUnitName, index);
        if (index < 0)
            break;
        char *ou = name_entry_text(X509_NAME_get_entry(name, index));
        if (ou == NULL)
            goto oom;
        int appended = string_list_append(&id->ou, ou, strlen(ou));
        free(ou);
        if (appended < 0)
            goto oom;
    }
    return 0;
oom:
    *failure = "out of memory";
    return -1;
}

/* Appends "PREFIX:TEXT" to the log form of the SANs. */
static int add_san_text(struct string_list *sans, const char *prefix, const char *text)
{
    char *item = NULL;
    int len = asprintf(&item, "%s:%s", prefix, text);
    if (len < 0)
        return -1;
    int appended = string_list_append(sans, item, (size_t)len);
    free(item);
    return appended;
}

static int add_ia5_san(struct string_list *list, struct string_list *sans, const char *prefix,
                       const ASN1_IA5STRING *value)
{
    /* IA5String is ASCII: a NUL or a high byte makes the name invalid, and escaping
     * (rather than strlen) keeps it from being read as a shorter, valid one. */
    char *text = escape_bytes(ASN1_STRING_get0_data(value), (size_t)ASN1_STRING_length(value), 1);
    if (text == NULL)
        return -1;
    int result = string_list_append(list, text, strlen(text));
    if (result == 0)
        result = add_san_text(sans, prefix, text);
    free(text);
    return result;
}

static int add_ip_san(struct string_list *sans, const ASN1_OCTET_STRING *value)
{
    char text[INET6_ADDRSTRLEN] = "";
    int family = ASN1_STRING_length(value) == 4    ? AF_INET
                 : ASN1_STRING_length(value) == 16 ? AF_INET6
                                                   : AF_UNSPEC;
    if (family == AF_UNSPEC || inet_ntop(family, ASN1_STRING_get0_data(value), text, sizeof(text)) == NULL)
        snprintf(text, sizeof(text), "(invalid)");
    return add_san_text(sans, "IP", text);
}

static int read_sans(struct identity *id, X509 *cert, const char **failure)
{
    int result = -1;
    int critical = 0;
    struct string_list sans = {0};
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, &critical, NULL);
    if (names == NULL && critical != -1) {
        /* -2: the extension appears twice; >= 0: it does not decode. Either way the
         * certificate's names are ambiguous, so no identity rather than a guess. */
        *failure = critical == -2 ? "subjectAltName appears more than once"
                                  : "subjectAltName does not decode";
        goto out;
    }
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
        int added = 0;
        switch (name->type) {
        case GEN_DNS:
            added = add_ia5_san(&id->dns, &sans, "DNS", name->d.dNSName);
            break;
        case GEN_URI:
            added = add_ia5_san(&id->uri, &sans, "URI", name->d.uniformResourceIdentifier);
            break;
        case GEN_EMAIL:
            added = add_ia5_san(&id->email, &sans, "email", name->d.rfc822Name);
            break;
        case GEN_IPADD:
            added = add_ip_san(&sans, name->d.iPAddress);
            break;
        default:
            break;
        }
        if (added < 0) {
            *failure = "out of memory";
            goto out;
        }
    }
    id->sans = string_list_join(&sans, ",");
    if (id->sans == NULL) {
        *failure = "out of memory";
        goto out;
    }
    result = 0;
out:
    string_list_clear(&sans);
    GENERAL_NAMES_free(names);
    return result;
}

static int read_fingerprints(struct identity *id, X509 *cert, const char **failure)
{
    int result = -1;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    unsigned char *spki = NULL;

    if (X509_digest(cert, EVP_sha256(), digest, &digest_len) != 1 || digest_len != 32) {
        *failure = "cannot hash the certificate";
        goto out;
    }
    text_hex_encode(digest, digest_len, id->sha256);

    /* The whole DER SubjectPublicKeyInfo (RFC 7469 pins), not X509_pubkey_digest(),
     * which hashes only the key's BIT STRING. */
    int spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &spki);
    if (spki_len <= 0 || EVP_Digest(spki, (size_t)spki_len, digest, &digest_len, EVP_sha256(), NULL) != 1) {
        *failure = "cannot hash the public key";
        goto out;
    }
    text_hex_encode(digest, digest_len, id->spki_sha256);
    result = 0;
out:
    OPENSSL_free(spki);
    return result;
}

struct identity *identity_from_cert(X509 *cert)
{
    const char *failure = "out of memory";
    struct identity *id = calloc(1, sizeof(*id));
    if (id == NULL)
        goto out;
    const X509_NAME *subject = X509_get_subject_name(cert);
    if (read_subject(id, subject, &failure) < 0 || read_name_entries(id, subject, &failure) < 0 ||
        read_sans(id, cert, &failure) < 0 || read_fingerprints(id, cert, &failure) < 0)
        goto out;
    failure = NULL;
out:
    if (failure != NULL) {
        log_openssl(LOG_LEVEL_ERROR, "cannot read the identity of peer certificate %s: %s",
                    id != NULL && id->subject != NULL ? id->subject : "(subject unreadable)", failure);
        identity_free(id);
        id = NULL;
    }
    return id;
}

void identity_free(struct identity *id)
{
    if (id == NULL)
        return;
    free(id->subject);
    free(id->cn);
    string_list_clear(&id->ou);
    string_list_clear(&id->dns);
    string_list_clear(&id->uri);
    string_list_clear(&id->email);
    free(id->sans);
    free(id);
}
