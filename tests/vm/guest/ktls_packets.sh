#!/bin/bash
# A network tunnel's packets on the kTLS path (daemon/iprelay/packet_relay.c with its
# kernel transport), through tools/netdev_tool relay --ktls: two namespaces, a TUN
# device in each, joined by a client relay and a hub relay whose TLS session runs
# over TCP on the hub namespace's loopback with the keys in the kernel.
#
#   transfer   8 MiB of TCP from the client's namespace to the hub's through the two
#              devices, SHA-256 compared; /proc/net/tls_stat of the namespace that
#              holds the two TLS sockets counts exactly the two offloaded sessions
#              (TlsCurrTxSw and TlsCurrRxSw 2 while they run, TlsTxSw and TlsRxSw 2)
#              and no decrypt error. netdev_tool refuses to run without kTLS, and the
#              counters fail a run in which the sessions stayed in userspace.
#   rekey      (kernels that rekey kTLS, 6.14 and later) the same with rekey_bytes =
#              64 KiB on both relays over 4 MiB: KeyUpdates on the packet path many
#              times in one transfer, the payload intact, TlsTxRekeyOk and TlsRxRekeyOk
#              up by what the relays counted (at least 32 each), no rekey error.
GROUP=ktls-packets
source "$(dirname "$0")/lib/ktls.sh"
need netdev_tool ip socat sha256sum

load_tls

tag=$$
NS_A="kpa$tag" NS_B="kpb$tag"
cleanup_namespaces() { ip netns del "$NS_A" 2>/dev/null; ip netns del "$NS_B" 2>/dev/null; }
trap 'end_pids; cleanup_namespaces' EXIT
ip netns add "$NS_A" || die "ip netns add failed"
ip netns add "$NS_B" || die "ip netns add failed"
ip -n "$NS_A" link set lo up || die "lo up in $NS_A failed"
ip -n "$NS_B" link set lo up || die "lo up in $NS_B failed"

# b_stat NAME: a tls_stat counter of the hub's namespace, where both TLS sockets live
# (the counters are per namespace; a fresh one starts at 0).
b_stat() {
    local v
    v=$(ip netns exec "$NS_B" awk -v n="$1" '$1 == n { print $2 }' /proc/net/tls_stat 2>/dev/null)
    [ -n "$v" ] || die "/proc/net/tls_stat in $NS_B has no $1 (kernel without kTLS?)"
    echo "$v"
}

# start_relay NAME DEV_A DEV_B SUBNET [OPTIONS...]: netdev_tool relay --ktls between
# a device in each namespace (SUBNET.1 the client's, SUBNET.2 the hub's), fed from a
# FIFO on fd RELAY_FD; waits for "ready". Sets RELAY_PID and RELAY_OUT.
start_relay() {
    local name=$1 dev_a=$2 dev_b=$3 subnet=$4
    shift 4
    RELAY_OUT=$W/$name.out
    mkfifo "$W/$name.in" || die "mkfifo failed"
    netdev_tool relay 1400 "$PKI" "$NS_A" "$dev_a" "$subnet.1/24" "$NS_B" "$dev_b" "$subnet.2/24" \
        --ktls "$@" <"$W/$name.in" >"$RELAY_OUT" 2>&1 &
    RELAY_PID=$!
    PIDS+=("$RELAY_PID")
    exec {RELAY_FD}>"$W/$name.in"
    LOGS+=("$RELAY_OUT")
    wait_for "$RELAY_OUT" '^ready$' "$LIMIT" 1 "$RELAY_PID" ||
        die "netdev_tool relay --ktls did not start: $(tr '\n' ' ' <"$RELAY_OUT")"
}

# stop_relay: end of stdin; the relay prints its counts and ends.
stop_relay() {
    exec {RELAY_FD}>&-
    wait_exit "$RELAY_PID" "$LIMIT" || die "netdev_tool relay failed: $(tr '\n' ' ' <"$RELAY_OUT")"
    grep -q '^relayed ' "$RELAY_OUT" || die "no counts from the relay: $(tr '\n' ' ' <"$RELAY_OUT")"
    note "$(grep -E '^(relayed|ktls) ' "$RELAY_OUT" | tr '\n' ' ')"
}

# send BYTES SUBNET PORT: BYTES of random data from the client's namespace to a
# receiver on SUBNET.2:PORT in the hub's, through the tunnel; the received copy's
# SHA-256 must be the sent one's.
send() {
    net_send "$NS_A" "$NS_B" "$2.2" "$3" "$1"
}

transfer() {
    start_relay transfer ktpa ktpb 10.61.0
    local current_tx current_rx
    current_tx=$(b_stat TlsCurrTxSw)
    current_rx=$(b_stat TlsCurrRxSw)
    [ "$current_tx" = 2 ] && [ "$current_rx" = 2 ] ||
        die "TlsCurrTxSw $current_tx TlsCurrRxSw $current_rx while the relays run, not 2 and 2: not on kTLS"
    send 8388608 10.61.0 7100
    stop_relay
    local tx rx decrypt
    tx=$(b_stat TlsTxSw)
    rx=$(b_stat TlsRxSw)
    decrypt=$(b_stat TlsDecryptError)
    note "tls_stat in $NS_B: TlsTxSw $tx TlsRxSw $rx TlsDecryptError $decrypt"
    [ "$tx" = 2 ] && [ "$rx" = 2 ] || die "TlsTxSw $tx TlsRxSw $rx, not 2 and 2"
    [ "$decrypt" = 0 ] || die "TlsDecryptError $decrypt"
    local relayed
    relayed=$(awk '/^relayed/ { print $2 }' "$RELAY_OUT")
    [ "${relayed:-0}" -ge 5000 ] || die "only ${relayed:-0} packets relayed"
}

rekey() {
    local tx0 rx0 txe0 rxe0
    tx0=$(b_stat TlsTxRekeyOk)
    rx0=$(b_stat TlsRxRekeyOk)
    txe0=$(b_stat TlsTxRekeyError)
    rxe0=$(b_stat TlsRxRekeyError)
    start_relay rekey ktra ktrb 10.62.0 --rekey-bytes 65536
    send 4194304 10.62.0 7200
    stop_relay
    local counts tool_tx tool_rx tx rx
    counts=$(grep '^ktls ' "$RELAY_OUT") || die "no kTLS counts from the relay"
    read -r _ _ tool_tx _ tool_rx <<<"$counts"
    tx=$(($(b_stat TlsTxRekeyOk) - tx0))
    rx=$(($(b_stat TlsRxRekeyOk) - rx0))
    note "tls_stat in $NS_B: TlsTxRekeyOk +$tx TlsRxRekeyOk +$rx"
    [ "$tx" -ge 32 ] && [ "$rx" -ge 32 ] || die "TlsTxRekeyOk +$tx TlsRxRekeyOk +$rx: fewer than 32 rekeys"
    [ "$tx" = "$tool_tx" ] && [ "$rx" = "$tool_rx" ] ||
        die "the relays counted $tool_tx sending and $tool_rx receiving rekeys, the kernel $tx and $rx"
    [ "$(b_stat TlsTxRekeyError)" = "$txe0" ] && [ "$(b_stat TlsRxRekeyError)" = "$rxe0" ] ||
        die "rekey errors in tls_stat"
}

check_transfer_and_rekey
