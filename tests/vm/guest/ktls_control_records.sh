#!/bin/bash
# What arrives on an offloaded connection besides data, and peers that misbehave after
# the handshake, against a ktlstun server tunnel (ktls = require) in front of an echo
# server. tls_misbehave (tests/tools) completes a TLS 1.3 handshake as alice, gets a
# probe line echoed (so the tunnel is relaying through kTLS), then:
#
#   close-notify         → the tunnel half-closes, the echo ends, we get close_notify back
#   alert                → fatal alert {2, 40}: the tunnel closes without another word;
#                          the audit names the alert
#   framed-garbage       → a record that cannot decrypt: a fatal bad_record_mac alert
#                          back (RFC 8446 6.2), EBADMSG in the audit,
#                          ktlstun_ktls_decrypt_errors_total and TlsDecryptError +1
#   garbage              → non-TLS bytes: closed at once (not left hanging) with
#                          bad_record_mac, the audit names the broken record stream,
#                          decrypt errors +1
#   keyupdate[-requested]→ before Linux 6.14 kTLS cannot rekey: the tunnel closes
#                          cleanly (close_notify to the peer) and says so in one line.
#                          From 6.14 on it takes the peer's next key (and, when asked,
#                          sends its own KeyUpdate and moves to its next key): a second
#                          probe line is echoed under the new keys, then both sides
#                          close cleanly; tls_stat counts the rekeys
#
# plus a KeyUpdate from a foreign server (openssl s_server's "k" command) on a ktlstun
# client tunnel, with the same two outcomes by kernel. Every case also proves the connection was offloaded (audit ktls=tx+rx,
# userspace_bytes=0, tls_stat counted the sessions) before it misbehaved.
GROUP=ktls-control
PORT_BASE=23000
source "$(dirname "$0")/lib/ktls.sh"
need ktlstund tls_misbehave echo_server openssl socat curl

CASES=(closenotify alert framed garbage keyupdate keyupdatereq)
KEYUPDATE_LINE='peer sent a TLS 1.3 KeyUpdate; closing cleanly: this kernel cannot rekey kTLS (needs Linux 6.14)'

load_tls
ports 2
ECHO=${PORTS[0]} METRICS=${PORTS[1]}
declare -A S_PORT
for id in "${CASES[@]}"; do
    ports 1
    S_PORT[$id]=${PORTS[0]}
done
start_echo "127.0.0.1:$ECHO"
CONF=$W/server.ini LOG=$W/server.log
{
    global_section "metrics_listen = $METRICS"
    for id in "${CASES[@]}"; do
        server_tunnel "s-$id" "${S_PORT[$id]}" "$ECHO"
    done
} >"$CONF"
SHARED_LOGS=("$LOG" "$ECHO_LOG")
start_daemon "$CONF" "$LOG"
DAEMON=$DAEMON_PID

# misbehave ID ACTION [OPTION...]: runs tls_misbehave against s-ID; OUTCOME is what it
# saw.
misbehave() {
    local out=$W/misbehave.$1.out
    tls_misbehave "127.0.0.1:${S_PORT[$1]}" "$2" "${@:3}" --cert "$PKI/alice.pem" --key "$PKI/alice.key" \
        --ca "$PKI/ca.pem" --timeout 30 >"$out" 2>&1 || die "tls_misbehave $2 failed: $(tr '\n' ' ' <"$out")"
    cat "$out"
    OUTCOME=$(sed -n 's/^outcome: //p' "$out")
    AFTER=$(sed -n 's/^after-action: \([0-9]*\) bytes$/\1/p' "$out")
    [ "$AFTER" = 0 ] || die "$AFTER bytes came back after the $2 (the tunnel went on relaying)"
}

# close_reason ID: the close reason in s-ID's only audit line, after checking the line
# says the connection was offloaded with nothing but the probe through userspace.
close_reason() {
    expect_offloaded "$LOG" "s-$1" 1 TLSv1.3
    field "$AUDIT" close
}

# decrypt_errors ID: ktlstun_ktls_decrypt_errors_total for s-ID.
decrypt_errors() {
    metric "$(fetch_metrics "$METRICS")" "ktlstun_ktls_decrypt_errors_total{tunnel=\"s-$1\"}"
}

# backend_closed: the echo server saw its connection end (the tunnel closed its side).
backend_closed() {
    wait_for "$ECHO_LOG" '^closed ' "$LIMIT" "$BACKEND_BEFORE" ||
        die "the backend connection was not closed"
}

