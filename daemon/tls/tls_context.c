#include "tls/tls_context.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls/allow.h"
#include "ktls/ktls_offload.h"
#include "core/log.h"
#include "tls/first_record.h"
#include "tls/key_source.h"
#include "tls/tls_alert.h"
#include "tls/tpm_key.h"
#include "tls/verified_chains.h"
#include "tls/verify_reason.h"

/* "FILE:LINE: [tunnel] key:" — errors found while loading what a key names point at
 * the line that named it, like every other configuration error. The buffer is static:
 * each use is consumed by the log call it is an argument of. */
static const char *where(const struct tunnel_config *tunnel, const char *key)
{
    static char buf[600];
    snprintf(buf, sizeof(buf), "%s:%d: [%s] %s:", tunnel->source ? tunnel->source : "(config)",
             config_key_line(tunnel, key), tunnel->name, key);
    return buf;
}

/* Encrypted keys would otherwise make OpenSSL prompt on the terminal of a daemon. */
static int refuse_passphrase(char *buf, int size, int rwflag, void *userdata)
{
    (void)buf, (void)size, (void)rwflag, (void)userdata;
    return 0;
}

/* Loads TUNNEL's chain and key (tls/key_source: files, PKCS#12, tokens, TPMs) into
 * CTX. Returns 0, or -1 after logging at the line of the key concerned. */
static int use_key_material(SSL_CTX *ctx, const struct tunnel_config *tunnel)
{
    struct key_material material;
    struct key_source_error error;
    int result = -1;
    if (key_source_load(tunnel, &material, &error) < 0) {
        log_error("%s %s", where(tunnel, error.key), error.reason);
        return -1;
    }
    const char *key = key_source_name(tunnel);
    if (X509_check_private_key(material.leaf, material.key) != 1) {
        /* OpenSSL's "key values mismatch" says less than this. */
        ERR_clear_error();
        log_error("%s key %s does not belong to certificate %s (the certificate's public key "
                  "differs)", where(tunnel, "key"), key, tunnel->cert);
        goto out;
    }
    /* A TPM's key joins the context in each worker (tls_context_attach_tpm_key). */
    EVP_PKEY *private = tunnel->key_location == KEY_LOCATION_TPM ? NULL : material.key;
    if (private == NULL && (SSL_CTX_use_certificate(ctx, material.leaf) != 1 ||
                            SSL_CTX_set1_chain(ctx, material.chain) != 1)) {
        log_openssl(LOG_LEVEL_ERROR, "%s %s", where(tunnel, "cert"), tunnel->cert);
        goto out;
    }
    if (private != NULL &&
        SSL_CTX_use_cert_and_key(ctx, material.leaf, private, material.chain, 1) != 1) {
        log_openssl(LOG_LEVEL_ERROR, "%s %s", where(tunnel, "cert"), tunnel->cert);
        goto out;
    }
    result = 0;
out:
    key_source_release(&material);
    return result;
}

int tls_context_attach_tpm_key(SSL_CTX *ctx, const struct tunnel_config *tunnel)
{
    char reason[1024];
    if (tunnel->key_location != KEY_LOCATION_TPM)
        return 0;
    if (tpm_key_attach(ctx, tunnel->key, reason, sizeof(reason)) < 0) {
        log_error("%s %s", where(tunnel, "key"), reason);
        return -1;
    }
    return 0;
}

static const char *expected_server_name(const struct tunnel_config *tunnel)
{
    if (tunnel->server_name != NULL)
        return tunnel->server_name;
    return tunnel->target.kind == ADDRESS_INET ? tunnel->target.host : NULL;
}

/* The context owns its table of verified chains: both end with the generation. */
static void free_verified_chains(void *parent, void *table, CRYPTO_EX_DATA *ad, int index,
                                 long argl, void *argp)
{
    (void)parent, (void)ad, (void)index, (void)argl, (void)argp;
    verified_chains_free(table);
}

