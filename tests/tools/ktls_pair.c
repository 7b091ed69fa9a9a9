/* ktls_pair — prove that this kernel's TLS TX path carries a real TLS 1.3 session.
 *
 * A client and a server thread complete a TLS 1.3 handshake over 127.0.0.1 with
 * OpenSSL's own kTLS offload (SSL_OP_ENABLE_KTLS, TX only in OpenSSL 3.0). Both sides
 * then send a pattern through the kernel's encryption and read the peer's through
 * OpenSSL's userspace decryption, so a kernel that encrypted wrongly fails the read.
 * It fails unless both sockets report kTLS send, the data round-trips intact, and
 * /proc/net/tls_stat counted the two software TX sessions.
 *
 *   ktls_pair [CIPHERSUITE [BYTES]]    default TLS_AES_128_GCM_SHA256 65536
 *
 * Prints one summary line; exit status 0 on success, 1 on any failure (reason on stderr). */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define SERVER_NAME "ktls-pair.test"

struct peer {
    SSL_CTX *ctx;
    int fd;
    size_t bytes;
    const char *role;
    bool ktls_send;
    bool ok;
};

static void fail_openssl(const char *role, const char *what)
{
    fprintf(stderr, "ktls_pair: %s: %s failed:", role, what);
    unsigned long err;
    while ((err = ERR_get_error()) != 0) {
        char text[256];
        ERR_error_string_n(err, text, sizeof(text));
        fprintf(stderr, " %s", text);
    }
    fprintf(stderr, "\n");
}

/* Reads a counter from /proc/net/tls_stat; -1 when the file or the line is missing. */
static long tls_stat(const char *name)
{
    char line[256];
    long value = -1;
    FILE *file = fopen("/proc/net/tls_stat", "r");

    if (file == NULL)
        return -1;
    while (fgets(line, sizeof(line), file) != NULL) {
        char key[64];
        long number;
        if (sscanf(line, "%63s %ld", key, &number) == 2 && strcmp(key, name) == 0) {
            value = number;
            break;
        }
    }
    fclose(file);
    return value;
}

static unsigned char pattern_byte(const char *role, size_t i)
{
    return (unsigned char)(i * 31 + (unsigned char)role[0]);
}

static bool send_pattern(SSL *ssl, const char *role, unsigned char *buf, size_t bytes)
{
    size_t written;

    for (size_t i = 0; i < bytes; i++)
        buf[i] = pattern_byte(role, i);
    if (SSL_write_ex(ssl, buf, bytes, &written) != 1 || written != bytes) {
        fail_openssl(role, "SSL_write (through kTLS)");
        return false;
    }
    return true;
}

/* Sends BYTES of ROLE's pattern and reads and checks BYTES of PEER_ROLE's; READ_FIRST
 * on one side only, so the two writes never wait on each other's full buffers. */
static bool exchange(SSL *ssl, const char *role, const char *peer_role, size_t bytes,
                     bool read_first)
{
    bool ok = false;
    unsigned char *buf = malloc(bytes);

    if (buf == NULL)
        goto out;
    if (!read_first && !send_pattern(ssl, role, buf, bytes))
        goto out;
    size_t got = 0;
    while (got < bytes) {
        size_t n;
        if (SSL_read_ex(ssl, buf + got, bytes - got, &n) != 1) {
            fail_openssl(role, "SSL_read (peer's kernel-encrypted records)");
            goto out;
        }
        got += n;
    }
    for (size_t i = 0; i < bytes; i++) {
        if (buf[i] != pattern_byte(peer_role, i)) {
            fprintf(stderr, "ktls_pair: %s: byte %zu from the %s differs\n", role, i, peer_role);
            goto out;
        }
    }
    if (read_first && !send_pattern(ssl, role, buf, bytes))
        goto out;
    ok = true;
out:
    free(buf);
    return ok;
}

static void run_peer(struct peer *peer, bool server)
{
    SSL *ssl = SSL_new(peer->ctx);
    const char *other = server ? "client" : "server";

    if (ssl == NULL || SSL_set_fd(ssl, peer->fd) != 1) {
        fail_openssl(peer->role, "SSL_new");
        goto out;
    }
    if (!server && (SSL_set_tlsext_host_name(ssl, SERVER_NAME) != 1 ||
                    SSL_set1_host(ssl, SERVER_NAME) != 1)) {
        fail_openssl(peer->role, "setting the server name");
        goto out;
    }
    if ((server ? SSL_accept(ssl) : SSL_connect(ssl)) != 1) {
        fail_openssl(peer->role, "handshake");
        goto out;
    }
    peer->ktls_send = BIO_ctrl(SSL_get_wbio(ssl), BIO_CTRL_GET_KTLS_SEND, 0, NULL) > 0;
    if (!peer->ktls_send) {
        fprintf(stderr, "ktls_pair: %s: OpenSSL did not enable kTLS send (%s)\n", peer->role,
                SSL_get_cipher_name(ssl));
        goto out;
    }
    if (!exchange(ssl, peer->role, other, peer->bytes, server))
        goto out;
    peer->ok = true;
out:
    if (ssl != NULL) {
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
}

static void *server_thread(void *arg)
{
    run_peer(arg, true);
    return NULL;
}

static int make_identity(EVP_PKEY **key, X509 **cert)
{
    *key = EVP_EC_gen("P-256");
    *cert = X509_new();
    X509_NAME *name = X509_NAME_new();
    int ok = *key != NULL && *cert != NULL && name != NULL &&
             X509_set_version(*cert, X509_VERSION_3) == 1 &&
             ASN1_INTEGER_set(X509_get_serialNumber(*cert), 1) == 1 &&
             X509_gmtime_adj(X509_getm_notBefore(*cert), -60) != NULL &&
             X509_gmtime_adj(X509_getm_notAfter(*cert), 3600) != NULL &&
             X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                        (const unsigned char *)SERVER_NAME, -1, -1, 0) == 1 &&
             X509_set_subject_name(*cert, name) == 1 && X509_set_issuer_name(*cert, name) == 1 &&
             X509_set_pubkey(*cert, *key) == 1 && X509_sign(*cert, *key, EVP_sha256()) > 0;
    X509_NAME_free(name);
    return ok ? 0 : -1;
}

