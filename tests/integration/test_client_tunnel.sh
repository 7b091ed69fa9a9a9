#!/usr/bin/env bash
# Client tunnels to openssl s_server, which demands and verifies a client certificate
# (-Verify 1): data goes through; the server's chain and name are verified (default
# server_name = the target host, an IP here, and an explicit DNS name); a server whose
# certificate does not match, is not for server authentication, or comes from an
# unknown CA is refused.
source "$(dirname "$0")/lib.sh"

s_good=$(free_port)
s_wrong=$(free_port)
s_noeku=$(free_port)
s_stranger=$(free_port)
c_ip=$(free_port)
c_dns=$(free_port)
c_wrong=$(free_port)
c_wrong_dns=$(free_port)
c_noeku=$(free_port)
c_stranger=$(free_port)

# s_server NAME PORT CERT: -rev answers each line reversed. CERT.pem holds its chain.
s_server() {
    spawn "$TEST_DIR/s_server-$1.out" openssl s_server -accept "127.0.0.1:$2" \
        -cert "$PKI/$3.crt" -key "$PKI/$3.key" -cert_chain "$PKI/$3.pem" \
        -CAfile "$PKI/ca.pem" -Verify 1 -verify_return_error -rev
    wait_listening "$2" || fail "openssl s_server $1 did not listen"
}
s_server good "$s_good" server
s_server wrong "$s_wrong" server-wrongsan
s_server noeku "$s_noeku" mallory
s_server stranger "$s_stranger" unknownca

conf="$TEST_DIR/ktlstund.ini"
{
    global_section
    client_tunnel to-ip "$c_ip" "$s_good" "server_name ="   # the default: the target's address
    client_tunnel to-dns "$c_dns" "$s_good"
    client_tunnel to-wrong "$c_wrong" "$s_wrong" "server_name ="
    client_tunnel to-wrong-dns "$c_wrong_dns" "$s_wrong"
    client_tunnel to-noeku "$c_noeku" "$s_noeku"
    client_tunnel to-stranger "$c_stranger" "$s_stranger"
} >"$conf"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID

# through PORT TEXT: sends TEXT through the client tunnel; prints what came back.
through() {
    printf '%s\n' "$2" | timeout "$(scale 10)" socat -t "$(scale 5)" - "TCP:127.0.0.1:$1" 2>/dev/null || true
}

server_sha=$(cat "$PKI/server.sha256")

out=$(through "$c_ip" "hello-ip")
assert_eq "$out" "pi-olleh" "reply through [to-ip] (server_name defaults to the target IP)"
assert_log "$log" 'info: audit tunnel=to-ip ' "no audit line for [to-ip]"
line=$(audit_lines "$log" to-ip | tail -n 1)
assert_eq "$(audit_field "$line" sha256)" "$server_sha" "client tunnel audit names the server's certificate"
assert_eq "$(audit_field "$line" subject)" "CN=localhost,O=ktlstun test" "client tunnel audit subject"
assert_eq "$(audit_field "$line" bytes_in)" 9 "client tunnel audit bytes_in (from the plain client)"
assert_eq "$(audit_field "$line" bytes_out)" 9 "client tunnel audit bytes_out"
grep -q 'Peer certificate: .*CN = alice' "$TEST_DIR/s_server-good.out" \
    || fail "s_server did not get alice's certificate: $(cat "$TEST_DIR/s_server-good.out")"

out=$(through "$c_dns" "hello-dns")
assert_eq "$out" "snd-olleh" "reply through [to-dns] (server_name = localhost)"
assert_log "$log" 'info: audit tunnel=to-dns ' "no audit line for [to-dns]"

for name in to-wrong to-wrong-dns; do
    p=$c_wrong
    [ "$name" = to-wrong-dns ] && p=$c_wrong_dns
    out=$(through "$p" "secret")
    assert_eq "$out" "" "[$name] relayed to a server whose certificate does not match"
    assert_log "$log" "warning: refused tunnel=$name peer=127\\.0\\.0\\.1:[0-9]+ reason=\"[^\"]*does not match server_name" \
        "[$name]: SAN mismatch not refused with its reason"
    [ -z "$(audit_lines "$log" "$name")" ] || fail "[$name] wrote an audit line for a refused server"
done
grep -q 'terces' "$TEST_DIR/s_server-wrong.out" && fail "s_server with the wrong SAN received data"

out=$(through "$c_noeku" "secret")
assert_eq "$out" "" "[to-noeku] relayed to a server whose certificate lacks serverAuth"
assert_log "$log" 'warning: refused tunnel=to-noeku peer=127\.0\.0\.1:[0-9]+ reason="[^"]*not allowed for server authentication' \
    "[to-noeku]: clientAuth-only server certificate not refused with its reason"

out=$(through "$c_stranger" "secret")
assert_eq "$out" "" "[to-stranger] relayed to a server whose certificate comes from an unknown CA"
assert_log "$log" 'warning: refused tunnel=to-stranger peer=127\.0\.0\.1:[0-9]+ reason="[^"]*unknown CA: issuer CN=Unknown Root CA' \
    "[to-stranger]: server certificate from an unknown CA not refused with its reason"

stop_ktlstund "$pid"
note "client tunnels ok"