static int verified_chains_index(void)
{
    static int index = -1;
    if (index < 0)
        index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, free_verified_chains);
    return index;
}

/* Verifies the chain the peer sent, or finds that it verified a moment ago. Returns 1
 * when it is trusted; otherwise the store context says why. */
static int verify_chain(X509_STORE_CTX *store_ctx, SSL *ssl)
{
    SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);
    struct verified_chains *chains = SSL_CTX_get_ex_data(ctx, verified_chains_index());
    unsigned char digest[VERIFIED_CHAINS_DIGEST_LEN];
    time_t now = time(NULL);
    int hashed = chains != NULL &&
                 verified_chains_digest(chains, X509_STORE_CTX_get0_cert(store_ctx),
                                        X509_STORE_CTX_get0_untrusted(store_ctx), digest) == 0;
    if (hashed && verified_chains_contains(chains, digest, now))
        return 1;
    if (X509_verify_cert(store_ctx) <= 0)
        return 0;
    if (hashed) {
        time_t until = verified_chains_chain_end(X509_STORE_CTX_get0_chain(store_ctx), now);
        long long crl_next_update = tls_context_crl_next_update(ctx);
        if (crl_next_update >= 0 && crl_next_update < (long long)until)
            until = (time_t)crl_next_update;
        verified_chains_remember(chains, digest, now, until);
    }
    return 1;
}

static const struct tls_gate *registered_gate;

void tls_context_set_gate(const struct tls_gate *gate)
{
    registered_gate = gate;
}

static int is_gated(const struct tunnel_config *tunnel)
{
    return tunnel->mode == TUNNEL_MODE_SERVER && tunnel->second_factor != SECOND_FACTOR_NONE;
}

/* A gated tunnel without its gate refuses: the check cannot be made. */
static int gate_admits(SSL *ssl, const struct tunnel_config *tunnel, struct tls_peer *peer)
{
    if (!is_gated(tunnel))
        return 1;
    if (registered_gate == NULL) {
        snprintf(peer->refusal, sizeof(peer->refusal), "second factor required but this "
                 "process has no login service");
        return 0;
    }
    return registered_gate->admit(ssl, tunnel, peer->identity, peer->refusal,
                                  sizeof(peer->refusal));
}

/* OpenSSL's purpose checks read keyUsage and extendedKeyUsage only, so a CA
 * certificate that also has digitalSignature and clientAuth (or serverAuth) passes as
 * a leaf. A CA names an issuer, not a peer: refused here, as verification would, with
 * its error set on the leaf (verify_reason words it). Returns 1 for a leaf. */
static int leaf_is_end_entity(X509_STORE_CTX *store_ctx)
{
    X509 *leaf = X509_STORE_CTX_get0_cert(store_ctx);
    if ((X509_get_extension_flags(leaf) & EXFLAG_CA) == 0)
        return 1;
    X509_STORE_CTX_set_current_cert(store_ctx, leaf);
    X509_STORE_CTX_set_error_depth(store_ctx, 0);
    X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_INVALID_NON_CA);
    return 0;
}

/* With several CNs, allow_cn and user_map = cn read the first in DER order while the
 * subject in logs (RFC 2253) leads with the last: who was admitted would not be who
 * the logs name. Returns the number of commonName attributes in CERT's subject. */
static int common_name_count(X509 *cert)
{
    const X509_NAME *subject = X509_get_subject_name(cert);
    int count = 0;
    for (int index = -1; (index = X509_NAME_get_index_by_NID(subject, NID_commonName, index)) >= 0;)
        count++;
    return count;
}

/* Keeps the chain that passed with PEER, for checks after the handshake. Returns 1,
 * or 0 (refused: it could not be kept) when out of memory. */
