#!/usr/bin/env bash
# proxy_protocol = v2: a server tunnel tells its target who the client is, checked
# against real consumers started here on loopback with their own configs: nginx
# (listen ... proxy_protocol, $proxy_protocol_addr in its access log) and HAProxy 2.6
# (bind ... accept-proxy: src and dst are the client's and the listener's, and a header
# whose TLVs do not add up would be refused). Neither can show a TLV's value in these
# versions (nginx 1.22 has no $proxy_protocol_tlv_*, HAProxy 2.6 no fc_pp_tlv), so a
# small python3 receiver decodes the TLVs: TLS version, cipher, CN, and the custom
# 0xE0 (certificate SHA-256) and 0xE1 (user). Without the key the target gets no
# header. The keys' refusals name FILE:LINE.
source "$(dirname "$0")/lib.sh"

command -v nginx >/dev/null || fail "nginx is not installed (TEST_PACKAGES has nginx-light)"
command -v haproxy >/dev/null || fail "haproxy is not installed"

nginx_port=$(free_port)
haproxy_port=$(free_port)
py_port=$(free_port)
plain_port=$(free_port)
t_nginx=$(free_port)
t_haproxy=$(free_port)
t_py=$(free_port)
t_plain=$(free_port)
c_nginx=$(free_port)

# nginx: its own prefix, pid, logs and temp dirs in TEST_DIR, nothing of the system's.
mkdir -p "$TEST_DIR/nginx"
cat >"$TEST_DIR/nginx/nginx.conf" <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $TEST_DIR/nginx/nginx.pid;
error_log $TEST_DIR/nginx/error.log info;
events { worker_connections 64; }
http {
    client_body_temp_path $TEST_DIR/nginx/body;
    log_format pp 'pp=\$proxy_protocol_addr:\$proxy_protocol_port server=\$proxy_protocol_server_addr:\$proxy_protocol_server_port remote=\$remote_addr';
    server {
        listen 127.0.0.1:$nginx_port proxy_protocol;
        access_log $TEST_DIR/nginx/access.log pp;
        location / { return 200 "hello from nginx\n"; }
    }
}
EOF
spawn "$TEST_DIR/nginx/stderr.log" nginx -e "$TEST_DIR/nginx/error.log" -p "$TEST_DIR/nginx/" -c "$TEST_DIR/nginx/nginx.conf"
wait_listening "$nginx_port" || fail "nginx did not listen: $(cat "$TEST_DIR/nginx/stderr.log" "$TEST_DIR/nginx/error.log")"

cat >"$TEST_DIR/haproxy.cfg" <<EOF
global
    log stdout format raw local0
defaults
    mode http
    log global
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend pp
    bind 127.0.0.1:$haproxy_port accept-proxy
    log-format "haproxy-pp src=%ci:%cp dst=%fi:%fp"
    http-request return status 200 content-type text/plain lf-string "src=%[src]:%[src_port] dst=%[dst]:%[dst_port]\n"
EOF
spawn "$TEST_DIR/haproxy.log" haproxy -db -f "$TEST_DIR/haproxy.cfg"
wait_listening "$haproxy_port" || fail "haproxy did not listen: $(cat "$TEST_DIR/haproxy.log")"

# The TLVs' receiver (pp_receiver.py) writes one block per connection into its OUT.
: >"$TEST_DIR/py.out"
: >"$TEST_DIR/plain.out"
: >"$TEST_DIR/nginx/access.log"
spawn "$TEST_DIR/py.log" python3 "$(dirname "$0")/pp_receiver.py" "$py_port" "$TEST_DIR/py.out"
spawn "$TEST_DIR/plain.log" python3 "$(dirname "$0")/pp_receiver.py" "$plain_port" "$TEST_DIR/plain.out"
wait_listening "$py_port" "$plain_port" || fail "the python3 receivers did not listen: $(cat "$TEST_DIR/py.log")"

conf="$TEST_DIR/ktlstund.ini"
{
    global_section
    server_tunnel to-nginx "$t_nginx" "$nginx_port" "proxy_protocol = v2"
    server_tunnel to-haproxy "$t_haproxy" "$haproxy_port" "proxy_protocol = v2"
    server_tunnel to-py "$t_py" "$py_port" "proxy_protocol = v2" "ktls = off"
    server_tunnel to-plain "$t_plain" "$plain_port" "proxy_protocol = none"
    client_tunnel via-client "$c_nginx" "$t_nginx"
} >"$conf"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"

# curl_from SOURCE PORT: curl with alice's certificate from the address SOURCE straight
# to the server tunnel on PORT; prints the body.
curl_from() {
    curl -sS --max-time "$(scale 10)" --interface "$1" --cacert "$PKI/ca.pem" --cert "$PKI/alice.pem" \
        --key "$PKI/alice.key" --resolve "localhost:$2:127.0.0.1" -w ' port=%{local_port}' "https://localhost:$2/"
}

