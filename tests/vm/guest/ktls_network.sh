#!/bin/bash
# The daemon's network (layer-3) tunnel on kTLS: two ktlstund, the hub in namespace A
# and a client gateway in namespace B, on the two ends of a veth pair, both tunnels
# `ktls = require`. Traffic goes between the tunnel addresses (hub 10.8.0.1, client
# 10.8.0.2, fixed by client_address for alice's certificate).
#
#   transfer   4 MiB of TCP from the client's namespace to the hub's tunnel address,
#              SHA-256 compared; /proc/net/tls_stat of each namespace (the counters are
#              per namespace) shows its one offloaded session while it runs
#              (TlsCurrTxSw, TlsCurrRxSw 1) and counted it (TlsTxSw, TlsRxSw 1), no
#              decrypt error; `ktlstun status --json` shows the peer relaying with its
#              device, ktls_tx/ktls_rx and packets both ways; after both daemons stop,
#              each audit line says ktls=tx+rx with its packet counts.
#   rekey      (kernels that rekey kTLS, 6.14 and later) rekey_bytes = 64K on the hub
#              and 4 MiB from the hub to the client: the hub changes its sending key
#              many times inside the transfer (TlsTxRekeyOk in A and TlsRxRekeyOk in B
#              up by at least 32, and by the same number), the payload intact, no rekey
#              error in either namespace.
#
# ktls = require refuses a connection whose keys cannot go to the kernel, and the
# counters fail a run in which the sessions stayed in userspace.
GROUP=ktls-network
PORT_BASE=24000
source "$(dirname "$0")/lib/ktls.sh"
need ktlstund ktlstun ip socat sha256sum jq ss

load_tls
modprobe tun 2>/dev/null
[ -c /dev/net/tun ] || die "no /dev/net/tun in the guest"

BYTES=4194304

trap 'end_pids; net_pairs_remove' EXIT

# start_pair NAME [HUB EXTRA LINES...]: a fresh namespace pair, the hub's daemon in A
# and the client's in B; waits until the client's device ktlnet has 10.8.0.2 from the
# hub's CONFIG. Sets HUB_PID, SITE_PID, HUB_CONF, SITE_CONF, HUB_LOG, SITE_LOG.
start_pair() {
    local name=$1 i
    shift
    net_pair "$name"
    ports 1
    local port=${PORTS[0]}
    HUB_CONF=$W/$name-hub.ini SITE_CONF=$W/$name-site.ini
    HUB_LOG=$W/$name-hub.log SITE_LOG=$W/$name-site.log
    {
        WORKERS=1 global_section
        cat <<EOF
[hub]
mode = server
type = network
listen = 198.18.0.1:$port
cert = $PKI/server.pem
key = $PKI/server.key
ca = $PKI/ca.pem
address = 10.8.0.1/24
client_address = alice=10.8.0.2
EOF
        extra_lines "$@"
    } >"$HUB_CONF"
    {
        WORKERS=1 global_section
        cat <<EOF
[to-hub]
mode = client
type = network
target = 198.18.0.1:$port
server_name = localhost
cert = $PKI/alice.pem
key = $PKI/alice.key
ca = $PKI/ca.pem
device = ktlnet
reconnect_max = 2s
EOF
        extra_lines
    } >"$SITE_CONF"
    DAEMON_NS=$NS_A start_daemon "$HUB_CONF" "$HUB_LOG"
    HUB_PID=$DAEMON_PID
    DAEMON_NS=$NS_B start_daemon "$SITE_CONF" "$SITE_LOG"
    SITE_PID=$DAEMON_PID
    for ((i = 0; i < LIMIT * 10; i++)); do
        ip -n "$NS_B" -o addr show dev ktlnet 2>/dev/null | grep -q ' 10\.8\.0\.2/' && return 0
        sleep 0.1
    done
    die "the client's device ktlnet did not get 10.8.0.2 within $LIMIT s: $(ip -n "$NS_B" -o addr 2>&1 | tr '\n' ' ')"
}

# expect_network_audit LOG TUNNEL: exactly one audit line for TUNNEL, ktls=tx+rx,
# packets both ways, at least BYTES relayed.
expect_network_audit() {
    local line
    wait_audit "$1" "$2" 1
    sleep 0.2
    line=$(audit_lines "$1" "$2")
    [ "$(printf '%s\n' "$line" | grep -c .)" = 1 ] || die "[$2] wrote more than one audit line: $line"
    note "$line"
    [ "$(field "$line" ktls)" = tx+rx ] || die "[$2] not offloaded: $line"
    [ "$(field "$line" packets_in)" -gt 0 ] && [ "$(field "$line" packets_out)" -gt 0 ] ||
        die "[$2] no packets both ways: $line"
    [ $(($(field "$line" bytes_in) + $(field "$line" bytes_out))) -ge "$BYTES" ] ||
        die "[$2] fewer than $BYTES bytes relayed: $line"
}

