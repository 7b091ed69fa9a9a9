#include "tls/verified_chains.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/evp.h>

/* How many neighbouring slots a digest may live in: enough that collisions of the
 * index rarely evict, few enough that a miss is cheap. */
#define PROBE_SLOTS 8

struct entry {
    unsigned char digest[VERIFIED_CHAINS_DIGEST_LEN];
    time_t until;    /* 0: empty */
};

struct verified_chains {
    EVP_MD *sha256;    /* fetched once: an implicit fetch per handshake costs more than the hash */
    EVP_MD_CTX *hashing;
    time_t ttl_seconds;
    size_t mask;
    struct entry entries[];
};

struct verified_chains *verified_chains_create(size_t slots, time_t ttl_seconds)
{
    size_t size = PROBE_SLOTS;
    while (size < slots)
        size *= 2;
    struct verified_chains *table = calloc(1, sizeof(*table) + size * sizeof(struct entry));
    if (table == NULL)
        goto fail;
    table->mask = size - 1;
    table->ttl_seconds = ttl_seconds;
    table->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
    table->hashing = EVP_MD_CTX_new();
    if (table->sha256 == NULL || table->hashing == NULL)
        goto fail_table;
    return table;

fail_table:
    verified_chains_free(table);
fail:
    return NULL;
}

void verified_chains_free(struct verified_chains *table)
{
    if (table == NULL)
        return;
    EVP_MD_CTX_free(table->hashing);
    EVP_MD_free(table->sha256);
    free(table);
}

static int hash_certificate(EVP_MD_CTX *hashing, X509 *cert)
{
    unsigned char *der = NULL;
    int len = i2d_X509(cert, &der);
    int ok = len > 0 && EVP_DigestUpdate(hashing, der, (size_t)len);
    OPENSSL_free(der);
    return ok;
}

int verified_chains_digest(struct verified_chains *table, X509 *leaf, STACK_OF(X509) *sent,
                           unsigned char digest[VERIFIED_CHAINS_DIGEST_LEN])
{
    unsigned int len = 0;
    /* DER is self-delimiting, so the concatenation names one sequence of certificates. */
    if (!EVP_DigestInit_ex2(table->hashing, table->sha256, NULL) ||
        !hash_certificate(table->hashing, leaf))
        return -1;
    for (int i = 0; i < sk_X509_num(sent); i++)
        if (!hash_certificate(table->hashing, sk_X509_value(sent, i)))
            return -1;
    if (!EVP_DigestFinal_ex(table->hashing, digest, &len) || len != VERIFIED_CHAINS_DIGEST_LEN)
        return -1;
    return 0;
}

/* The digest is SHA-256 output: any of its bytes index uniformly. */
static size_t home_slot(const struct verified_chains *table,
                        const unsigned char digest[VERIFIED_CHAINS_DIGEST_LEN])
{
    uint32_t index;
    memcpy(&index, digest, sizeof(index));
    return index & table->mask;
}

int verified_chains_contains(const struct verified_chains *table,
                             const unsigned char digest[VERIFIED_CHAINS_DIGEST_LEN], time_t now)
{
    size_t home = home_slot(table, digest);
    for (size_t i = 0; i < PROBE_SLOTS; i++) {
        const struct entry *e = &table->entries[(home + i) & table->mask];
        if (e->until > now && memcmp(e->digest, digest, VERIFIED_CHAINS_DIGEST_LEN) == 0)
            return 1;
    }
    return 0;
}

void verified_chains_remember(struct verified_chains *table,
                              const unsigned char digest[VERIFIED_CHAINS_DIGEST_LEN], time_t now,
                              time_t until)
{
    if (until > now + table->ttl_seconds)
        until = now + table->ttl_seconds;
    if (until <= now)
        return;
    size_t home = home_slot(table, digest);
    struct entry *victim = NULL;
    for (size_t i = 0; i < PROBE_SLOTS; i++) {
        struct entry *e = &table->entries[(home + i) & table->mask];
        if (memcmp(e->digest, digest, VERIFIED_CHAINS_DIGEST_LEN) == 0 || e->until <= now) {
            victim = e;
            break;
        }
        if (victim == NULL || e->until < victim->until)
            victim = e;
    }
    memcpy(victim->digest, digest, VERIFIED_CHAINS_DIGEST_LEN);
    victim->until = until;
}

time_t verified_chains_chain_end(STACK_OF(X509) *chain, time_t now)
{
    time_t end = 0;
    for (int i = 0; i < sk_X509_num(chain); i++) {
        struct tm tm;
        if (!ASN1_TIME_to_tm(X509_get0_notAfter(sk_X509_value(chain, i)), &tm))
            return now;
        time_t not_after = timegm(&tm);
        if (end == 0 || not_after < end)
            end = not_after;
    }
    return end != 0 ? end : now;
}
