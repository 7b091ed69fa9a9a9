#!/bin/bash
# Offloaded ktlstun tunnels (ktls = require) against peers that are not ktlstun:
#   - openssl s_client against a server tunnel: an upload and a download compared by
#     SHA-256, and a round trip for every TLS version x cipher the kernel offloads;
#   - curl against a server tunnel in front of busybox httpd: downloads over TLS 1.3 and
#     1.2, and an upload whose SHA-256 the backend computes;
#   - a client tunnel against openssl s_server, which sends two TLS 1.3 session tickets
#     right after the handshake (the tunnel must drop them and keep relaying through
#     kTLS), over TLS 1.3 and 1.2; and plain curl through a client tunnel to s_server -WWW.
# Every connection must be offloaded: audit ktls=tx+rx, userspace_bytes=0, and
# /proc/net/tls_stat counts one TX and one RX session per ktlstun end.
GROUP=ktls-interop
PORT_BASE=25000
source "$(dirname "$0")/lib/ktls.sh"
need ktlstund openssl curl socat busybox echo_server sha256sum

SUITES13=(TLS_AES_128_GCM_SHA256 TLS_AES_256_GCM_SHA384 TLS_CHACHA20_POLY1305_SHA256
          TLS_AES_128_CCM_SHA256)
SUITES12=(ECDHE-ECDSA-AES128-GCM-SHA256 ECDHE-ECDSA-AES256-GCM-SHA384
          ECDHE-ECDSA-CHACHA20-POLY1305 ECDHE-ECDSA-AES128-CCM)
TRANSFER=1048576

load_tls
ports 5
ECHO=${PORTS[0]} SINK=${PORTS[1]} SOURCE=${PORTS[2]} HTTPD=${PORTS[3]} METRICS=${PORTS[4]}
declare -A S_PORT
for id in upload download curl "${SUITES13[@]}" "${SUITES12[@]}"; do
    ports 1
    S_PORT[$id]=${PORTS[0]}
done

payload "$W/up.bin" "$TRANSFER"
payload "$W/down.bin" "$TRANSFER"
mkdir -p "$W/www/cgi-bin"
cp "$W/down.bin" "$W/www/blob.bin"
cat >"$W/www/cgi-bin/sha" <<'EOF'
#!/bin/sh
echo "Content-Type: text/plain"
echo
sha256sum | cut -d" " -f1
EOF
chmod 0755 "$W/www/cgi-bin/sha"

start_echo "127.0.0.1:$ECHO"
spawn "$W/httpd.log" busybox httpd -f -p "127.0.0.1:$HTTPD" -h "$W/www"
CONF=$W/server.ini LOG=$W/server.log
{
    global_section "metrics_listen = $METRICS"
    server_tunnel s-upload "${S_PORT[upload]}" "$SINK"
    server_tunnel s-download "${S_PORT[download]}" "$SOURCE"
    server_tunnel s-curl "${S_PORT[curl]}" "$HTTPD"
    for id in "${SUITES13[@]}"; do
        server_tunnel "s-$id" "${S_PORT[$id]}" "$ECHO" "tls_min_version = 1.3" "ciphersuites = $id"
    done
    for id in "${SUITES12[@]}"; do
        server_tunnel "s-$id" "${S_PORT[$id]}" "$ECHO" "ciphers = $id"
    done
} >"$CONF"
SHARED_LOGS=("$LOG")
start_daemon "$CONF" "$LOG"
DAEMON=$DAEMON_PID

S_CLIENT=(openssl s_client -nocommands -cert "$PKI/alice.pem" -cert_chain "$PKI/alice.pem" -key "$PKI/alice.key"
          -CAfile "$PKI/ca.pem" -verify_return_error -verify_hostname localhost)
S_SERVER=(openssl s_server -cert "$PKI/server.pem" -cert_chain "$PKI/server.pem"
          -key "$PKI/server.key" -CAfile "$PKI/ca.pem" -Verify 1 -verify_return_error -naccept 1)

# wait_listen PORT: until something listens on 127.0.0.1:PORT.
wait_listen() {
    local i
    for ((i = 0; i < 300; i++)); do
        [ -n "$(ss -Hltn "sport = :$1")" ] && return 0
        sleep 0.1
    done
    die "nothing listens on port $1"
}

# wait_size FILE BYTES: until FILE holds BYTES bytes.
wait_size() {
    local i
    for ((i = 0; i < LIMIT * 10; i++)); do
        [ "$(stat -c %s "$1" 2>/dev/null || echo 0)" -ge "$2" ] && return 0
        sleep 0.1
    done
    die "$1 holds $(stat -c %s "$1" 2>/dev/null || echo 0) bytes after $LIMIT s, expected $2"
}