# nginx: the client's address and port, the listener's, and not ktlstun's own.
out=$(curl_from 127.0.0.5 "$t_nginx")
assert_contains "$out" "hello from nginx" "nginx answered through the tunnel"
cport=${out##*port=}
wait_for_log "$TEST_DIR/nginx/access.log" "^pp=" "$(scale 5)" || fail "nginx logged nothing: $(cat "$TEST_DIR/nginx/error.log")"
line=$(tail -n 1 "$TEST_DIR/nginx/access.log")
assert_eq "$line" "pp=127.0.0.5:$cport server=127.0.0.1:$t_nginx remote=127.0.0.1" "nginx's \$proxy_protocol_addr is the client"

# Through a client tunnel too: the server tunnel's client is then the client tunnel.
out=$(curl -sS --max-time "$(scale 10)" "http://127.0.0.1:$c_nginx/")
assert_eq "$out" "hello from nginx" "nginx through a client and a server tunnel"
wait_for_log "$TEST_DIR/nginx/access.log" "^pp=127\\.0\\.0\\.1:[0-9]+ server=127\\.0\\.0\\.1:$t_nginx " "$(scale 5)" \
    || fail "nginx did not log the client tunnel as the client: $(cat "$TEST_DIR/nginx/access.log")"

# HAProxy: accepts the header with its TLVs, and takes its addresses as the connection's.
out=$(curl_from 127.0.0.6 "$t_haproxy")
cport=${out##*port=}
assert_contains "$out" "src=127.0.0.6:$cport dst=127.0.0.1:$t_haproxy" "HAProxy's src and dst from the PROXY header"
assert_log "$TEST_DIR/haproxy.log" "haproxy-pp src=127\\.0\\.0\\.6:$cport dst=127\\.0\\.0\\.1:$t_haproxy" "HAProxy did not log the client"

# The TLVs, decoded by the receiver (userspace relay: ktls = off; the others took the
# kTLS path where the kernel has it).
alice_sha=$(cat "$PKI/alice.sha256")
client_args alice
printf 'hello\n' | timeout "$(scale 10)" openssl s_client -quiet -connect "127.0.0.1:$t_py" -bind 127.0.0.7:0 \
    "${CLIENT_ARGS[@]}" >"$TEST_DIR/s_client.out" 2>&1 || true
wait_for_log "$TEST_DIR/py.out" "^--$" "$(scale 5)" || fail "the receiver got nothing: $(cat "$TEST_DIR/py.log")"
got=$(cat "$TEST_DIR/py.out")
note "receiver: $(tr '\n' ' ' <<<"$got")"
assert_contains "$got" "ver_cmd=0x21 fam=0x11" "version 2, PROXY, TCP over IPv4"
assert_contains "$got" "src=127.0.0.7:" "the client's address"
assert_contains "$got" "dst=127.0.0.1:$t_py" "the listener's address"
assert_contains "$got" "ssl_client=7" "PP2_CLIENT_SSL, CERT_CONN and CERT_SESS"
assert_contains "$got" "ssl_verify=0" "a verified certificate"
assert_contains "$got" "ssl_0x21=TLSv1.3" "PP2_SUBTYPE_SSL_VERSION"
assert_contains "$got" "ssl_0x22=alice" "PP2_SUBTYPE_SSL_CN"
grep -qE '^ssl_0x23=TLS_(AES|CHACHA20)_' <<<"$got" || fail "PP2_SUBTYPE_SSL_CIPHER missing: $got"
assert_contains "$got" "0xe0=$alice_sha" "the custom TLV 0xE0: the certificate's SHA-256"
assert_contains "$got" "0xe1=alice" "the custom TLV 0xE1: the user (the CN without a second factor)"
assert_contains "$got" "data=hello" "the stream follows the header"
grep -q '^ok$' "$TEST_DIR/s_client.out" || fail "no answer through the tunnel: $(cat "$TEST_DIR/s_client.out")"

# Without proxy_protocol the target gets the stream alone.
printf 'hello\n' | timeout "$(scale 10)" openssl s_client -quiet -connect "127.0.0.1:$t_plain" \
    "${CLIENT_ARGS[@]}" >/dev/null 2>&1 || true
wait_for_log "$TEST_DIR/plain.out" "^--$" "$(scale 5)" || fail "the plain receiver got nothing"
assert_contains "$(cat "$TEST_DIR/plain.out")" "none first=b'hello" "no PROXY header without proxy_protocol"

# The key's refusals, at FILE:LINE.
bad="$TEST_DIR/bad.ini"
{
    global_section
    server_tunnel s1 "$(free_port)" 1 "proxy_protocol = v1"
    client_tunnel c1 "$(free_port)" 1 "proxy_protocol = v2"
    ini_section n1 "type = network" "mode = server" "listen = 127.0.0.1:$(free_port)" "address = 10.77.0.1/24" \
        "cert = $PKI/server.pem" "key = $PKI/server.key" "ca = $PKI/ca.pem" "proxy_protocol = v2"
    server_tunnel s2 "$(free_port)" 1 "proxy-protocol = v2"
} >"$bad"
check_error "$bad" \
    "$(at "$bad" "proxy_protocol = v1" s1 proxy_protocol)'v1' is not a PROXY protocol version \\(use none or v2\\)" \
    "\\[c1\\] proxy_protocol: only valid in server mode" \
    "$(at "$bad" "proxy_protocol = v2" c1 proxy_protocol)" \
    "\\[n1\\] proxy_protocol: a network tunnel has no target to send a PROXY header to" \
    "\\[s2\\] proxy-protocol: unknown key: \`proxy-protocol\` is ghostunnel's name; in ktlstun it is \`proxy_protocol\`"
