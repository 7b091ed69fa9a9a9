#!/bin/bash
# ktlstun client tunnel <-> ktlstun server tunnel on a kernel with kTLS, ktls = require
# everywhere: every TLS version x cipher the kernel offers, payload integrity both ways,
# half-close, large and tiny transfers, 50 concurrent tunnels, and a held connection
# seen from the kernel's side (tls_stat TlsCurr*, ss's ULP info, ktlstun status).
#
# Each result also demands proof that the kernel did the record work: every audit line
# says ktls=tx+rx and userspace_bytes=0, and /proc/net/tls_stat counted exactly one
# software TX and one RX session per tunnel end per connection.
#
# TLS 1.2 between two ktlstun tunnels: ktlstun has no tls_max_version key, so the
# client-side daemon runs with an OPENSSL_CONF whose system_default section says
# MaxProtocol = TLSv1.2 (OpenSSL applies it to every SSL_CTX); the tunnels' `ciphers`
# then pick the suite. The server side is a stock daemon.
GROUP=ktls-tunnels
PORT_BASE=21000
source "$(dirname "$0")/lib/ktls.sh"
need ktlstund ktlstun load_client echo_server socat sha256sum ss jq curl

MATRIX_BYTES=262144   # per cipher: one 0-byte and one 256 KiB connection, echoed
LARGE_BYTES=8388608
CONCURRENT=50

SUITES13=(TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384 TLS_CHACHA20_POLY1305_SHA256
          TLS_AES_128_CCM_SHA256)
SUITES12=(ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384
          ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-ECDSA-AES128-CCM)
# Tunnels besides the matrix, one pair per check so audit counts stay exact.
PLAIN_PAIRS=(large tiny halfclose many held)

# ---------------------------------------------------------------------------------------
# Shared set-up: one echo backend, a server daemon holding every server tunnel, a client
# daemon for the TLS 1.3 (and plain) pairs and one for the TLS 1.2 pairs.

load_tls
ports 3
ECHO=${PORTS[0]} METRICS_S=${PORTS[1]} METRICS_C=${PORTS[2]}
declare -A S_PORT C_PORT
for id in "${SUITES13[@]}" "${SUITES12[@]}" "${PLAIN_PAIRS[@]}"; do
    ports 2
    S_PORT[$id]=${PORTS[0]}
    C_PORT[$id]=${PORTS[1]}
done
ports 1
HALF_BACKEND=${PORTS[0]}

start_echo "127.0.0.1:$ECHO"
S_CONF=$W/server.ini C13_CONF=$W/client13.ini C12_CONF=$W/client12.ini
S_LOG=$W/server.log C13_LOG=$W/client13.log C12_LOG=$W/client12.log
{
    global_section "metrics_listen = $METRICS_S"
    for id in "${SUITES13[@]}"; do
        server_tunnel "s-$id" "${S_PORT[$id]}" "$ECHO" "tls_min_version = 1.3" "ciphersuites = $id"
    done
    for id in "${SUITES12[@]}"; do
        server_tunnel "s-$id" "${S_PORT[$id]}" "$ECHO" "ciphers = $id"
    done
    for id in "${PLAIN_PAIRS[@]}"; do
        target=$ECHO
        [ "$id" = halfclose ] && target=$HALF_BACKEND
        server_tunnel "s-$id" "${S_PORT[$id]}" "$target"
    done
} >"$S_CONF"
{
    global_section "metrics_listen = $METRICS_C"
    for id in "${SUITES13[@]}"; do
        client_tunnel "c-$id" "${C_PORT[$id]}" "${S_PORT[$id]}" "tls_min_version = 1.3" "ciphersuites = $id"
    done
    for id in "${PLAIN_PAIRS[@]}"; do
        client_tunnel "c-$id" "${C_PORT[$id]}" "${S_PORT[$id]}"
    done
} >"$C13_CONF"
{
    global_section
    for id in "${SUITES12[@]}"; do
        client_tunnel "c-$id" "${C_PORT[$id]}" "${S_PORT[$id]}" "ciphers = $id"
    done
} >"$C12_CONF"
cat >"$W/tls12-only.cnf" <<'EOF'
openssl_conf = ktlstun_test
[ktlstun_test]
ssl_conf = ssl_section
[ssl_section]
system_default = tls12_only
[tls12_only]
MaxProtocol = TLSv1.2
EOF

SHARED_LOGS=("$S_LOG" "$C13_LOG" "$C12_LOG")
start_daemon "$S_CONF" "$S_LOG"
S_PID=$DAEMON_PID
start_daemon "$C13_CONF" "$C13_LOG"
C13_PID=$DAEMON_PID
start_daemon "$C12_CONF" "$C12_LOG" "OPENSSL_CONF=$W/tls12-only.cnf"
C12_PID=$DAEMON_PID

# expect_pair ID COUNT [VERSION CIPHER]: both tunnels of pair ID logged exactly COUNT
# offloaded connections; AUDIT ends up holding the server tunnel's lines.
expect_pair() {
    local id=$1 count=$2 version=${3:-} cipher=${4:-} client_log=$C13_LOG
    [[ " ${SUITES12[*]} " == *" $id "* ]] && client_log=$C12_LOG
    expect_offloaded "$client_log" "c-$id" "$count" "$version" "$cipher"
    expect_offloaded "$S_LOG" "s-$id" "$count" "$version" "$cipher"
}

