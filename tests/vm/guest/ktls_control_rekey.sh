#!/bin/bash
# TLS 1.3 KeyUpdate on offloaded tunnels in the middle of a transfer, by kernel:
#
#   s_client-k-K        openssl s_client → ktlstun server tunnel → echo: three chunks,
#                       with s_client's "k" (KeyUpdate) and "K" (KeyUpdate,
#                       update_requested) between them. From Linux 6.14 on the tunnel
#                       takes the client's next keys twice and answers "K" with its own
#                       KeyUpdate; the echo of all three chunks comes back intact
#                       (SHA-256) and tls_stat counts the rekeys. Before 6.14 the tunnel
#                       closes cleanly at the first KeyUpdate, saying the kernel cannot
#                       rekey.
#   s_server-k-K        socat → ktlstun client tunnel → openssl s_server, data both ways
#                       with s_server's "k" and "K" between the chunks: the same two
#                       outcomes by kernel.
#   own-rekeys          the test build build/tests/ktlstund-tiny-records (its AES record
#                       limit is a handful of records, tests/vm/README.md) carries 4 MiB
#                       each way through a client and a server tunnel: from 6.14 on both
#                       ends start KeyUpdates of their own many times inside the one
#                       transfer and the echo is intact; before 6.14 the tunnel closes
#                       cleanly at the limit.
#   rekey-bytes         ktlstund with rekey_bytes = 512K on both tunnels: 4 MiB each way
#                       make both sending ends change keys at least 7 times each; the
#                       echo is intact. Before 6.14 the schedule does nothing: the same
#                       transfer works, offloaded, with no rekey.
#   rekey-interval      the same with rekey_interval = 1s and 1 MiB paced over 6 s.
#
# Every case proves the connection was offloaded (audit ktls=tx+rx, userspace_bytes=0)
# and, on a kernel that rekeys, that TlsRxRekeyError and TlsTxRekeyError stayed 0.
GROUP=ktls-rekey
PORT_BASE=23500
source "$(dirname "$0")/lib/ktls.sh"
need ktlstund load_client echo_server openssl socat
TINY=${KTLSTUN_BUILD:-/build}/tests/ktlstund-tiny-records
[ -x "$TINY" ] || die "$TINY is missing (make all builds it)"

KEYUPDATE_LINE='peer sent a TLS 1.3 KeyUpdate; closing cleanly: this kernel cannot rekey kTLS (needs Linux 6.14)'
LIMIT_LINE='AES record limit for one key reached (RFC 8446 5.5); closing so the peer reconnects with fresh keys'
OWN_BYTES=4194304

load_tls
if rekey_kernel; then note "this kernel rekeys kTLS ($(uname -r))"; else note "this kernel cannot rekey kTLS ($(uname -r))"; fi

ports 1
ECHO=${PORTS[0]}
start_echo "127.0.0.1:$ECHO"
SHARED_LOGS=("$ECHO_LOG")

# chunk FILE: about 200 KiB of text payload (od lines, each starting with '='): no
# byte of it can read as an s_client or s_server command letter.
chunk() { head -c 65536 /dev/urandom | od -An -tu1 -v | sed 's/^/=/' >"$1"; }

# size FILE: its size in bytes.
size() { stat -c %s "$1" 2>/dev/null || echo 0; }

# wait_size FILE BYTES: until FILE holds at least BYTES bytes.
wait_size() {
    local i
    for ((i = 0; i < LIMIT * 10; i++)); do
        [ "$(size "$1")" -ge "$2" ] && return 0
        sleep 0.1
    done
    die "$1 holds $(size "$1") bytes after $LIMIT s, expected $2"
}