static int keep_chain(X509_STORE_CTX *store_ctx, struct tls_peer *peer)
{
    X509 *leaf = X509_STORE_CTX_get0_cert(store_ctx);
    STACK_OF(X509) *sent = X509_STORE_CTX_get0_untrusted(store_ctx);
    X509_free(peer->leaf);
    sk_X509_pop_free(peer->sent, X509_free);
    peer->leaf = NULL;
    peer->sent = sent != NULL ? X509_chain_up_ref(sent) : NULL;
    if ((sent != NULL && peer->sent == NULL) || !X509_up_ref(leaf)) {
        snprintf(peer->refusal, sizeof(peer->refusal), "out of memory keeping the certificate chain");
        X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_OUT_OF_MEM);
        return 0;
    }
    peer->leaf = leaf;
    return 1;
}

/* The certificate is sound but this tunnel does not let it in (allow rules, pins, a
 * subject with several CNs): the client is told so with access_denied, where OpenSSL
 * would say handshake_failure. Returns 0, the verify callback's refusal. */
static int refuse_access(X509_STORE_CTX *store_ctx, SSL *ssl, const struct tunnel_config *tunnel)
{
    X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_APPLICATION_VERIFICATION);
    if (tunnel->mode == TUNNEL_MODE_SERVER && tls_alert_send(ssl, SSL_AD_ACCESS_DENIED) < 0)
        log_debug("[%s] access_denied alert not possible for this session; the client gets "
                  "handshake_failure", tunnel->name);
    return 0;
}

static int has_access_rules(const struct tunnel_config *tunnel)
{
    return tunnel->allow_cn.count + tunnel->allow_ou.count + tunnel->allow_dns.count +
           tunnel->allow_uri.count + tunnel->allow_email.count + tunnel->pin_sha256.count > 0;
}

