#include "config/key_source_keys.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config/key_file.h"

#define PKCS11_SCHEME "pkcs11:"
#define HANDLE_SCHEME "handle:"

static int has_scheme(const char *value, const char *scheme)
{
    return strncasecmp(value, scheme, strlen(scheme)) == 0;
}

int key_source_keys_set_cert(struct config_loader *ld, const struct ini_section *section,
                             const struct ini_key *key, struct tunnel_config *tunnel)
{
    /* Refused by its scheme alone: what follows may be cut at a ';' and would
     * otherwise be opened as a relative path. */
    if (has_scheme(key->value, PKCS11_SCHEME) || has_scheme(key->value, HANDLE_SCHEME) ||
        has_scheme(key->value, "tpm2:")) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "a certificate is read from a file (PEM or PKCS#12); a PKCS#11 "
                            "token holds the key only (key = pkcs11:...)");
        return -1;
    }
    return config_loader_file(ld, section, key, 0, &tunnel->cert, NULL);
}

/* 0x81000000 to 0x81ffffff: the owner's persistent objects, which outlive a restart
 * and need no parent loaded (a transient key would take the TPM's few object slots). */
static int is_persistent_handle(const char *text)
{
    size_t len = strlen(text);
    if (len != 10 || strncasecmp(text, "0x81", 4) != 0)
        return 0;
    return strspn(text + 4, "0123456789abcdefABCDEF") == 6;
}

static int copy_uri(struct config_loader *ld, const struct ini_key *key,
                    struct tunnel_config *tunnel, enum key_location location)
{
    char *copy = strdup(key->value);
    if (copy == NULL) {
        ld->out_of_memory = 1;
        return -1;
    }
    free(tunnel->key);
    tunnel->key = copy;
    tunnel->key_location = location;
    return 0;
}

int key_source_keys_set_key(struct config_loader *ld, const struct ini_section *section,
                            const struct ini_key *key, struct tunnel_config *tunnel)
{
    if (has_scheme(key->value, PKCS11_SCHEME))
        return copy_uri(ld, key, tunnel, KEY_LOCATION_PKCS11);
    if (has_scheme(key->value, HANDLE_SCHEME)) {
        if (!is_persistent_handle(key->value + strlen(HANDLE_SCHEME))) {
            config_loader_error(ld, key->line, section->name, key->name,
                                "'%s' is not a persistent TPM handle: give key = "
                                "handle:0x81000000 to handle:0x81ffffff", key->value);
            return -1;
        }
        if (copy_uri(ld, key, tunnel, KEY_LOCATION_TPM) < 0)
            return -1;
        /* The tpm2 provider knows its scheme in lower case only. */
        memcpy(tunnel->key, HANDLE_SCHEME, strlen(HANDLE_SCHEME));
        return 0;
    }
    if (has_scheme(key->value, "tpm2:")) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "a key in a TPM is given by its persistent handle: "
                            "key = handle:0x81000001");
        return -1;
    }
    tunnel->key_location = KEY_LOCATION_FILE;
    return config_loader_file(ld, section, key, 0, &tunnel->key, NULL);
}

static int set_passphrase_file(struct config_loader *ld, const struct ini_section *section,
                               const struct ini_key *key, struct tunnel_config *tunnel)
{
    return config_loader_file(ld, section, key, 0, &tunnel->key_passphrase_file, NULL);
}

static int set_passphrase_credential(struct config_loader *ld, const struct ini_section *section,
                                     const struct ini_key *key, struct tunnel_config *tunnel)
{
    if (config_loader_require_value(ld, section, key) < 0)
        return -1;
    /* A name inside $CREDENTIALS_DIRECTORY, as LoadCredential= gives it. */
    if (strchr(key->value, '/') != NULL || strcmp(key->value, ".") == 0 ||
        strcmp(key->value, "..") == 0) {
        config_loader_error(ld, key->line, section->name, key->name,
                            "'%s' is not a credential name (the name given to LoadCredential=, "
                            "without '/')", key->value);
        return -1;
    }
    return config_loader_copy_string(ld, section, key, &tunnel->key_passphrase_credential);
}

static int set_pkcs11_module(struct config_loader *ld, const struct ini_section *section,
                             const struct ini_key *key, struct tunnel_config *tunnel)
{
    return config_loader_file(ld, section, key, 0, &tunnel->pkcs11_module, NULL);
}

static const struct config_tunnel_key key_source_keys[] = {
    { "key_passphrase_file", SCOPE_ANY, 0, set_passphrase_file },
    { "key_passphrase_credential", SCOPE_ANY, 0, set_passphrase_credential },
    { "pkcs11_module", SCOPE_ANY, 0, set_pkcs11_module },
};

const struct config_tunnel_key *key_source_keys_list(size_t *count)
{
    *count = sizeof(key_source_keys) / sizeof(key_source_keys[0]);
    return key_source_keys;
}

int key_source_keys_not_needed(const struct tunnel_config *tunnel, const char *name)
{
    return strcmp(name, "key") == 0 && tunnel->cert != NULL &&
           key_file_sniff(tunnel->cert) == KEY_FILE_PKCS12;
}

int key_source_keys_finish(struct config_loader *ld, const struct ini_section *section,
                           const struct tunnel_config *tunnel)
{
    const struct ini_key *file = ini_source_find_key(section, "key_passphrase_file");
    const struct ini_key *credential = ini_source_find_key(section, "key_passphrase_credential");
    if (file != NULL && credential != NULL) {
        config_loader_error(ld, credential->line, section->name, credential->name,
                            "key_passphrase_file is set too (line %d): give the passphrase "
                            "one way", file->line);
        return -1;
    }
    const struct ini_key *pass = file != NULL ? file : credential;
    if (pass != NULL && tunnel->key_location == KEY_LOCATION_TPM) {
        config_loader_error(ld, pass->line, section->name, pass->name,
                            "a key in a TPM (key = handle:...) takes no passphrase: remove it");
        return -1;
    }
    const struct ini_key *module = ini_source_find_key(section, "pkcs11_module");
    if (module != NULL && tunnel->key != NULL && tunnel->key_location != KEY_LOCATION_PKCS11) {
        config_loader_error(ld, module->line, section->name, module->name,
                            "only used with a key in a PKCS#11 token (key = pkcs11:...)");
        return -1;
    }
    return 0;
}

void key_source_keys_free(struct tunnel_config *tunnel)
{
    free(tunnel->key_passphrase_file);
    free(tunnel->key_passphrase_credential);
    free(tunnel->pkcs11_module);
}