s_client_keyupdates() {
    local port fd total
    ports 1
    port=${PORTS[0]}
    { global_section; server_tunnel s-kk "$port" "$ECHO"; } >"$W/s.ini"
    start_daemon "$W/s.ini" "$W/s.log"
    chunk "$W/c1" && chunk "$W/c2" && chunk "$W/c3"
    cat "$W/c1" "$W/c2" "$W/c3" >"$W/all"
    stat_snapshot
    mkfifo "$W/s_client.in"
    spawn "$W/s_client.err" bash -c "exec openssl s_client -connect 127.0.0.1:$port -tls1_3 \
        -cert $PKI/alice.pem -cert_chain $PKI/alice.pem -key $PKI/alice.key -CAfile $PKI/ca.pem \
        -verify_return_error -verify_hostname localhost -quiet -no_ign_eof \
        <'$W/s_client.in' >'$W/s_client.out'"
    local client=$SPAWN_PID
    LOGS+=("$W/s_client.err" "$W/s.log")
    exec {fd}>"$W/s_client.in"
    cat "$W/c1" >&"$fd"
    wait_size "$W/s_client.out" "$(size "$W/c1")"
    # s_client takes a command only at the start of what one read returns: it gets
    # "k" alone, since everything before it was read and echoed already.
    printf 'k\n' >&"$fd"
    wait_for "$W/s_client.err" '^KEYUPDATE' || die "s_client did not send its KeyUpdate"
    if ! rekey_kernel; then
        wait_exit "$client" "$LIMIT" || die "s_client did not end after the tunnel closed (exit $?)"
        exec {fd}>&-
        expect_offloaded "$W/s.log" s-kk 1 TLSv1.3
        local reason
        reason=$(field "$AUDIT" close)
        [[ $reason == "$KEYUPDATE_LINE"* ]] || die "close reason '$reason', expected '$KEYUPDATE_LINE...'"
        expect_sw_sessions 1
        return
    fi
    cat "$W/c2" >&"$fd"
    wait_size "$W/s_client.out" $(($(size "$W/c1") + $(size "$W/c2")))
    printf 'K\n' >&"$fd"
    wait_for "$W/s_client.err" '^KEYUPDATE' "$LIMIT" 2 || die "s_client did not send its second KeyUpdate"
    cat "$W/c3" >&"$fd"
    total=$(size "$W/all")
    wait_size "$W/s_client.out" "$total"
    exec {fd}>&-
    wait_exit "$client" "$LIMIT" || die "s_client did not end after its stdin did (exit $?)"
    [ "$(sha "$W/s_client.out")" = "$(sha "$W/all")" ] ||
        die "the echo differs: $(size "$W/s_client.out") bytes, expected $total"
    expect_offloaded "$W/s.log" s-kk 1 TLSv1.3
    [ "$(field "$AUDIT" bytes_in)" = "$total" ] || die "audit bytes_in=$(field "$AUDIT" bytes_in), expected $total"
    [ "$(field "$AUDIT" bytes_out)" = "$total" ] || die "audit bytes_out=$(field "$AUDIT" bytes_out), expected $total"
    expect_sw_sessions 1
    # k and K: two new receive keys; K: our own KeyUpdate, one new sending key.
    expect_rekeys 1 2
    [ "$(stat_delta TlsRxRekeyOk)" = 2 ] || die "TlsRxRekeyOk rose by $(stat_delta TlsRxRekeyOk), expected 2"
    [ "$(stat_delta TlsTxRekeyOk)" = 1 ] || die "TlsTxRekeyOk rose by $(stat_delta TlsTxRekeyOk), expected 1"
}