static int verify_peer(X509_STORE_CTX *store_ctx, void *arg)
{
    const struct tunnel_config *tunnel = arg;
    SSL *ssl = X509_STORE_CTX_get_ex_data(store_ctx, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct tls_peer *peer = SSL_get_app_data(ssl);

    if (!verify_chain(store_ctx, ssl) || !leaf_is_end_entity(store_ctx)) {
        verify_reason_format(X509_STORE_CTX_get_error(store_ctx),
                             X509_STORE_CTX_get_current_cert(store_ctx), tunnel->crl,
                             expected_server_name(tunnel), peer->refusal, sizeof(peer->refusal));
        return 0;
    }
    identity_free(peer->identity);
    peer->identity = identity_from_cert(X509_STORE_CTX_get0_cert(store_ctx));
    if (peer->identity == NULL) {
        snprintf(peer->refusal, sizeof(peer->refusal), "certificate names could not be read");
        X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    int common_names = common_name_count(X509_STORE_CTX_get0_cert(store_ctx));
    if (tunnel->mode == TUNNEL_MODE_SERVER && common_names > 1) {
        snprintf(peer->refusal, sizeof(peer->refusal),
                 "certificate has %d commonName attributes; ktlstun accepts one (%s)", common_names,
                 peer->identity->subject);
        return refuse_access(store_ctx, ssl, tunnel);
    }
    if (!allow_check(tunnel, peer->identity, peer->refusal, sizeof(peer->refusal)))
        return refuse_access(store_ctx, ssl, tunnel);
    /* The gate sends its own alert (insufficient_security: log in first). */
    if (!gate_admits(ssl, tunnel, peer)) {
        X509_STORE_CTX_set_error(store_ctx, X509_V_ERR_APPLICATION_VERIFICATION);
        return 0;
    }
    return keep_chain(store_ctx, peer);
}

static int load_crls(SSL_CTX *ctx, const struct tunnel_config *tunnel)
{
    int result = -1;
    int loaded = 0;
    BIO *bio = BIO_new_file(tunnel->crl, "r");
    if (bio == NULL) {
        log_openssl(LOG_LEVEL_ERROR, "%s %s", where(tunnel, "crl"), tunnel->crl);
        goto out;
    }
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    X509_CRL *crl;
    while ((crl = PEM_read_bio_X509_CRL(bio, NULL, NULL, NULL)) != NULL) {
        int added = X509_STORE_add_crl(store, crl);
        X509_CRL_free(crl);
        if (!added) {
            log_openssl(LOG_LEVEL_ERROR, "%s %s", where(tunnel, "crl"), tunnel->crl);
            goto out_bio;
        }
        loaded++;
    }
    unsigned long code = ERR_peek_last_error();
    if (ERR_GET_REASON(code) == PEM_R_NO_START_LINE)
        ERR_clear_error();
    if (ERR_peek_error() != 0 || loaded == 0) {
        if (loaded == 0)
            log_error("%s %s: no CRL found in the file", where(tunnel, "crl"), tunnel->crl);
        else
            log_openssl(LOG_LEVEL_ERROR, "%s %s", where(tunnel, "crl"), tunnel->crl);
        goto out_bio;
    }
    /* Like nginx: every CA in the chain must have a CRL, so a revoked intermediate
     * cannot slip through because only the leaf's issuer was checked. */
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    result = 0;
out_bio:
    BIO_free(bio);
out:
    return result;
}

static int add_ca_file(SSL_CTX *ctx, const struct tunnel_config *tunnel, const char *path, int *count)
{
    int result = -1;
    BIO *bio = BIO_new_file(path, "r");
    if (bio == NULL) {
        log_openssl(LOG_LEVEL_ERROR, "%s %s", where(tunnel, "ca"), path);
        goto out;
    }
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    X509 *cert;
    while ((cert = PEM_read_bio_X509(bio, NULL, NULL, NULL)) != NULL) {
        int added = X509_STORE_add_cert(store, cert) && SSL_CTX_add_client_CA(ctx, cert);
        X509_free(cert);
        if (!added) {
            log_openssl(LOG_LEVEL_ERROR, "%s %s", where(tunnel, "ca"), path);
            goto out_bio;
        }
        (*count)++;
    }
    if (ERR_GET_REASON(ERR_peek_last_error()) == PEM_R_NO_START_LINE)
        ERR_clear_error();
    if (ERR_peek_error() != 0) {
        log_openssl(LOG_LEVEL_ERROR, "%s %s", where(tunnel, "ca"), path);
        goto out_bio;
    }
    result = 0;
out_bio:
    BIO_free(bio);
out:
    return result;
}

/* A CA directory is read whole: every regular file's certificates (an `openssl rehash`
 * directory of HASH.0 links works, and so does a plain folder of *.pem), so a reload
 * sees added or removed roots. Files holding no certificate are skipped. */
static int load_ca(SSL_CTX *ctx, const struct tunnel_config *tunnel)
{
    int count = 0;
    if (!tunnel->ca_is_directory) {
        if (add_ca_file(ctx, tunnel, tunnel->ca, &count) < 0)
            return -1;
    } else {
        DIR *dir = opendir(tunnel->ca);
        if (dir == NULL) {
            log_error("%s %s: %s", where(tunnel, "ca"), tunnel->ca, strerror(errno));
            return -1;
        }
        struct dirent *entry;
        int failed = 0;
        while (!failed && (entry = readdir(dir)) != NULL) {
            char path[4096];
            struct stat st;
            if (entry->d_name[0] == '.')
                continue;
            snprintf(path, sizeof(path), "%s/%s", tunnel->ca, entry->d_name);
            if (stat(path, &st) < 0 || !S_ISREG(st.st_mode))
                continue;
            failed = add_ca_file(ctx, tunnel, path, &count) < 0;
        }
        closedir(dir);
        if (failed)
            return -1;
    }
    if (count == 0) {
        log_error("%s %s: no certificate found", where(tunnel, "ca"), tunnel->ca);
        return -1;
    }
    return 0;
}

/* TLS 1.2 where `ciphers` is unset: ECDHE with an AEAD, in the order OpenSSL's default
 * ranks them. That default also has CBC suites (MAC-then-encrypt, the padding oracles
 * of Lucky 13 and its kin) and finite-field DHE; an operator who needs one lists it. */
#define DEFAULT_TLS12_CIPHERS                                                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                                \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"

static int apply_policy(SSL_CTX *ctx, const struct tunnel_config *tunnel)
{
    /* Level 2: RSA/DH keys of 2048 bits or more, no SHA-1 signatures, on both our own
     * chain and the peer's; the verify step reports the weak part by name. */
    SSL_CTX_set_security_level(ctx, 2);
    if (!SSL_CTX_set_min_proto_version(ctx, tunnel->tls_min_version)) {
        log_openssl(LOG_LEVEL_ERROR, "%s", where(tunnel, "tls_min_version"));
        return -1;
    }
    if (tunnel->ciphersuites != NULL && !SSL_CTX_set_ciphersuites(ctx, tunnel->ciphersuites)) {
        log_openssl(LOG_LEVEL_ERROR, "%s %s", where(tunnel, "ciphersuites"), tunnel->ciphersuites);
        return -1;
    }
    const char *ciphers = tunnel->ciphers != NULL ? tunnel->ciphers : DEFAULT_TLS12_CIPHERS;
    if (!SSL_CTX_set_cipher_list(ctx, ciphers)) {
        log_openssl(LOG_LEVEL_ERROR, "%s %s", where(tunnel, "ciphers"), ciphers);
        return -1;
    }
    if (tunnel->groups != NULL && !SSL_CTX_set1_groups_list(ctx, tunnel->groups)) {
        log_openssl(LOG_LEVEL_ERROR, "%s %s", where(tunnel, "groups"), tunnel->groups);
        return -1;
    }
    /* No tickets, no session cache: every connection is a full handshake whose record
     * sequence numbers start where the kTLS handoff expects them. */
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_NO_TICKET | SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_num_tickets(ctx, 0);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"ktlstun", 7);
    /* Partial writes let the relay keep one buffer per direction; released buffers
     * keep idle tunnels small. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    return 0;
}

SSL_CTX *tls_context_create(const struct tunnel_config *tunnel)
{
    int server = tunnel->mode == TUNNEL_MODE_SERVER;
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (ctx == NULL) {
        log_openssl(LOG_LEVEL_ERROR, "[%s] cannot create a TLS context", tunnel->name);
        goto fail;
    }
    if (apply_policy(ctx, tunnel) < 0)
        goto fail_ctx;
    SSL_CTX_set_default_passwd_cb(ctx, refuse_passphrase);
    if (use_key_material(ctx, tunnel) < 0)
        goto fail_ctx;
    if (load_ca(ctx, tunnel) < 0)
        goto fail_ctx;
    if (tunnel->crl != NULL && load_crls(ctx, tunnel) < 0)
        goto fail_ctx;
    /* The chain we send is the same for every handshake: build it once, here. Left
     * to itself OpenSSL rebuilds it on every handshake (verifying our own certificate
     * again: 13% of a handshake's instructions, measured). Where it cannot be built
     * from `ca`, OpenSSL keeps doing what it did. */
    if (SSL_CTX_build_cert_chain(ctx, SSL_BUILD_CHAIN_FLAG_NO_ROOT) == 1)
        SSL_CTX_set_mode(ctx, SSL_MODE_NO_AUTO_CHAIN);
    ERR_clear_error();
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | (server ? SSL_VERIFY_FAIL_IF_NO_PEER_CERT : 0), NULL);
    SSL_CTX_set_cert_verify_callback(ctx, verify_peer, (void *)tunnel);
    if (tunnel->verify_cache > 0) {
        struct verified_chains *chains =
            verified_chains_create(VERIFIED_CHAINS_SLOTS, (time_t)tunnel->verify_cache);
        if (chains == NULL || verified_chains_index() < 0 ||
            !SSL_CTX_set_ex_data(ctx, verified_chains_index(), chains)) {
            verified_chains_free(chains);
            log_openssl(LOG_LEVEL_ERROR, "[%s] cannot create a TLS context", tunnel->name);
            goto fail_ctx;
        }
    }
    /* The keylog formats every secret as hex (2.7% of a handshake's instructions,
     * measured): only worth it where the kernel can take the keys. */
    char why_not[200];
    if (tunnel->ktls != KTLS_POLICY_OFF && ktls_offload_kernel_ready(why_not, sizeof(why_not)))
        ktls_offload_prepare_context(ctx);
    else
        /* No handoff will need the socket left at a record boundary: one read per
         * flight instead of two per record (8 fewer reads per server handshake). */
        SSL_CTX_set_read_ahead(ctx, 1);
    /* Last: its keylog hook wraps the one kTLS installed. A server refuses with alerts
     * of its own (tls_alert), so that a refused client learns why on its own machine:
     * under TLS 1.3 they need the traffic secret the keylog gives, worth its cost
     * where allow rules or pins may refuse (the gate prepares its own). */
    if (server && has_access_rules(tunnel) && tls_alert_prepare_ctx(ctx) < 0)
        goto fail_ctx;
    if (is_gated(tunnel) && registered_gate != NULL && registered_gate->prepare_ctx(ctx, tunnel) < 0)
        goto fail_ctx;
    return ctx;

fail_ctx:
    SSL_CTX_free(ctx);
fail:
    return NULL;
}

