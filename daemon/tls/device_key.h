/* device_key — private keys that stay in a device and are used through OpenSSL: a
 * PKCS#11 token through the pkcs11 engine (libengine-pkcs11-openssl). Never prompts:
 * a missing PIN fails the load. */
#ifndef KTLSTUN_DEVICE_KEY_H
#define KTLSTUN_DEVICE_KEY_H

#include <stddef.h>

#include <openssl/evp.h>

/* Loads the key URI (pkcs11:…) from a token through the pkcs11 engine, with MODULE
 * (the PKCS#11 library; NULL = the engine's default, p11-kit's proxy) and PIN (NULL =
 * none; copied by the engine, the caller wipes its own). One engine serves the
 * process: a second MODULE differing from the first is refused. Returns the key (the
 * caller frees it; it keeps the engine alive), or NULL with the reason in REASON. */
EVP_PKEY *device_key_pkcs11(const char *uri, const char *module, const char *pin,
                            char *reason, size_t len);

#endif