# s_client sends 1 MiB and a close_notify; the backend hashes what it got to EOF.
# (-nocommands: random data must not read as s_client's Q/R/k/K command letters.)
upload() {
    spawn "$W/sink.log" socat -T 120 "TCP-LISTEN:$SINK,bind=127.0.0.1,reuseaddr" \
        SYSTEM:"sha256sum >$W/sink.tmp && mv $W/sink.tmp $W/sink.sha"
    wait_listen "$SINK"
    stat_snapshot
    timeout 120 "${S_CLIENT[@]}" -connect "127.0.0.1:${S_PORT[upload]}" -quiet -no_ign_eof \
        <"$W/up.bin" >"$W/upload.out" 2>"$W/upload.err" ||
        die "openssl s_client exited $?: $(tail -n 2 "$W/upload.err" | tr '\n' ' ')"
    wait_for "$W/sink.sha" . || die "the backend never saw the upload end"
    [ "$(cut -d' ' -f1 "$W/sink.sha")" = "$(sha "$W/up.bin")" ] || die "the backend got a different upload"
    expect_offloaded "$LOG" s-upload 1 TLSv1.3
    [ "$(field "$AUDIT" bytes_in)" = "$TRANSFER" ] || die "audit bytes_in=$(field "$AUDIT" bytes_in), expected $TRANSFER"
    expect_sw_sessions 1
}

# s_client downloads 1 MiB: the backend sends a file and closes; the tunnel ends the
# TLS stream with its own close_notify, which is what makes s_client exit.
download() {
    local fd
    spawn "$W/source.log" socat -T 120 "TCP-LISTEN:$SOURCE,bind=127.0.0.1,reuseaddr" SYSTEM:"cat $W/down.bin"
    wait_listen "$SOURCE"
    stat_snapshot
    mkfifo "$W/download.in"
    spawn "$W/download.err" bash -c "exec ${S_CLIENT[*]} -connect 127.0.0.1:${S_PORT[download]} -quiet \
        <'$W/download.in' >'$W/download.out'"
    local client=$SPAWN_PID
    exec {fd}>"$W/download.in"
    wait_exit "$client" 120 || die "openssl s_client did not end after the download (exit $?)"
    exec {fd}>&-
    [ "$(sha "$W/download.out")" = "$(sha "$W/down.bin")" ] ||
        die "the download differs: $(wc -c <"$W/download.out") bytes, expected $TRANSFER"
    expect_offloaded "$LOG" s-download 1 TLSv1.3
    [ "$(field "$AUDIT" bytes_out)" = "$TRANSFER" ] || die "audit bytes_out=$(field "$AUDIT" bytes_out), expected $TRANSFER"
    expect_sw_sessions 1
}

# s_client round trip for one suite: a line out, its echo back, close_notify.
s_client_suite() {
    local id=$1 version=$2 fd token="line-$id-$RANDOM" args
    if [ "$version" = TLSv1.3 ]; then args=(-tls1_3 -ciphersuites "$id"); else args=(-tls1_2 -cipher "$id"); fi
    stat_snapshot
    mkfifo "$W/$id.in"
    spawn "$W/$id.err" bash -c "exec ${S_CLIENT[*]} ${args[*]} -connect 127.0.0.1:${S_PORT[$id]} -quiet -no_ign_eof \
        <'$W/$id.in' >'$W/$id.out'"
    local client=$SPAWN_PID
    exec {fd}>"$W/$id.in"
    printf '%s\n' "$token" >&"$fd"
    wait_for "$W/$id.out" "^$token\$" || die "no echo through s-$id: $(tail -n 3 "$W/$id.err" | tr '\n' ' ')"
    exec {fd}>&-
    wait_exit "$client" "$LIMIT" || die "openssl s_client did not end after its close_notify"
    expect_offloaded "$LOG" "s-$id" 1 "$version" "$id"
    expect_sw_sessions 1
}

# curl against a server tunnel in front of busybox httpd.
curl_case() {
    local opts=(-sS --fail --max-time 120 --cacert "$PKI/ca.pem" --cert "$PKI/alice.pem" --key "$PKI/alice.key")
    local base=https://localhost:${S_PORT[curl]} answer
    stat_snapshot
    curl "${opts[@]}" -o "$W/curl13.bin" "$base/blob.bin" || die "curl (TLS 1.3) failed"
    [ "$(sha "$W/curl13.bin")" = "$(sha "$W/down.bin")" ] || die "curl (TLS 1.3) downloaded different bytes"
    curl "${opts[@]}" --tls-max 1.2 -o "$W/curl12.bin" "$base/blob.bin" || die "curl (TLS 1.2) failed"
    [ "$(sha "$W/curl12.bin")" = "$(sha "$W/down.bin")" ] || die "curl (TLS 1.2) downloaded different bytes"
    answer=$(curl "${opts[@]}" --data-binary "@$W/up.bin" "$base/cgi-bin/sha") || die "curl upload failed"
    [ "$answer" = "$(sha "$W/up.bin")" ] || die "the backend hashed the upload as '$answer'"
    expect_offloaded "$LOG" s-curl 3
    [ "$(printf '%s\n' "$AUDIT" | grep -c ' tls=TLSv1.2 ')" = 1 ] ||
        die "expected exactly one TLS 1.2 connection among: $AUDIT"
    expect_sw_sessions 3
}