static int is_ip_literal(const char *name)
{
    unsigned char ip[16];
    return inet_pton(AF_INET, name, ip) == 1 || inet_pton(AF_INET6, name, ip) == 1;
}

static int set_expected_name(X509_VERIFY_PARAM *param, const char *name)
{
    if (is_ip_literal(name))
        return X509_VERIFY_PARAM_set1_ip_asc(param, name);
    return X509_VERIFY_PARAM_set1_host(param, name, 0);
}

static int set_expected_server_name(SSL *ssl, const char *name)
{
    if (is_ip_literal(name))
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name);
    /* SNI is for names only (RFC 6066 forbids IP literals). */
    return SSL_set_tlsext_host_name(ssl, name) && SSL_set1_host(ssl, name);
}

SSL *tls_context_new_ssl(SSL_CTX *ctx, const struct tunnel_config *tunnel, int fd,
                         struct tls_peer *peer)
{
    SSL *ssl = SSL_new(ctx);
    if (ssl == NULL) {
        log_openssl(LOG_LEVEL_ERROR, "[%s] cannot create a TLS session", tunnel->name);
        goto fail;
    }
    if (!SSL_set_fd(ssl, fd)) {
        log_openssl(LOG_LEVEL_ERROR, "[%s] cannot attach the TLS session", tunnel->name);
        goto fail_ssl;
    }
    SSL_set_app_data(ssl, peer);
    if (tunnel->mode == TUNNEL_MODE_CLIENT) {
        const char *name = expected_server_name(tunnel);
        if (name == NULL || !set_expected_server_name(ssl, name)) {
            log_openssl(LOG_LEVEL_ERROR, "[%s] cannot set server_name", tunnel->name);
            goto fail_ssl;
        }
        /* Out of memory here costs only the words for a server that is no TLS server. */
        (void)first_record_watch(ssl);
        SSL_set_connect_state(ssl);
    } else {
        SSL_set_accept_state(ssl);
    }
    return ssl;

fail_ssl:
    SSL_free(ssl);
fail:
    return NULL;
}

