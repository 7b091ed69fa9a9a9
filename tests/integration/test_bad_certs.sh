#!/usr/bin/env bash
# The bad-certificate matrix: each bad client certificate (openssl s_client) is refused
# with its own reason in the log, gets no echo, writes no audit line, and never makes
# the daemon connect the backend. Allow rules and pins likewise, each next to a
# positive control (alice) on the same tunnel so that a tunnel refusing everyone fails.
source "$(dirname "$0")/lib.sh"

echo_port=$(free_port)
p_plain=$(free_port)
p_pinned=$(free_port)
p_cn=$(free_port)
p_ou=$(free_port)
p_uri=$(free_port)
p_email=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"

tunnel() {  # NAME PORT [extra lines...]
    server_tunnel "$1" "$2" "$echo_port" "crl = $PKI/crl.pem" "${@:3}"
}
conf="$TEST_DIR/ktlstund.ini"
{
    global_section
    tunnel plain "$p_plain"
    tunnel pinned "$p_pinned" "pin_sha256 = $(cat "$PKI/alice.spki")"
    tunnel allowcn "$p_cn" "allow_cn = alice, bob"
    tunnel allowou "$p_ou" "allow_ou = eng"
    tunnel allowuri "$p_uri" "allow_uri = spiffe://example.com/*"
    tunnel allowemail "$p_email" "allow_email = alice@example.com"
} >"$conf"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID

accepted() { grep -c '^accepted ' "$TEST_DIR/echo.out" || true; }
audits() { grep -c 'info: audit ' "$log" || true; }
checked=0

# good TUNNEL PORT NAME: NAME's certificate gets its echo through TUNNEL.
good() {
    local tunnel=$1 port=$2 name=$3 token="ok-$3-$RANDOM" before
    before=$(audits)
    client_args "$name"
    tls_echo "127.0.0.1:$port" "$token" "$TEST_DIR/good-$tunnel-$name.out" "${CLIENT_ARGS[@]}" \
        || fail "[$tunnel] refused $name (positive control): $(tail -n 3 "$TEST_DIR/good-$tunnel-$name.out.err"; grep -E "refused tunnel=$tunnel " "$log" | tail -n 1)"
    wait_for_log "$log" 'info: audit ' 5 $((before + 1)) || fail "[$tunnel] no audit line for $name"
}

# bad TUNNEL PORT NAME REASON_FIXED_STRING [s_client args...]: NAME (or no certificate
# when NAME is "-") is refused with REASON, with nothing reaching the backend.
bad() {
    local tunnel=$1 port=$2 name=$3 reason=$4 token="bad-$3-$RANDOM" re before_acc before_audit before_lines
    shift 4
    re="warning: refused tunnel=$tunnel peer=127\\.0\\.0\\.1:[0-9]+ reason=\"[^\"]*$(sed 's/[][\.*^$/+?(){}|]/\\&/g' <<<"$reason")"
    before_acc=$(accepted)
    before_audit=$(audits)
    before_lines=$(log_count "$log" "$re")
    if [ "$name" = - ]; then
        client_args
    else
        client_args "$name"
    fi
    if tls_echo "127.0.0.1:$port" "$token" "$TEST_DIR/bad-$tunnel-$name.out" "${CLIENT_ARGS[@]}" "$@"; then
        fail "[$tunnel] relayed for $name (expected refusal: $reason)"
    fi
    wait_for_log "$log" "$re" 5 $((before_lines + 1)) \
        || fail "[$tunnel] $name: no refusal with reason '$reason'; last refusals: $(grep 'refused' "$log" | tail -n 2)"
    sleep 0.2   # a daemon that connects the backend anyway would have done so by now
    assert_eq "$(accepted)" "$before_acc" "[$tunnel] $name: connections that reached the backend"
    assert_eq "$(audits)" "$before_audit" "[$tunnel] $name: audit lines written for a refused peer"
    checked=$((checked + 1))
}

weak=(-cipher 'DEFAULT:@SECLEVEL=0')   # lets s_client present SHA-1 / RSA-1024 certificates

good plain "$p_plain" alice
good plain "$p_plain" mallory
bad plain "$p_plain" expired      "certificate expired on"
bad plain "$p_plain" notyet       "certificate not valid before"
bad plain "$p_plain" unknownca    "unknown CA: issuer"
bad plain "$p_plain" selfsigned   "self-signed certificate is not trusted"
bad plain "$p_plain" revoked      "revoked (CRL "
bad plain "$p_plain" -            "no client certificate"
bad plain "$p_plain" noclientauth "not allowed for client authentication"
bad plain "$p_plain" sha1         "weak signature digest (SHA-1)" "${weak[@]}"
bad plain "$p_plain" rsa1024      "key too small (RSA 1024 bits)" "${weak[@]}"
bad plain "$p_plain" caleaf       "certificate is a CA certificate (basicConstraints CA:TRUE), not a leaf (CN=Rogue Issuing CA)"
bad plain "$p_plain" twocn        "certificate has 2 commonName attributes; ktlstun accepts one (CN=mallory,CN=alice,O=ktlstun test)"
# TLS 1.2 path too: the same verification must apply
bad plain "$p_plain" expired      "certificate expired on" -tls1_2
bad plain "$p_plain" -            "no client certificate" -tls1_2

# Reasons name the certificate, and the times are the certificate's own.
line=$(grep -E 'refused tunnel=plain .*certificate expired on' "$log" | head -n 1)
assert_contains "$line" "certificate expired on 2021-01-01 00:00:00 UTC" "expiry date in the reason"
assert_contains "$line" "CN=expired" "expired certificate named in the reason"
line=$(grep -E 'refused tunnel=plain .*revoked \(CRL ' "$log" | head -n 1)
assert_contains "$line" "revoked (CRL $PKI/crl.pem)" "CRL path in the reason"
assert_contains "$line" "CN=revoked" "revoked certificate named in the reason"

good pinned "$p_pinned" alice
bad pinned "$p_pinned" mallory "public key pin mismatch (pin_sha256)"

good allowcn "$p_cn" alice
bad allowcn "$p_cn" mallory "CN=mallory not in allow_cn"
# allow_cn would match the first CN (alice) while the logs lead with the last (mallory).
bad allowcn "$p_cn" twocn "certificate has 2 commonName attributes; ktlstun accepts one"

good allowou "$p_ou" alice
bad allowou "$p_ou" mallory "allow_ou"

good allowuri "$p_uri" alice
bad allowuri "$p_uri" mallory "allow_uri"

good allowemail "$p_email" alice
bad allowemail "$p_email" mallory "allow_email"

# Only the positive controls ever reached the backend.
assert_eq "$(accepted)" 7 "backend connections (one per positive control)"
assert_eq "$(grep -c 'warning: refused ' "$log")" "$checked" "refusal lines (one per refused connection)"

stop_ktlstund "$pid"
note "$checked refusals checked"