static SSL_CTX *make_ctx(bool server, const char *suite, EVP_PKEY *key, X509 *cert)
{
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_options(ctx, SSL_OP_ENABLE_KTLS);
    SSL_CTX_set_num_tickets(ctx, 0);
    bool ok = SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) == 1 &&
              SSL_CTX_set_ciphersuites(ctx, suite) == 1;
    if (server)
        ok = ok && SSL_CTX_use_certificate(ctx, cert) == 1 &&
             SSL_CTX_use_PrivateKey(ctx, key) == 1;
    else
        ok = ok && X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), cert) == 1;
    SSL_CTX_set_verify(ctx, server ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
    if (!ok) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

static int connected_pair(int *client, int *server)
{
    struct sockaddr_in addr = { .sin_family = AF_INET };
    socklen_t len = sizeof(addr);
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int rc = -1;

    *client = *server = -1;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (listener < 0 || bind(listener, (struct sockaddr *)&addr, len) != 0 ||
        listen(listener, 1) != 0 || getsockname(listener, (struct sockaddr *)&addr, &len) != 0)
        goto out;
    *client = socket(AF_INET, SOCK_STREAM, 0);
    if (*client < 0 || connect(*client, (struct sockaddr *)&addr, len) != 0)
        goto out;
    *server = accept(listener, NULL, NULL);
    rc = *server < 0 ? -1 : 0;
out:
    if (rc != 0)
        fprintf(stderr, "ktls_pair: loopback TCP pair: %s\n", strerror(errno));
    if (listener >= 0)
        close(listener);
    return rc;
}

int main(int argc, char **argv)
{
    int status = 1;
    const char *suite = argc > 1 ? argv[1] : "TLS_AES_128_GCM_SHA256";
    size_t bytes = argc > 2 ? strtoul(argv[2], NULL, 10) : 65536;
    EVP_PKEY *key = NULL;
    X509 *cert = NULL;
    struct peer server = { .role = "server", .fd = -1 };
    struct peer client = { .role = "client", .fd = -1 };
    pthread_t thread;
    bool thread_started = false;

    if (argc > 3 || bytes == 0) {
        fprintf(stderr, "usage: ktls_pair [CIPHERSUITE [BYTES]]\n");
        return 2;
    }
    /* /proc/net/tls_stat appears when the tls module loads, with counters at zero; the
     * handshake below may be what loads it. */
    long tx_before = tls_stat("TlsTxSw");
    if (tx_before < 0)
        tx_before = 0;
    if (make_identity(&key, &cert) != 0) {
        fail_openssl("setup", "making a test certificate");
        goto out;
    }
    server.ctx = make_ctx(true, suite, key, cert);
    client.ctx = make_ctx(false, suite, key, cert);
    if (server.ctx == NULL || client.ctx == NULL) {
        fail_openssl("setup", "SSL_CTX for ciphersuite");
        goto out;
    }
    if (connected_pair(&client.fd, &server.fd) != 0)
        goto out;
    server.bytes = client.bytes = bytes;
    if (pthread_create(&thread, NULL, server_thread, &server) != 0) {
        fprintf(stderr, "ktls_pair: pthread_create failed\n");
        goto out;
    }
    thread_started = true;
    run_peer(&client, false);
    pthread_join(thread, NULL);
    thread_started = false;

    long tx_after = tls_stat("TlsTxSw");
    printf("ktls_pair: %s: client ktls_send=%d server ktls_send=%d, %zu bytes each way "
           "%s, TlsTxSw %ld -> %ld\n", suite, client.ktls_send, server.ktls_send, bytes,
           client.ok && server.ok ? "verified" : "NOT verified", tx_before, tx_after);
    if (!client.ok || !server.ok)
        goto out;
    if (tx_after < 0) {
        fprintf(stderr, "ktls_pair: /proc/net/tls_stat has no TlsTxSw: no kernel TLS here\n");
        goto out;
    }
    if (tx_after < tx_before + 2) {
        fprintf(stderr, "ktls_pair: the kernel counted %ld new TLS TX sessions, expected 2\n",
                tx_after - tx_before);
        goto out;
    }
    status = 0;
out:
    if (thread_started)
        pthread_join(thread, NULL);
    if (client.fd >= 0)
        close(client.fd);
    if (server.fd >= 0)
        close(server.fd);
    SSL_CTX_free(client.ctx);
    SSL_CTX_free(server.ctx);
    X509_free(cert);
    EVP_PKEY_free(key);
    return status;
}