void tls_context_forget_peer(struct tls_peer *peer)
{
    identity_free(peer->identity);
    X509_free(peer->leaf);
    sk_X509_pop_free(peer->sent, X509_free);
    peer->identity = NULL;
    peer->leaf = NULL;
    peer->sent = NULL;
}

int tls_context_recheck_peer(X509_STORE *store, const struct tunnel_config *tunnel,
                             const struct tls_peer *peer, int *verify_error, char *reason,
                             size_t len)
{
    int passed = 0;
    const char *server_name = expected_server_name(tunnel);
    *verify_error = X509_V_OK;
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    /* Fail closed: what cannot be checked does not stay. */
    snprintf(reason, len, "the certificate could not be checked again (out of memory)");
    if (ctx == NULL || peer->leaf == NULL || peer->identity == NULL ||
        !X509_STORE_CTX_init(ctx, store, peer->leaf, peer->sent))
        goto out;
    /* What libssl sets before it verifies a peer's chain, at the tunnel's security
     * level (apply_policy). */
    X509_STORE_CTX_set_default(ctx, tunnel->mode == TUNNEL_MODE_SERVER ? "ssl_client" : "ssl_server");
    X509_VERIFY_PARAM *param = X509_STORE_CTX_get0_param(ctx);
    X509_VERIFY_PARAM_set_auth_level(param, 2);
    if (tunnel->mode == TUNNEL_MODE_CLIENT && (server_name == NULL || !set_expected_name(param, server_name)))
        goto out;
    if (X509_verify_cert(ctx) <= 0 || !leaf_is_end_entity(ctx)) {
        *verify_error = X509_STORE_CTX_get_error(ctx);
        verify_reason_format(*verify_error, X509_STORE_CTX_get_current_cert(ctx), tunnel->crl,
                             server_name, reason, len);
        goto out;
    }
    passed = allow_check(tunnel, peer->identity, reason, len);
out:
    X509_STORE_CTX_free(ctx);
    ERR_clear_error();
    return passed;
}

