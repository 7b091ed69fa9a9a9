/* ktls_rekey — when an offloaded TLS 1.3 connection changes its keys (KeyUpdate,
 * RFC 8446 section 4.6.3) and whether this kernel lets it.
 *
 * Linux takes a new key on a kTLS socket from 6.14 on: TLS_RX set again after the
 * peer's KeyUpdate (the kernel pauses decryption with EKEYEXPIRED until then), TLS_TX
 * set again right after our own KeyUpdate record. Older kernels refuse (EBUSY), and a
 * connection there closes cleanly instead. The decisions here are pure; the keys are
 * installed by ktls_offload. */
#ifndef KTLSTUN_KTLS_REKEY_H
#define KTLSTUN_KTLS_REKEY_H

#include <stddef.h>
#include <stdint.h>

#include "ktls/ktls_keys.h"

/* A KeyUpdate message: HandshakeType, 3-byte length 1, request_update. */
#define KTLS_REKEY_MESSAGE_LEN 5

/* When we change our own sending key, beyond what the cipher requires. */
struct ktls_rekey_policy {
    uint64_t interval_ms;   /* rekey_interval: after this long under one key; 0 = off */
    uint64_t bytes;         /* rekey_bytes: after this much payload under one key; 0 = off */
};

/* How far our current sending key has gone. */
struct ktls_rekey_usage {
    uint64_t records;       /* upper bound of records sent under the key */
    uint64_t bytes;         /* payload sent under the key */
    uint64_t since_ms;      /* event_loop_now_ms() when the key was installed */
};

enum ktls_rekey_reason {
    KTLS_REKEY_NOT_DUE,
    KTLS_REKEY_RECORD_LIMIT,  /* the cipher's safe record count is used up */
    KTLS_REKEY_BYTES,         /* rekey_bytes reached */
    KTLS_REKEY_INTERVAL,      /* rekey_interval elapsed */
};

/* Records AES-GCM and AES-CCM may safely protect under one key (RFC 8446 section 5.5
 * allows 2^24.5 full-size records; this keeps a margin), or 0 for ChaCha20-Poly1305,
 * which has no practical limit. The test build (KTLSTUN_TEST_RECORD_LIMIT, see
 * tests/vm/README.md) returns its tiny limit for every cipher instead. */
uint64_t ktls_rekey_record_limit(enum ktls_cipher cipher);

/* Whether our sending key must change before the next data: RECORD_LIMIT (0 = none)
 * first, then POLICY's bytes and interval against USAGE at NOW_MS. Pure. */
enum ktls_rekey_reason ktls_rekey_due(uint64_t record_limit, const struct ktls_rekey_policy *policy,
                                      const struct ktls_rekey_usage *usage, uint64_t now_ms);

/* Writes a KeyUpdate handshake message (request_update = update_requested when
 * REQUESTED, else update_not_requested) into OUT, which holds KTLS_REKEY_MESSAGE_LEN
 * bytes. Returns KTLS_REKEY_MESSAGE_LEN. */
size_t ktls_rekey_message(unsigned char *out, int requested);

/* Whether a kernel RELEASE string (uname -r, e.g. "6.14.2-1-amd64") is at least 6.14,
 * where kTLS takes new keys. Returns 1, or 0 (older or unreadable). Pure. */
int ktls_rekey_release_supports(const char *release);

/* Whether this process may start a KeyUpdate of its own: 1 when the running kernel
 * is 6.14 or newer, or took a new key in this process already; else 0. Sending our
 * KeyUpdate commits us to the new key, so an unknown kernel is never tried. */
int ktls_rekey_kernel_ready(void);

/* Returns 1 when the kernel refused a new key in this process (it cannot rekey), else 0. */
int ktls_rekey_kernel_refused(void);

/* Records what the kernel answered to a new key (ACCEPTED 1 or 0), for
 * ktls_rekey_kernel_ready. */
void ktls_rekey_note_kernel(int accepted);

/* Human words for REASON ("record limit", ...), for logs. */
const char *ktls_rekey_reason_name(enum ktls_rekey_reason reason);

#endif