# expect_bytes IN OUT: the server tunnel's audit lines (AUDIT) sum to IN and OUT bytes.
expect_bytes() {
    local in out
    in=$(audit_sum bytes_in)
    out=$(audit_sum bytes_out)
    [ "$in" = "$1" ] && [ "$out" = "$2" ] ||
        die "server tunnel audit counted bytes_in=$in bytes_out=$out, expected $1 and $2"
}

# ---------------------------------------------------------------------------------------

# Every version x cipher: a 0-byte and a 256 KiB connection, echoed back and compared by
# SHA-256 (load_client); each ends only because EOF crossed both tunnels both ways.
cipher_case() {
    local id=$1 version=$2
    stat_snapshot
    must load_client "127.0.0.1:${C_PORT[$id]}" --connections 2 --min-bytes 0 \
        --max-bytes "$MATRIX_BYTES" --seed "$RANDOM" --timeout 120
    expect_pair "$id" 2 "$version" "$id"
    expect_bytes "$MATRIX_BYTES" "$MATRIX_BYTES"
    expect_sw_sessions 4
}

# 8 MiB through one connection, both ways.
large() {
    stat_snapshot
    must load_client "127.0.0.1:${C_PORT[large]}" --connections 1 --min-bytes "$LARGE_BYTES" \
        --max-bytes "$LARGE_BYTES" --seed "$RANDOM" --timeout 180
    expect_pair large 1 TLSv1.3
    expect_bytes "$LARGE_BYTES" "$LARGE_BYTES"
    expect_sw_sessions 2
}

# One byte, then nothing at all: the relay must still carry EOF both ways.
tiny() {
    stat_snapshot
    must load_client "127.0.0.1:${C_PORT[tiny]}" --connections 1 --min-bytes 1 --max-bytes 1 \
        --seed "$RANDOM" --timeout 60
    must load_client "127.0.0.1:${C_PORT[tiny]}" --connections 1 --min-bytes 0 --max-bytes 0 \
        --seed "$RANDOM" --timeout 60
    expect_pair tiny 2 TLSv1.3
    expect_bytes 1 1
    expect_sw_sessions 4
}

# Different data each way, in order: the backend reads the upload to EOF (which only
# the client's half-close, carried as close_notify across both tunnels, can give it),
# then answers with another file and closes.
halfclose() {
    payload "$W/up.bin" 2000000
    payload "$W/down.bin" 3000000
    rm -f "$W/up.sha"
    spawn "$W/half-backend.log" socat -T 120 "TCP-LISTEN:$HALF_BACKEND,bind=127.0.0.1,reuseaddr" \
        SYSTEM:"sha256sum >$W/up.sha.tmp && mv $W/up.sha.tmp $W/up.sha && cat $W/down.bin"
    LOGS+=("$W/half-backend.log")
    local i
    for ((i = 0; i < 100; i++)); do
        [ -n "$(ss -Hltn "sport = :$HALF_BACKEND")" ] && break
        sleep 0.1
    done
    stat_snapshot
    timeout 180 socat -t 120 -T 120 - "TCP:127.0.0.1:${C_PORT[halfclose]}" <"$W/up.bin" >"$W/got.bin" ||
        die "socat through the tunnel pair exited $?"
    [ -f "$W/up.sha" ] || die "the backend never saw EOF on the upload (half-close did not cross the tunnels)"
    [ "$(cut -d' ' -f1 "$W/up.sha")" = "$(sha "$W/up.bin")" ] || die "the backend got a corrupted upload"
    [ "$(sha "$W/got.bin")" = "$(sha "$W/down.bin")" ] ||
        die "the download differs: got $(wc -c <"$W/got.bin") bytes, expected 3000000"
    expect_pair halfclose 1 TLSv1.3
    expect_bytes 2000000 3000000
    expect_sw_sessions 2
}

# 50 tunnels at once, each a full round trip of a different size.
many() {
    stat_snapshot
    must load_client "127.0.0.1:${C_PORT[many]}" --connections "$CONCURRENT" --min-bytes 1 \
        --max-bytes 131072 --seed "$RANDOM" --timeout 180
    expect_pair many "$CONCURRENT" TLSv1.3
    expect_sw_sessions $((2 * CONCURRENT))
    local metrics_s metrics_c
    metrics_s=$(fetch_metrics "$METRICS_S")
    metrics_c=$(fetch_metrics "$METRICS_C")
    [ "$(metric "$metrics_s" 'ktlstun_relayed_connections_total{tunnel="s-many",path="ktls"}')" = "$CONCURRENT" ] &&
        [ "$(metric "$metrics_c" 'ktlstun_relayed_connections_total{tunnel="c-many",path="ktls"}')" = "$CONCURRENT" ] ||
        die "metrics do not count $CONCURRENT kTLS relays: $(printf '%s\n%s\n' "$metrics_s" "$metrics_c" | grep -- '-many",path=' | tr '\n' ' ')"
    [ "$(metric "$metrics_s" 'ktlstun_relayed_connections_total{tunnel="s-many",path="userspace"}')" = 0 ] &&
        [ "$(metric "$metrics_c" 'ktlstun_relayed_connections_total{tunnel="c-many",path="userspace"}')" = 0 ] ||
        die "metrics count userspace relays on ktls = require tunnels"
}