# sserver_case NAME S_SERVER-ARGS...: a client tunnel to openssl s_server; 256 KiB each
# way through it, then our half-close ends it.
sserver_case() {
    local name=$1 srv cli fd_s fd_c bytes=262144
    shift
    ports 2
    srv=${PORTS[0]} cli=${PORTS[1]}
    { global_section; client_tunnel "c-$name" "$cli" "$srv"; } >"$W/$name.ini"
    payload "$W/$name.up" "$bytes"
    payload "$W/$name.down" "$bytes"
    mkfifo "$W/$name.s.in" "$W/$name.c.in"
    spawn "$W/$name.s.err" bash -c "exec ${S_SERVER[*]} -accept 127.0.0.1:$srv -quiet $* \
        <'$W/$name.s.in' >'$W/$name.s.out'"
    LOGS+=("$W/$name.s.err")
    exec {fd_s}>"$W/$name.s.in"
    wait_listen "$srv"
    start_daemon "$W/$name.ini" "$W/$name.log"
    stat_snapshot
    spawn "$W/$name.c.err" bash -c "exec socat -t 60 - TCP:127.0.0.1:$cli <'$W/$name.c.in' >'$W/$name.c.out'"
    exec {fd_c}>"$W/$name.c.in"
    cat "$W/$name.up" >&"$fd_c"
    wait_size "$W/$name.s.out" "$bytes"
    [ "$(sha "$W/$name.s.out")" = "$(sha "$W/$name.up")" ] || die "s_server received different bytes"
    cat "$W/$name.down" >&"$fd_s"
    wait_size "$W/$name.c.out" "$bytes"
    [ "$(sha "$W/$name.c.out")" = "$(sha "$W/$name.down")" ] || die "the client received different bytes"
    exec {fd_c}>&- {fd_s}>&-
    expect_offloaded "$W/$name.log" "c-$name" 1
    [ "$(field "$AUDIT" bytes_in)" = "$bytes" ] && [ "$(field "$AUDIT" bytes_out)" = "$bytes" ] ||
        die "audit bytes_in/bytes_out $(field "$AUDIT" bytes_in)/$(field "$AUDIT" bytes_out), expected $bytes each"
    EXPECT_VERSION=$(field "$AUDIT" tls)
    expect_sw_sessions 1
}

sserver13() {
    sserver_case sserver13 -tls1_3 -num_tickets 2
    [ "$EXPECT_VERSION" = TLSv1.3 ] || die "negotiated $EXPECT_VERSION, expected TLSv1.3"
}

sserver12() {
    sserver_case sserver12 -tls1_2 -cipher ECDHE-ECDSA-CHACHA20-POLY1305
    [ "$EXPECT_VERSION" = TLSv1.2 ] || die "negotiated $EXPECT_VERSION, expected TLSv1.2"
}

# Plain curl through a client tunnel to s_server -WWW (tickets again, then a file).
www() {
    local srv cli
    ports 2
    srv=${PORTS[0]} cli=${PORTS[1]}
    { global_section; client_tunnel c-www "$cli" "$srv"; } >"$W/www.ini"
    spawn "$W/www.err" bash -c "cd '$W/www' && exec ${S_SERVER[*]} -accept 127.0.0.1:$srv -WWW \
        -http_server_binmode -tls1_3 -num_tickets 2"
    LOGS+=("$W/www.err")
    wait_listen "$srv"
    start_daemon "$W/www.ini" "$W/www.log"
    stat_snapshot
    curl -sS --max-time 120 -o "$W/www.out" "http://127.0.0.1:$cli/blob.bin" || die "curl through the client tunnel failed"
    [ "$(sha "$W/www.out")" = "$(sha "$W/down.bin")" ] ||
        die "curl through the client tunnel got $(wc -c <"$W/www.out") different bytes"
    expect_offloaded "$W/www.log" c-www 1 TLSv1.3
    expect_sw_sessions 1
}

check s_client-upload upload
check s_client-download download
for id in "${SUITES13[@]}"; do
    check "s_client-tls1.3-$id" s_client_suite "$id" TLSv1.3
done
for id in "${SUITES12[@]}"; do
    check "s_client-tls1.2-$id" s_client_suite "$id" TLSv1.2
done
check curl-https curl_case
check s_server-tls1.3-session-tickets sserver13
check s_server-tls1.2-chacha20 sserver12
check curl-through-client-tunnel-to-s_server-WWW www
stop_shared clean-shutdown "$DAEMON"
finish
