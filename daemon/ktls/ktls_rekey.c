#include "ktls/ktls_rekey.h"

#include <ctype.h>
#include <stdlib.h>
#include <sys/utsname.h>

#include "ktls/tls_record.h"

/* RFC 8446 section 4.6.3 KeyUpdateRequest */
#define UPDATE_NOT_REQUESTED 0
#define UPDATE_REQUESTED 1

/* The first release whose kTLS takes a second TLS_TX/TLS_RX (tls: implement rekey). */
#define REKEY_MAJOR 6
#define REKEY_MINOR 14

/* -1: not learned yet; 0: refused a new key; 1: took one. */
static int kernel_answer = -1;
static int release_checked;
static int release_ok;

uint64_t ktls_rekey_record_limit(enum ktls_cipher cipher)
{
#ifdef KTLSTUN_TEST_RECORD_LIMIT
    /* Test build only: rekeys many times inside one transfer. */
    (void)cipher;
    return KTLSTUN_TEST_RECORD_LIMIT;
#else
    /* 2^24 of the 2^24.5 RFC 8446 allows: the count is an upper bound, checked before
     * each write of at most a pipe's worth (a handful of records), so it never
     * overshoots. CCM is in the same class as GCM. */
    if (cipher == KTLS_CIPHER_CHACHA20_POLY1305)
        return 0;
    return (uint64_t)1 << 24;
#endif
}

enum ktls_rekey_reason ktls_rekey_due(uint64_t record_limit, const struct ktls_rekey_policy *policy,
                                      const struct ktls_rekey_usage *usage, uint64_t now_ms)
{
    if (record_limit != 0 && usage->records >= record_limit)
        return KTLS_REKEY_RECORD_LIMIT;
    if (policy->bytes != 0 && usage->bytes >= policy->bytes)
        return KTLS_REKEY_BYTES;
    if (policy->interval_ms != 0 && now_ms >= usage->since_ms
        && now_ms - usage->since_ms >= policy->interval_ms)
        return KTLS_REKEY_INTERVAL;
    return KTLS_REKEY_NOT_DUE;
}

size_t ktls_rekey_message(unsigned char *out, int requested)
{
    out[0] = TLS_HANDSHAKE_KEY_UPDATE;
    out[1] = 0;
    out[2] = 0;
    out[3] = 1;
    out[4] = requested ? UPDATE_REQUESTED : UPDATE_NOT_REQUESTED;
    return KTLS_REKEY_MESSAGE_LEN;
}

int ktls_rekey_release_supports(const char *release)
{
    char *end = NULL;
    if (release == NULL || !isdigit((unsigned char)release[0]))
        return 0;
    unsigned long major = strtoul(release, &end, 10);
    if (*end != '.' || !isdigit((unsigned char)end[1]))
        return 0;
    unsigned long minor = strtoul(end + 1, &end, 10);
    return major > REKEY_MAJOR || (major == REKEY_MAJOR && minor >= REKEY_MINOR);
}

int ktls_rekey_kernel_ready(void)
{
    if (kernel_answer >= 0)
        return kernel_answer;
    if (!release_checked) {
        struct utsname uts;
        release_ok = uname(&uts) == 0 && ktls_rekey_release_supports(uts.release);
        release_checked = 1;
    }
    return release_ok;
}

int ktls_rekey_kernel_refused(void)
{
    return kernel_answer == 0;
}

void ktls_rekey_note_kernel(int accepted)
{
    kernel_answer = accepted ? 1 : 0;
}

const char *ktls_rekey_reason_name(enum ktls_rekey_reason reason)
{
    switch (reason) {
    case KTLS_REKEY_RECORD_LIMIT:
        return "record limit of the cipher";
    case KTLS_REKEY_BYTES:
        return "rekey_bytes";
    case KTLS_REKEY_INTERVAL:
        return "rekey_interval";
    case KTLS_REKEY_NOT_DUE:
        break;
    }
    return "not due";
}