# payload_of FILE: what s_server wrote of the payload. It writes data straight to
# stdout but its own notes ("SSL_do_handshake -> 1" for each KeyUpdate it sends, "Read
# BLOCK") through stdio, flushed whenever: a note can land inside a payload line. The
# notes are cut out with their newline, then the payload lines (starting '=') kept.
payload_of() {
    local text
    text=$(<"$1")
    text=${text//$'SSL_do_handshake -> 1\n'/}
    text=${text//$'Read BLOCK\n'/}
    printf '%s\n' "$text" | grep '^='
}

s_server_keyupdates() {
    local srv cli fd_s fd_c
    ports 2
    srv=${PORTS[0]} cli=${PORTS[1]}
    { global_section; client_tunnel c-kk "$cli" "$srv"; } >"$W/c.ini"
    chunk "$W/u1" && chunk "$W/u2" && chunk "$W/u3"
    chunk "$W/d1" && chunk "$W/d2" && chunk "$W/d3"
    cat "$W/u1" "$W/u2" "$W/u3" >"$W/up"
    cat "$W/d1" "$W/d2" "$W/d3" >"$W/down"
    mkfifo "$W/s_server.in" "$W/socat.in"
    spawn "$W/s_server.out" bash -c "exec openssl s_server -accept 127.0.0.1:$srv -naccept 1 \
        -cert $PKI/server.pem -cert_chain $PKI/server.pem -key $PKI/server.key -CAfile $PKI/ca.pem -Verify 1 \
        -verify_return_error -tls1_3 <'$W/s_server.in'"
    local server=$SPAWN_PID
    exec {fd_s}>"$W/s_server.in"
    LOGS+=("$W/s_server.out" "$W/c.log")
    wait_for "$W/s_server.out" '^ACCEPT' 30 || die "openssl s_server did not start"
    start_daemon "$W/c.ini" "$W/c.log"
    stat_snapshot
    spawn "$W/socat.err" bash -c "exec socat -t 30 - TCP:127.0.0.1:$cli <'$W/socat.in' >'$W/socat.out'"
    exec {fd_c}>"$W/socat.in"
    # Both ways, then "k": every chunk is across before a command, so s_server reads
    # the command alone and prints nothing inside a payload line.
    cat "$W/u1" >&"$fd_c"
    cat "$W/d1" >&"$fd_s"
    wait_size "$W/socat.out" "$(size "$W/d1")"
    wait_for "$W/s_server.out" '^=' "$LIMIT" "$(wc -l <"$W/u1")" || die "s_server did not get the first chunk"
    printf 'k\n' >&"$fd_s"
    if ! rekey_kernel; then
        wait_for "$W/c.log" "info: audit tunnel=c-kk " || die "the client tunnel did not close after the KeyUpdate"
        expect_offloaded "$W/c.log" c-kk 1 TLSv1.3
        local reason
        reason=$(field "$AUDIT" close)
        [[ $reason == "$KEYUPDATE_LINE"* ]] || die "close reason '$reason', expected '$KEYUPDATE_LINE...'"
        expect_sw_sessions 1
        exec {fd_c}>&- {fd_s}>&-
        return
    fi
    # s_server reports its KeyUpdate only into its stdio buffer: the kernel's count says
    # the tunnel took it, and so that s_server has read "k" alone.
    wait_stat TlsRxRekeyOk 1
    cat "$W/u2" >&"$fd_c"
    cat "$W/d2" >&"$fd_s"
    wait_size "$W/socat.out" $(($(size "$W/d1") + $(size "$W/d2")))
    wait_for "$W/s_server.out" '^=' "$LIMIT" $(($(wc -l <"$W/u1") + $(wc -l <"$W/u2"))) ||
        die "s_server did not get the second chunk"
    printf 'K\n' >&"$fd_s"
    wait_stat TlsRxRekeyOk 2
    # The tunnel's answer (its own KeyUpdate) has gone out before more payload.
    wait_stat TlsTxRekeyOk 1
    sleep 1
    cat "$W/u3" >&"$fd_c"
    cat "$W/d3" >&"$fd_s"
    wait_size "$W/socat.out" "$(size "$W/down")"
    wait_for "$W/s_server.out" '^=' "$LIMIT" "$(wc -l <"$W/up")" || die "s_server did not get the third chunk"
    exec {fd_c}>&-
    wait_for "$W/c.log" "info: audit tunnel=c-kk " || die "the client tunnel did not close after socat ended"
    exec {fd_s}>&-
    wait_exit "$server" "$LIMIT"
    [ "$(sha "$W/socat.out")" = "$(sha "$W/down")" ] ||
        die "the download differs: $(size "$W/socat.out") bytes, expected $(size "$W/down")"
    if [ "$(payload_of "$W/s_server.out" | sha256sum | cut -d' ' -f1)" != "$(sha "$W/up")" ]; then
        grep -vn '^=' "$W/s_server.out" | head -n 40
        payload_of "$W/s_server.out" >"$W/up.got"
        cmp "$W/up" "$W/up.got"
        die "s_server got a different upload"
    fi
    expect_offloaded "$W/c.log" c-kk 1 TLSv1.3
    expect_sw_sessions 1
    expect_rekeys 1 2
    [ "$(stat_delta TlsRxRekeyOk)" = 2 ] || die "TlsRxRekeyOk rose by $(stat_delta TlsRxRekeyOk), expected 2"
    [ "$(stat_delta TlsTxRekeyOk)" = 1 ] || die "TlsTxRekeyOk rose by $(stat_delta TlsTxRekeyOk), expected 1"
}

# The test build rekeys itself: client tunnel → server tunnel → echo, one daemon.
own_rekeys() {
    local srv cli rc=0
    ports 2
    srv=${PORTS[0]} cli=${PORTS[1]}
    { global_section; server_tunnel s-own "$srv" "$ECHO" "ciphersuites = TLS_AES_128_GCM_SHA256"
      client_tunnel c-own "$cli" "$srv" "ciphersuites = TLS_AES_128_GCM_SHA256"; } >"$W/own.ini"
    LOGS+=("$W/own.log")
    local saved_path=$PATH
    # start_daemon runs ktlstund from PATH: the test build under that name.
    mkdir -p "$W/tiny-bin"
    ln -sf "$TINY" "$W/tiny-bin/ktlstund"
    PATH=$W/tiny-bin:$PATH
    start_daemon "$W/own.ini" "$W/own.log"
    PATH=$saved_path
    stat_snapshot
    load_client "127.0.0.1:$cli" --connections 1 --min-bytes "$OWN_BYTES" --max-bytes "$OWN_BYTES" \
        --seed "$RANDOM" --timeout 240 >"$W/load.out" 2>&1 || rc=$?
    if ! rekey_kernel; then
        [ "$rc" != 0 ] || die "4 MiB crossed tunnels that cannot rekey past a limit of a few records"
        wait_audit "$W/own.log" c-own 1
        local line
        line=$(grep -hE "info: audit tunnel=(c|s)-own " "$W/own.log" | grep -F "$LIMIT_LINE" | head -n 1)
        [ -n "$line" ] || die "no tunnel closed with '$LIMIT_LINE'"
        return
    fi
    [ "$rc" = 0 ] || die "load_client failed: $(tail -n 3 "$W/load.out" | tr '\n' ' ')"
    expect_offloaded "$W/own.log" c-own 1 TLSv1.3
    expect_offloaded "$W/own.log" s-own 1 TLSv1.3
    expect_sw_sessions 2
    # 4 MiB each way at 16 records (256 KiB at most) per key: at least 16 new keys for
    # each of the two sending ends, each one a new receiving key at the other end.
    expect_rekeys 32 32
    note "TlsTxRekeyOk +$(stat_delta TlsTxRekeyOk), TlsRxRekeyOk +$(stat_delta TlsRxRekeyOk)"
    [ "$(stat_delta TlsDecryptError)" = 0 ] || die "TlsDecryptError rose by $(stat_delta TlsDecryptError)"
}

# scheduled_rekeys ID KEY=VALUE BYTES [LOAD_CLIENT OPTION...] MIN: client tunnel →
# server tunnel → echo, both with KEY=VALUE, BYTES each way; on a rekey kernel at least
# MIN new sending keys (and as many receiving ones) in all.
scheduled_rekeys() {
    local id=$1 setting=$2 bytes=$3 min=${*: -1} srv cli
    local options=("${@:4:$#-4}")
    ports 2
    srv=${PORTS[0]} cli=${PORTS[1]}
    { global_section; server_tunnel "s-$id" "$srv" "$ECHO" "$setting"
      client_tunnel "c-$id" "$cli" "$srv" "$setting"; } >"$W/$id.ini"
    start_daemon "$W/$id.ini" "$W/$id.log"
    stat_snapshot
    must load_client "127.0.0.1:$cli" --connections 1 --min-bytes "$bytes" --max-bytes "$bytes" \
        --seed "$RANDOM" --timeout 240 "${options[@]}"
    expect_offloaded "$W/$id.log" "c-$id" 1 TLSv1.3
    expect_offloaded "$W/$id.log" "s-$id" 1 TLSv1.3
    expect_sw_sessions 2
    if rekey_kernel; then
        expect_rekeys "$min" "$min"
    fi
}

check s_client-k-K s_client_keyupdates
check s_server-k-K s_server_keyupdates
check own-rekeys own_rekeys
check rekey-bytes scheduled_rekeys bytes "rekey_bytes = 512K" 4194304 14
check rekey-interval scheduled_rekeys interval "rekey_interval = 1s" 1048576 --duration-hint 6 4
finish
