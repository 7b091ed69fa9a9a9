/* The engine API is deprecated in OpenSSL 3 but is the only way Debian 12 reaches a
 * PKCS#11 token (it has no pkcs11-provider): its warnings are silenced here alone. */
#define OPENSSL_SUPPRESS_DEPRECATED

#include "tls/device_key.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/engine.h>
#include <openssl/err.h>
#include <openssl/ui.h>

#include "core/log.h"


/* The process's one pkcs11 engine (initialised) and the module it was given. */
static ENGINE *pkcs11_engine;
static char *pkcs11_engine_module;

static int same_module(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static ENGINE *open_engine(const char *module, char *reason, size_t len)
{
    if (pkcs11_engine != NULL) {
        if (same_module(module, pkcs11_engine_module))
            return pkcs11_engine;
        snprintf(reason, len, "the pkcs11 engine of this process already uses %s; every "
                 "tunnel with a PKCS#11 key needs the same pkcs11_module",
                 pkcs11_engine_module != NULL ? pkcs11_engine_module : "its default module");
        return NULL;
    }
    ENGINE *engine = ENGINE_by_id("pkcs11");
    char *copy = module != NULL ? strdup(module) : NULL;
    if (engine == NULL) {
        snprintf(reason, len, "the pkcs11 engine cannot be loaded (install "
                 "libengine-pkcs11-openssl): %s", log_openssl_reason("not found"));
        goto fail;
    }
    if (module != NULL && (copy == NULL ||
                           !ENGINE_ctrl_cmd_string(engine, "MODULE_PATH", module, 0))) {
        snprintf(reason, len, "the pkcs11 engine does not take the module %s: %s", module,
                 log_openssl_reason("out of memory"));
        goto fail;
    }
    if (!ENGINE_init(engine)) {
        snprintf(reason, len, "the pkcs11 engine cannot start%s%s: %s",
                 module != NULL ? " with " : "", module != NULL ? module : "",
                 log_openssl_reason(NULL));
        goto fail;
    }
    /* ENGINE_init took a functional reference; the structural one is ours to drop. */
    ENGINE_free(engine);
    pkcs11_engine = engine;
    pkcs11_engine_module = copy;
    return engine;

fail:
    free(copy);
    ENGINE_free(engine);
    return NULL;
}

EVP_PKEY *device_key_pkcs11(const char *uri, const char *module, const char *pin,
                            char *reason, size_t len)
{
    EVP_PKEY *key = NULL;
    ENGINE *engine = open_engine(module, reason, len);
    if (engine == NULL)
        goto out;
    if (pin != NULL && !ENGINE_ctrl_cmd_string(engine, "PIN", pin, 0)) {
        snprintf(reason, len, "the pkcs11 engine does not take the PIN: %s",
                 log_openssl_reason(NULL));
        goto out;
    }
    /* UI_null: a daemon has no terminal to ask a PIN on. */
    key = ENGINE_load_private_key(engine, uri, (UI_METHOD *)UI_null(), NULL);
    if (key == NULL)
        snprintf(reason, len, "no private key found in the token for %s (check the token "
                 "and object names, and the PIN%s): %s", uri, pin == NULL ? ", none is set" : "",
                 log_openssl_reason(NULL));
out:
    ERR_clear_error();
    return key;
}