expect_tool_sessions() {  # TX RX: tls_stat growth, the tool's own kTLS TX included
    local tx rx
    tx=$(stat_delta TlsTxSw)
    rx=$(stat_delta TlsRxSw)
    [ "$tx" = "$1" ] && [ "$rx" = "$2" ] ||
        die "/proc/net/tls_stat: TlsTxSw rose by $tx and TlsRxSw by $rx, expected $1 and $2"
}

begin_case() {
    stat_snapshot
    BACKEND_BEFORE=$(($(grep -c '^closed ' "$ECHO_LOG") + 1))
}

closenotify() {
    begin_case
    misbehave closenotify close-notify
    [ "$OUTCOME" = close_notify ] || die "after our close_notify the tunnel answered '$OUTCOME', expected its own close_notify"
    local reason
    reason=$(close_reason closenotify)
    [ "$reason" = "closed by both sides" ] || die "close reason '$reason', expected 'closed by both sides'"
    backend_closed
    expect_tool_sessions 1 1
}

alert() {
    begin_case
    misbehave alert alert
    # The session is over once the peer sent a fatal alert: nothing may come back.
    case $OUTCOME in
        eof | reset) ;;
        *) die "after our fatal alert the tunnel answered '$OUTCOME', expected a plain close" ;;
    esac
    local reason
    reason=$(close_reason alert)
    [ "$reason" = "peer sent alert: handshake failure" ] ||
        die "close reason '$reason', expected 'peer sent alert: handshake failure'"
    backend_closed
    # The tool's own socket put kTLS TX on to send the alert: one more TX session.
    expect_tool_sessions 2 1
    [ "$(decrypt_errors alert)" = 0 ] || die "an alert was counted as a decrypt error"
}

# bad_record_mac: what TLS requires in answer to a record that does not decrypt.
bad_record_mac() {
    [ "$OUTCOME" = "alert bad record mac" ] ||
        die "the tunnel answered a broken record with '$OUTCOME', expected a fatal bad_record_mac alert"
}

framed() {
    begin_case
    misbehave framed framed-garbage
    bad_record_mac
    local reason
    reason=$(close_reason framed)
    [[ $reason == *EBADMSG* ]] || die "close reason '$reason' does not mention EBADMSG"
    backend_closed
    expect_tool_sessions 1 1
    [ "$(stat_delta TlsDecryptError)" = 1 ] || die "TlsDecryptError rose by $(stat_delta TlsDecryptError), expected 1"
    [ "$(decrypt_errors framed)" = 1 ] || die "ktlstun_ktls_decrypt_errors_total{tunnel=\"s-framed\"} is $(decrypt_errors framed), expected 1"
}

garbage() {
    begin_case
    misbehave garbage garbage
    bad_record_mac
    local reason
    reason=$(close_reason garbage)
    case $reason in
        *corrupt* | *EBADMSG* | *EINVAL* | *decrypt* | *malformed* | *invalid*) ;;
        *) die "close reason '$reason' does not say the record stream was broken" ;;
    esac
    backend_closed
    expect_tool_sessions 1 1
    [ "$(decrypt_errors garbage)" = 1 ] ||
        die "ktlstun_ktls_decrypt_errors_total{tunnel=\"s-garbage\"} is $(decrypt_errors garbage), expected 1"
}

# keyupdate_case ID ACTION: on 6.1 the RX key cannot be replaced (TLS_RX again gets
# EBUSY): the tunnel must close cleanly, i.e. with a close_notify under its unchanged
# TX key, and log why. From 6.14 on the tunnel rekeys and goes on relaying.
keyupdate_case() {
    begin_case
    if rekey_kernel; then
        keyupdate_rekeyed "$@"
        return
    fi
    misbehave "$1" "$2"
    [ "$OUTCOME" = close_notify ] ||
        die "after a KeyUpdate the tunnel closed with '$OUTCOME', not cleanly with a close_notify"
    local reason
    reason=$(close_reason "$1")
    [[ $reason == "$KEYUPDATE_LINE"* ]] || die "close reason '$reason', expected '$KEYUPDATE_LINE...'"
    backend_closed
    expect_tool_sessions 1 1
    [ "$(decrypt_errors "$1")" = 0 ] || die "a KeyUpdate was counted as a decrypt error"
}

