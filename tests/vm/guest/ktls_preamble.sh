#!/bin/bash
# vm-kernel: debian12
# What a connection's outgoing socket carries before the stream, on the kTLS path:
# a server tunnel's PROXY v2 header goes to its target ahead of the relayed bytes
# (proxy_protocol = v2), and a client tunnel reaches its server through an HTTP
# CONNECT proxy (proxy = http://...) and still hands its session to the kernel, with
# nothing of the proxy's reply left in the TLS stream. Both ends ktls = require; the
# audit lines must say ktls=tx+rx and userspace_bytes=0.
GROUP=ktls-preamble
PORT_BASE=28000
source "$(dirname "$0")/lib/ktls.sh"
need ktlstund load_client echo_server socat sha256sum od

load_tls
ports 7
ECHO=${PORTS[0]} SINK=${PORTS[1]} S_SINK=${PORTS[2]} S_ECHO=${PORTS[3]}
C_SINK=${PORTS[4]} C_PROXIED=${PORTS[5]} PROXY=${PORTS[6]}
PAYLOAD_BYTES=1048576

start_echo "127.0.0.1:$ECHO"
S_CONF=$W/server.ini C_CONF=$W/client.ini S_LOG=$W/server.log C_LOG=$W/client.log
{
    global_section
    server_tunnel s-sink "$S_SINK" "$SINK" "proxy_protocol = v2"
    server_tunnel s-echo "$S_ECHO" "$ECHO"
} >"$S_CONF"
{
    global_section
    client_tunnel c-sink "$C_SINK" "$S_SINK"
    client_tunnel c-proxied "$C_PROXIED" "$S_ECHO" "proxy = http://127.0.0.1:$PROXY"
} >"$C_CONF"
SHARED_LOGS=("$S_LOG" "$C_LOG")
start_daemon "$S_CONF" "$S_LOG"
S_PID=$DAEMON_PID
start_daemon "$C_CONF" "$C_LOG"
C_PID=$DAEMON_PID

# The target gets the 16-byte v2 preamble, the header's own length of addresses and
# TLVs, then exactly the client's bytes.
proxy_header() {
    payload "$W/payload" "$PAYLOAD_BYTES"
    spawn "$W/sink.log" socat -u "TCP-LISTEN:$SINK,bind=127.0.0.1,reuseaddr" "OPEN:$W/got,creat,trunc"
    local sink=$SPAWN_PID
    sleep 0.5
    must socat -u "OPEN:$W/payload" "TCP:127.0.0.1:$C_SINK"
    wait_exit "$sink" "$LIMIT" || die "the target did not see the end of the stream"
    local signature version len total
    signature=$(head -c 12 "$W/got" | od -An -tx1 | tr -d ' \n')
    [ "$signature" = 0d0a0d0a000d0a515549540a ] ||
        die "the target's first bytes are not the PROXY v2 signature: $signature"
    version=$(head -c 13 "$W/got" | tail -c 1 | od -An -tx1 | tr -d ' \n')
    [ "$version" = 21 ] || die "version/command byte is $version, expected 21 (v2, PROXY)"
    len=$(head -c 16 "$W/got" | tail -c 2 | od -An -tu1 | xargs)
    total=$((16 + ${len% *} * 256 + ${len#* }))
    [ "$(wc -c <"$W/got")" = $((total + PAYLOAD_BYTES)) ] ||
        die "the target got $(wc -c <"$W/got") bytes, expected a $total-byte header and $PAYLOAD_BYTES"
    tail -c "$PAYLOAD_BYTES" "$W/got" >"$W/got.payload"
    [ "$(sha "$W/got.payload")" = "$(sha "$W/payload")" ] || die "the relayed bytes differ after the header"
    grep -q 'alice' "$W/got" || die "no TLV names the client certificate's CN (alice)"
    expect_offloaded "$C_LOG" c-sink 1
    expect_offloaded "$S_LOG" s-sink 1
}

# A CONNECT proxy in a few lines of bash: it logs the request head, answers 200 and
# then only carries bytes.
connect_proxy() {
    cat >"$W/proxy.sh" <<PROXY
#!/bin/bash
while IFS= read -r line; do
    printf '%s\n' "\${line%\$'\r'}" >>"$W/proxy.requests"
    [ "\${line%\$'\r'}" = "" ] && break
done
printf 'HTTP/1.1 200 Connection established\r\n\r\n'
exec socat - TCP:127.0.0.1:$S_ECHO
PROXY
    chmod +x "$W/proxy.sh"
    spawn "$W/proxy.log" socat "TCP-LISTEN:$PROXY,bind=127.0.0.1,reuseaddr,fork" "EXEC:$W/proxy.sh"
    sleep 0.5
    must load_client "127.0.0.1:$C_PROXIED" --connections 2 --min-bytes "$PAYLOAD_BYTES" \
        --max-bytes "$PAYLOAD_BYTES" --seed "$RANDOM" --timeout 120
    [ "$(grep -c "^CONNECT 127.0.0.1:$S_ECHO HTTP/1.1$" "$W/proxy.requests")" = 2 ] ||
        die "the proxy did not see two CONNECTs: $(head -n 5 "$W/proxy.requests")"
    expect_offloaded "$C_LOG" c-proxied 2
    expect_offloaded "$S_LOG" s-echo 2
}

check proxy-v2-header-then-stream proxy_header
check connect-proxy-then-offload connect_proxy
stop_shared clean-shutdown "$S_PID" "$C_PID"
finish
