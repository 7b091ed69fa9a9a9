#include "config/key_file.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pkcs12.h>

/* Larger than any PEM key or certificate chain a tunnel uses; a bigger file is
 * sniffed by its beginning only. */
#define SNIFF_MAX ((size_t)1024 * 1024)

static int contains(const unsigned char *data, size_t len, const char *text)
{
    size_t text_len = strlen(text);
    for (size_t i = 0; i + text_len <= len; i++)
        if (memcmp(data + i, text, text_len) == 0)
            return 1;
    return 0;
}

enum key_file_kind key_file_sniff(const char *path)
{
    enum key_file_kind kind = KEY_FILE_UNREAD;
    size_t len = 0;
    unsigned char *data = malloc(SNIFF_MAX);
    FILE *in = data != NULL ? fopen(path, "rbe") : NULL;
    if (in == NULL)
        goto out;
    len = fread(data, 1, SNIFF_MAX, in);
    kind = KEY_FILE_OTHER;
    /* A PFX is a DER SEQUENCE; PEM text never starts with 0x30. */
    if (len > 0 && data[0] == 0x30) {
        const unsigned char *cursor = data;
        PKCS12 *p12 = d2i_PKCS12(NULL, &cursor, (long)len);
        if (p12 != NULL)
            kind = KEY_FILE_PKCS12;
        PKCS12_free(p12);
    } else if (contains(data, len, "-----BEGIN ENCRYPTED PRIVATE KEY-----") ||
               contains(data, len, "Proc-Type: 4,ENCRYPTED")) {
        kind = KEY_FILE_ENCRYPTED;
    } else if (contains(data, len, "-----BEGIN TSS2 PRIVATE KEY-----")) {
        kind = KEY_FILE_TSS2;
    }
out:
    if (data != NULL)
        OPENSSL_cleanse(data, len);
    if (in != NULL)
        fclose(in);
    free(data);
    ERR_clear_error();
    return kind;
}
