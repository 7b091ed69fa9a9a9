#!/bin/sh
# A real TLS 1.3 session over loopback whose TX runs through the kernel (OpenSSL's
# SSL_OP_ENABLE_KTLS): ktls_pair fails unless kTLS engaged on both ends, the data came
# through intact, and /proc/net/tls_stat counted the sessions.

if ! command -v ktls_pair >/dev/null; then
    echo "FAIL ktls-pair: /build/tools/ktls_pair missing (tests/tools/ktls_pair.c not built?)"
    exit 1
fi
# Load tls first, as ktlstund does at start. Left to the kernel's autoload, the two
# ends race: the second setsockopt(TCP_ULP) can run while the module is still
# initialising, get ENOENT, and OpenSSL then quietly stays in userspace (seen here).
if ! modprobe tls; then
    echo "FAIL ktls-pair: modprobe tls failed"
    exit 1
fi
for suite in TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384; do
    out=$(ktls_pair "$suite" 262144 2>&1)
    rc=$?
    echo "$out"
    if [ "$rc" -eq 0 ]; then
        echo "PASS ktls-pair/$suite"
    else
        echo "FAIL ktls-pair/$suite: $(echo "$out" | head -n 1)"
    fi
done
cat /proc/net/tls_stat
