#!/usr/bin/env bash
# make demo: a throwaway PKI, a backend, a ktlstun server tunnel and client tunnel on
# loopback, traffic through them, the daemon's log, then everything cleaned up.
set -euo pipefail
build_dir=${1:-build}
ktlstund=$(realpath "$build_dir/ktlstund")
work=$(mktemp -d /tmp/ktlstun-demo.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

free_port() {
    local port
    while :; do
        port=$((20000 + RANDOM % 40000))
        ss -Hltn "sport = :$port" | grep -q . || { echo "$port"; return; }
    done
}
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "1. A throwaway PKI: root CA -> server certificate and client certificate (EC P-256)"
ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ec ca.key
openssl req -x509 -new -key ca.key -out ca.pem -days 1 -subj "/CN=ktlstun demo CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
leaf() {  # name subject extensions
    ec "$1.key"
    openssl req -new -key "$1.key" -subj "$2" -out "$1.csr"
    printf '%s\n' "$3" > "$1.ext"
    openssl x509 -req -in "$1.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 1 \
        -extfile "$1.ext" -out "$1.pem" 2>/dev/null
}
leaf server "/CN=gateway.example" "subjectAltName=DNS:localhost,IP:127.0.0.1
extendedKeyUsage=serverAuth"
leaf alice "/CN=alice/OU=engineering" "subjectAltName=email:alice@example.com
extendedKeyUsage=clientAuth"
ls -1 *.pem

backend_port=$(free_port) server_port=$(free_port) client_port=$(free_port)
sum_port=$(free_port) sum_server_port=$(free_port)
step "2. Two plain-TCP backends (socat): an HTTP responder and a SHA-256 service"
cat > http-backend.sh <<'SH'
#!/bin/sh
read -r method path _
printf 'HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello from the backend, you asked for %s\n' "$path"
SH
chmod +x http-backend.sh
socat TCP-LISTEN:"$backend_port",bind=127.0.0.1,reuseaddr,fork EXEC:./http-backend.sh &
pids+=($!)
# Reads until the client half-closes, then answers with the checksum of what arrived.
socat TCP-LISTEN:"$sum_port",bind=127.0.0.1,reuseaddr,fork SYSTEM:'sha256sum | cut -c1-64' &
pids+=($!)

step "3. ktlstun.ini: server tunnels (mTLS in front of each backend) and a client tunnel"
cat > ktlstun.ini <<INI
[global]
workers = 2

[intranet]
mode = server
listen = 127.0.0.1:$server_port
target = 127.0.0.1:$backend_port
cert = server.pem
key = server.key
ca = ca.pem
allow_cn = alice

[checksum]
mode = server
listen = 127.0.0.1:$sum_server_port
target = 127.0.0.1:$sum_port
cert = server.pem
key = server.key
ca = ca.pem

[to-checksum]
mode = client
listen = 127.0.0.1:$client_port
target = 127.0.0.1:$sum_server_port
server_name = localhost
cert = alice.pem
key = alice.key
ca = ca.pem
INI
cat ktlstun.ini
"$ktlstund" -t -c ktlstun.ini

step "4. Start ktlstund in the foreground (its log is shown at the end)"
"$ktlstund" -f -c ktlstun.ini 2> ktlstund.log &
pids+=($!)
for _ in $(seq 50); do grep -q "ready" ktlstund.log && break; sleep 0.1; done
cat ktlstund.log

step "5. curl speaking mTLS to the intranet tunnel with alice's certificate"
curl -sS --max-time 5 --cacert ca.pem --cert alice.pem --key alice.key \
    "https://localhost:$server_port/direct-mtls"

step "6. The same without a client certificate: refused"
curl -sS --max-time 5 --cacert ca.pem "https://localhost:$server_port/" || echo "(curl failed, as it should)"

step "7. 20 MB of plain TCP into the client tunnel -> mTLS -> checksum tunnel -> backend"
head -c 20000000 /dev/urandom > payload
echo "sent:     $(sha256sum payload | cut -c1-64)"
echo "received: $(timeout 30 socat -t10 - TCP:127.0.0.1:"$client_port" < payload)"

sleep 0.5
step "8. What ktlstund logged: one audit line per tunnelled connection, one line per refusal"
cat ktlstund.log
kill -TERM "${pids[2]}"
wait "${pids[2]}" 2>/dev/null || true
echo
echo "demo finished; everything under $work is removed."
