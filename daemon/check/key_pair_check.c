#include "check/key_pair_check.h"

#include <sys/stat.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "tls/key_source.h"

static int matches(X509 *cert, EVP_PKEY *key)
{
    EVP_PKEY *public = X509_get0_pubkey(cert);
    int same = public != NULL && EVP_PKEY_eq(public, key) == 1;
    ERR_clear_error();
    return same;
}

/* Reports a key that does not belong to the first certificate of MATERIAL. */
static int check_match(const struct tunnel_config *tunnel, const struct key_material *material,
                       struct check_report *report)
{
    if (matches(material->leaf, material->key))
        return 0;
    for (int i = 0; i < sk_X509_num(material->chain); i++) {
        if (!matches(sk_X509_value(material->chain, i), material->key))
            continue;
        /* A CA first is cert_check's "the leaf must come first". */
        if ((X509_get_extension_flags(material->leaf) & EXFLAG_CA) == 0)
            check_report_tunnel(report, CHECK_ERROR, tunnel, "cert",
                                "%s: key %s belongs to certificate %d in the file, not to the "
                                "first: put the leaf first, then its intermediates",
                                tunnel->cert, key_source_name(tunnel), i + 2);
        return -1;
    }
    check_report_tunnel(report, CHECK_ERROR, tunnel, "key",
                        "key %s does not belong to certificate %s (the certificate's public "
                        "key differs): give the key the certificate was issued for",
                        key_source_name(tunnel), tunnel->cert);
    return -1;
}

/* A passphrase file others can read gives the key away with it. */
static void check_passphrase_mode(const struct tunnel_config *tunnel, struct check_report *report)
{
    struct stat info;
    if (tunnel->key_passphrase_file == NULL || stat(tunnel->key_passphrase_file, &info) < 0 ||
        (info.st_mode & 077) == 0)
        return;
    check_report_tunnel(report, CHECK_WARNING, tunnel, "key_passphrase_file",
                        "%s can be read by its group or others (mode %04o): chmod 0600 %s",
                        tunnel->key_passphrase_file, (unsigned)(info.st_mode & 07777),
                        tunnel->key_passphrase_file);
}

int key_pair_check_tunnel(const struct tunnel_config *tunnel, struct check_report *report)
{
    struct key_material material;
    struct key_source_error error;
    if (tunnel->cert == NULL)
        return 0;
    check_passphrase_mode(tunnel, report);
    if (key_source_load(tunnel, &material, &error) < 0) {
        check_report_tunnel(report, CHECK_ERROR, tunnel, error.key, "%s", error.reason);
        return -1;
    }
    int result = check_match(tunnel, &material, report);
    key_source_release(&material);
    return result;
}
