#!/bin/sh
# `ktlstun probe` on a real kTLS kernel: it loads the tls and cipher modules itself
# (libkmod), and finds every version x cipher x direction Debian 12's kernel offers.
# Passing this proves the harness boots a kernel with working kTLS.

err=$TMPDIR/probe.err

# Unload tls if an earlier test left it loaded, and stop the kernel from autoloading
# anything: whatever the probe then finds, kmod_load_tls_modules() loaded itself.
preloaded=""
if grep -q '^tls ' /proc/modules && ! rmmod tls 2>"$err"; then
    preloaded="tls was loaded already and rmmod failed: $(cat "$err")"
fi
saved_modprobe=$(cat /proc/sys/kernel/modprobe)
echo /bin/false >/proc/sys/kernel/modprobe
json=$(ktlstun probe --json 2>"$err")
rc=$?
echo "$saved_modprobe" >/proc/sys/kernel/modprobe
cat "$err"
if [ "$rc" -ne 0 ]; then
    echo "FAIL probe/run: ktlstun probe --json exited with $rc: $(cat "$err")"
    exit 1
fi
echo "$json"
ktlstun probe || echo "FAIL probe/table: ktlstun probe exited with $?"

case "$json" in
    *'"tls_ulp":true,'*) echo "PASS probe/tls-ulp" ;;
    *) echo "FAIL probe/tls-ulp: the probe found no tls ULP: $json"; exit 1 ;;
esac
if [ -n "$preloaded" ]; then
    echo "FAIL probe/loads-modules: $preloaded"
elif grep -q '^tls ' /proc/modules; then
    echo "PASS probe/loads-modules"
else
    echo "FAIL probe/loads-modules: tls ULP present but no tls module in /proc/modules"
fi

for version in "TLS 1.2" "TLS 1.3"; do
    refused=""
    for cipher in AES-128-GCM AES-256-GCM AES-128-CCM CHACHA20-POLY1305; do
        for dir in tx rx; do
            case "$json" in
                *"{\"version\":\"$version\",\"cipher\":\"$cipher\","*) ;;
                *) refused="$refused $cipher(no entry)"; continue ;;
            esac
            entry=$(echo "$json" | tr '}' '\n' | grep -F "\"version\":\"$version\",\"cipher\":\"$cipher\",")
            case "$entry" in
                *"\"$dir\":true,\"${dir}_error\":null"*) ;;
                *) refused="$refused $cipher-$dir($(echo "$entry" | sed -n "s/.*\"${dir}_error\":\"\([^\"]*\)\".*/\1/p"))" ;;
            esac
        done
    done
    label=$(echo "$version" | tr -d ' ' | tr 'A-Z' 'a-z')
    if [ -z "$refused" ]; then
        echo "PASS probe/$label-all-ciphers-tx-rx"
    else
        echo "FAIL probe/$label-all-ciphers-tx-rx: refused:$refused"
    fi
done

# Both options arrived in Linux 6.0; Debian 12 runs 6.1.
case "$json" in
    *'"tx_zerocopy_sendfile":true,'*) echo "PASS probe/tx-zerocopy-sendfile" ;;
    *) echo "FAIL probe/tx-zerocopy-sendfile: not accepted: $json" ;;
esac
case "$json" in
    *'"rx_expect_no_pad":true,'*) echo "PASS probe/rx-expect-no-pad" ;;
    *) echo "FAIL probe/rx-expect-no-pad: not accepted: $json" ;;
esac

# A second TLS_TX on one socket (a rekey) is taken from Linux 6.14 on, which also
# added the rekey counters to /proc/net/tls_stat; before that it gets EBUSY.
if grep -q '^TlsRxRekeyOk[[:space:]]' /proc/net/tls_stat; then
    case "$json" in
        *'"rekey":true,"rekey_error":null'*) echo "PASS probe/rekey" ;;
        *) echo "FAIL probe/rekey: a kernel that counts rekeys refused one: $json" ;;
    esac
else
    case "$json" in
        *'"rekey":false,"rekey_error":"EBUSY"'*) echo "PASS probe/rekey" ;;
        *) echo "FAIL probe/rekey: expected EBUSY before Linux 6.14: $json" ;;
    esac
fi