# keyupdate_rekeyed ID ACTION: a kernel that rekeys: the probe after the KeyUpdate comes
# back (the tunnel decrypted it with the peer's next key; after update_requested the
# tool decrypted the echo with the tunnel's next key), then close_notify both ways.
keyupdate_rekeyed() {
    misbehave "$1" "$2" --then-echo
    grep -q '^echo-after-action: ok$' "$W/misbehave.$1.out" ||
        die "no echo after the KeyUpdate"
    [ "$OUTCOME" = close_notify ] ||
        die "after our close_notify the tunnel answered '$OUTCOME', expected its own close_notify"
    local reason tx=0
    reason=$(close_reason "$1")
    [ "$reason" = "closed by both sides" ] || die "close reason '$reason', expected 'closed by both sides'"
    backend_closed
    expect_tool_sessions 1 1
    [ "$2" = keyupdate-requested ] && tx=1
    expect_rekeys "$tx" 1
    [ "$(stat_delta TlsTxRekeyOk)" = "$tx" ] ||
        die "TlsTxRekeyOk rose by $(stat_delta TlsTxRekeyOk), expected $tx (our KeyUpdate only when asked)"
    [ "$(stat_delta TlsRxRekeyOk)" = 1 ] || die "TlsRxRekeyOk rose by $(stat_delta TlsRxRekeyOk), expected 1"
    [ "$(decrypt_errors "$1")" = 0 ] || die "a KeyUpdate was counted as a decrypt error"
}

# A foreign TLS 1.3 server (openssl s_server) sends KeyUpdate to a ktlstun client tunnel:
# its "k" command line calls SSL_key_update. The tunnel closes with the same line.
server_keyupdate() {
    local srv cli fd_s fd_c
    ports 2
    srv=${PORTS[0]} cli=${PORTS[1]}
    { global_section; client_tunnel c-ku "$cli" "$srv"; } >"$W/client.ini"
    mkfifo "$W/s_server.in" "$W/socat.in"
    spawn "$W/s_server.out" bash -c "exec openssl s_server -accept 127.0.0.1:$srv -naccept 1 \
        -cert $PKI/server.pem -cert_chain $PKI/server.pem -key $PKI/server.key -CAfile $PKI/ca.pem -Verify 1 \
        -verify_return_error -tls1_3 <'$W/s_server.in'"
    exec {fd_s}>"$W/s_server.in"
    LOGS+=("$W/s_server.out")
    wait_for "$W/s_server.out" '^ACCEPT' 30 || die "openssl s_server did not start"
    start_daemon "$W/client.ini" "$W/client.log"
    stat_snapshot
    spawn "$W/socat.out" bash -c "exec socat -t 30 - TCP:127.0.0.1:$cli <'$W/socat.in'"
    exec {fd_c}>"$W/socat.in"
    printf 'to-server-line\n' >&"$fd_c"
    wait_for "$W/s_server.out" '^to-server-line' || die "s_server never got our line"
    printf 'k\n' >&"$fd_s"
    if rekey_kernel; then
        # The tunnel takes the server's next key: what s_server sends now arrives.
        # (s_server's own report of the KeyUpdate sits in its stdio buffer until exit.)
        wait_stat TlsRxRekeyOk 1
        printf 'to-client-line\n' >&"$fd_s"
        wait_for "$W/socat.out" '^to-client-line$' || die "the line s_server sent under its next key never arrived"
        printf 'second-to-server-line\n' >&"$fd_c"
        wait_for "$W/s_server.out" '^second-to-server-line' || die "s_server never got our second line"
        exec {fd_c}>&-
        wait_for "$W/client.log" "info: audit tunnel=c-ku " || die "the client tunnel did not close after socat ended"
        expect_offloaded "$W/client.log" c-ku 1 TLSv1.3
        expect_sw_sessions 1
        expect_rekeys 0 1
        exec {fd_s}>&-
        return
    fi
    wait_for "$W/client.log" "info: audit tunnel=c-ku " ||
        die "the client tunnel did not close after the server's KeyUpdate"
    expect_offloaded "$W/client.log" c-ku 1 TLSv1.3
    local reason
    reason=$(field "$AUDIT" close)
    [[ $reason == "$KEYUPDATE_LINE"* ]] || die "close reason '$reason', expected '$KEYUPDATE_LINE...'"
    grep -q '^SSL_do_handshake -> 1' "$W/s_server.out" || die "s_server does not say it sent the KeyUpdate (SSL_do_handshake -> 1)"
    expect_sw_sessions 1
    exec {fd_c}>&- {fd_s}>&-
}

check close-notify closenotify
check fatal-alert alert
check undecryptable-record framed
check non-tls-garbage garbage
check keyupdate keyupdate_case keyupdate keyupdate
check keyupdate-requested keyupdate_case keyupdatereq keyupdate-requested
check keyupdate-from-foreign-server server_keyupdate
stop_shared clean-shutdown "$DAEMON"
finish