void tls_context_handshake_failure(SSL *ssl, const struct tls_peer *peer, int ssl_error,
                                   char *buf, size_t len)
{
    int saved_errno = errno;
    unsigned long code = ERR_peek_error();
    int reason = ERR_GET_REASON(code);
    if (peer->refusal[0] != '\0') {
        snprintf(buf, len, "%s", peer->refusal);
    } else if (reason == SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE) {
        snprintf(buf, len, "no client certificate");
    } else if (reason >= SSL_AD_REASON_OFFSET && reason < SSL_AD_REASON_OFFSET + 256) {
        snprintf(buf, len, "peer sent alert: %s",
                 SSL_alert_desc_string_long(reason - SSL_AD_REASON_OFFSET));
    } else if (code != 0) {
        const char *text = ERR_reason_error_string(code);
        snprintf(buf, len, "TLS handshake failed: %s", text ? text : "unknown error");
    } else if (ssl_error == SSL_ERROR_SYSCALL && saved_errno != 0) {
        snprintf(buf, len, "TLS handshake failed: %s", strerror(saved_errno));
    } else {
        snprintf(buf, len, "peer closed the connection during the TLS handshake");
    }
    (void)ssl;
    ERR_clear_error();
}

static long long asn1_time_to_epoch(const ASN1_TIME *time)
{
    struct tm tm;
    if (time == NULL || !ASN1_TIME_to_tm(time, &tm))
        return -1;
    return (long long)timegm(&tm);
}

long long tls_context_crl_next_update(SSL_CTX *ctx)
{
    long long earliest = -1;
    X509_STORE *store = SSL_CTX_get_cert_store(ctx);
    if (!X509_STORE_lock(store))
        return -1;
    STACK_OF(X509_OBJECT) *objects = X509_STORE_get0_objects(store);
    for (int i = 0; i < sk_X509_OBJECT_num(objects); i++) {
        X509_CRL *crl = X509_OBJECT_get0_X509_CRL(sk_X509_OBJECT_value(objects, i));
        if (crl == NULL)
            continue;
        long long next = asn1_time_to_epoch(X509_CRL_get0_nextUpdate(crl));
        if (next >= 0 && (earliest < 0 || next < earliest))
            earliest = next;
    }
    X509_STORE_unlock(store);
    return earliest;
}

long long tls_context_cert_not_after(SSL_CTX *ctx)
{
    X509 *cert = SSL_CTX_get0_certificate(ctx);
    struct tm tm;
    if (cert == NULL || !ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm))
        return -1;
    return (long long)timegm(&tm);
}