# hold_connection: opens one connection through the held pair and echoes a line; the
# connection stays open until release_connection.
hold_connection() {
    local fifo=$W/held.$RANDOM
    mkfifo "$fifo"
    spawn "$fifo.out" bash -c "exec socat -t 60 - TCP:127.0.0.1:${C_PORT[held]} <'$fifo'"
    exec {HELD_FD}>"$fifo"
    printf 'held-line\n' >&"$HELD_FD"
    wait_for "$fifo.out" '^held-line$' || die "no echo through the held connection"
}
release_connection() {
    exec {HELD_FD}>&-
}

# One connection held open: the kernel holds two live software TX and RX contexts
# (TlsCurrTxSw/TlsCurrRxSw) and `ktlstun status` says kTLS TX and RX on both tunnels;
# the contexts go when the connection ends.
held() {
    local curr_tx curr_rx json i
    curr_tx=$(tls_stat TlsCurrTxSw)
    curr_rx=$(tls_stat TlsCurrRxSw)
    hold_connection
    [ $(($(tls_stat TlsCurrTxSw) - curr_tx)) = 2 ] && [ $(($(tls_stat TlsCurrRxSw) - curr_rx)) = 2 ] ||
        die "with one connection open, TlsCurrTxSw/TlsCurrRxSw went from $curr_tx/$curr_rx to $(tls_stat TlsCurrTxSw)/$(tls_stat TlsCurrRxSw), expected +2 each"
    for conf in "$S_CONF:s-held" "$C13_CONF:c-held"; do
        json=$(ktlstun status --json -c "${conf%%:*}") || die "ktlstun status --json -c ${conf%%:*} failed: $json"
        [ "$(printf '%s' "$json" | jq -c "[.connections[] | select(.tunnel == \"${conf##*:}\") | [.ktls_tx, .ktls_rx, .cipher]]")" = \
            '[[true,true,"TLS_AES_256_GCM_SHA384"]]' ] ||
            die "ktlstun status does not show ${conf##*:} offloaded: $json"
    done
    release_connection
    expect_pair held 1 TLSv1.3 TLS_AES_256_GCM_SHA384
    for ((i = 0; i < 100; i++)); do
        [ "$(tls_stat TlsCurrTxSw)" = "$curr_tx" ] && [ "$(tls_stat TlsCurrRxSw)" = "$curr_rx" ] && return 0
        sleep 0.1
    done
    die "after the connection closed, TlsCurrTxSw/TlsCurrRxSw stayed at $(tls_stat TlsCurrTxSw)/$(tls_stat TlsCurrRxSw) (expected $curr_tx/$curr_rx)"
}

# The same seen through sock_diag (INET_DIAG_ULP_INFO), as an operator would look: ss
# shows the tls ULP with the negotiated cipher and software TX and RX on exactly the two
# tunnel sockets of the held connection.
held_ss() {
    local sockets ulp
    modprobe tcp_diag 2>/dev/null
    grep -q '^tcp_diag ' /proc/modules ||
        die "no tcp_diag module in the guest, so ss cannot see ULP info (tests/vm/modules.txt needs net/ipv4/inet_diag.ko and net/ipv4/tcp_diag.ko)"
    hold_connection
    sockets=$(ss -Htni state established "( sport = :${S_PORT[held]} or dport = :${S_PORT[held]} )")
    ulp=$(printf '%s\n' "$sockets" | grep -c 'tcp-ulp-tls version: 1\.3 cipher: aes-gcm-256 rxconf: sw txconf: sw')
    [ "$ulp" = 2 ] || die "ss shows $ulp tunnel sockets with 'tcp-ulp-tls version: 1.3 cipher: aes-gcm-256 rxconf: sw txconf: sw', expected 2: $(printf '%s' "$sockets" | tr '\n\t' '  ')"
    ulp=$(ss -Htni state established | grep -c 'tcp-ulp-tls')
    [ "$ulp" = 2 ] || die "ss shows $ulp sockets with the tls ULP in all, expected only the 2 tunnel sockets"
    release_connection
    expect_pair held 2 TLSv1.3 TLS_AES_256_GCM_SHA384
}

for id in "${SUITES13[@]}"; do
    check "tls1.3-$id" cipher_case "$id" TLSv1.3
done
for id in "${SUITES12[@]}"; do
    check "tls1.2-$id" cipher_case "$id" TLSv1.2
done
check large-8MiB large
check tiny-1-and-0-bytes tiny
check half-close-both-ways halfclose
check concurrent-$CONCURRENT many
check held-connection-kernel-state held
check held-connection-ss-tls-ulp held_ss
stop_shared clean-shutdown "$S_PID" "$C13_PID" "$C12_PID"
finish