# stop_pair: the client's daemon first (its session ends with close_notify), then the
# hub's; both exit 0.
stop_pair() {
    stop_daemon "$SITE_PID"
    wait_audit "$HUB_LOG" hub 1
    stop_daemon "$HUB_PID"
}

transfer() {
    start_pair transfer
    local ns
    net_send "$NS_B" "$NS_A" 10.8.0.1 7100 "$BYTES"
    for ns in "$NS_A" "$NS_B"; do
        [ "$(ns_tls_stat "$ns" TlsCurrTxSw)" = 1 ] && [ "$(ns_tls_stat "$ns" TlsCurrRxSw)" = 1 ] ||
            die "TlsCurrTxSw $(ns_tls_stat "$ns" TlsCurrTxSw) TlsCurrRxSw $(ns_tls_stat "$ns" TlsCurrRxSw) in $ns while up, not 1 and 1: not on kTLS"
    done
    local json row
    json=$(ip netns exec "$NS_A" ktlstun status --json -c "$HUB_CONF") || die "ktlstun status --json failed"
    row=$(jq -c '[.connections[] | select(.tunnel == "hub")]' <<<"$json")
    note "hub's status: $row"
    [ "$(jq length <<<"$row")" = 1 ] || die "status lists $(jq length <<<"$row") connections of [hub], not 1: $json"
    jq -e '.[0] | .state == "relaying" and .ktls_tx == true and .ktls_rx == true and
           (.device | startswith("ktl")) and .address != null and
           .packets_in >= 2000 and .packets_out >= 100' <<<"$row" >/dev/null ||
        die "the hub's status does not show the peer relaying on kTLS with its packets: $row"
    for ns in "$NS_A" "$NS_B"; do
        [ "$(ns_tls_stat "$ns" TlsDecryptError)" = 0 ] || die "TlsDecryptError $(ns_tls_stat "$ns" TlsDecryptError) in $ns"
    done
    stop_pair
    for ns in "$NS_A" "$NS_B"; do
        note "tls_stat in $ns: TlsTxSw $(ns_tls_stat "$ns" TlsTxSw) TlsRxSw $(ns_tls_stat "$ns" TlsRxSw) TlsCurrTxSw $(ns_tls_stat "$ns" TlsCurrTxSw)"
        [ "$(ns_tls_stat "$ns" TlsTxSw)" = 1 ] && [ "$(ns_tls_stat "$ns" TlsRxSw)" = 1 ] ||
            die "TlsTxSw $(ns_tls_stat "$ns" TlsTxSw) TlsRxSw $(ns_tls_stat "$ns" TlsRxSw) in $ns, not 1 and 1"
        [ "$(ns_tls_stat "$ns" TlsDecryptError)" = 0 ] || die "TlsDecryptError $(ns_tls_stat "$ns" TlsDecryptError) in $ns"
    done
    expect_network_audit "$HUB_LOG" hub
    expect_network_audit "$SITE_LOG" to-hub
}

rekey() {
    start_pair rekey "rekey_bytes = 64K"
    net_send "$NS_A" "$NS_B" 10.8.0.2 7200 "$BYTES"
    local tx rx ns
    tx=$(ns_tls_stat "$NS_A" TlsTxRekeyOk)
    rx=$(ns_tls_stat "$NS_B" TlsRxRekeyOk)
    note "the hub's TlsTxRekeyOk $tx, the client's TlsRxRekeyOk $rx"
    [ "$tx" -ge 32 ] || die "TlsTxRekeyOk $tx in the hub's namespace: fewer than 32 rekeys"
    [ "$rx" = "$tx" ] || die "the hub changed its sending key $tx times, the client its receiving key $rx times"
    for ns in "$NS_A" "$NS_B"; do
        [ "$(ns_tls_stat "$ns" TlsTxRekeyError)" = 0 ] && [ "$(ns_tls_stat "$ns" TlsRxRekeyError)" = 0 ] &&
            [ "$(ns_tls_stat "$ns" TlsDecryptError)" = 0 ] || die "rekey or decrypt errors in tls_stat of $ns"
    done
    stop_pair
    expect_network_audit "$HUB_LOG" hub
    expect_network_audit "$SITE_LOG" to-hub
}

check_transfer_and_rekey
