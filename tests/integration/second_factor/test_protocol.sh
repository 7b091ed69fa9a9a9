#!/usr/bin/env bash
# Second factor, the login channel against a hostile client (openssl s_client with
# ALPN ktlstun-auth/1 sending raw bytes): an oversized frame, an unknown type, an
# answer without a prompt, a malformed START and a silent client each end with a
# PROTOCOL_ERROR result frame and a closed connection, nothing reaches PAM, and the
# daemon keeps serving logins and data. Other ALPN values are data connections. A PAM
# helper that dies is replaced (with fresh workers), and grants outlive it.
source "$(dirname "$0")/lib.sh"

sf_alice_vpn "handshake_timeout = 2s"
conf=$SF_CONF vpn=$SF_VPN
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"

# raw NAME BYTES: sends BYTES (printf format) on the login channel; the server's
# answer (raw) in $TEST_DIR/NAME.raw, its hex in RAW_HEX.
raw() {
    local name=$1 bytes=$2
    printf "$bytes" | timeout "$(scale 10)" openssl s_client -connect "$vpn" \
        -alpn ktlstun-auth/1 -quiet -CAfile "$PKI/ca.pem" -cert "$TEST_DIR/alice.pem" \
        -key "$TEST_DIR/user.key" >"$TEST_DIR/$name.raw" 2>"$TEST_DIR/$name.err" || true
    RAW_HEX=$(od -An -tx1 -v "$TEST_DIR/$name.raw" | tr -d ' \n')
}

# expect_protocol_error NAME BYTES TEXT: one RESULT frame, status 7, saying TEXT.
expect_protocol_error() {
    raw "$1" "$2"
    case $RAW_HEX in
        20????07*) ;;
        *) fail "$1: no PROTOCOL_ERROR result frame, got '${RAW_HEX:0:40}' ($(cat "$TEST_DIR/$1.err"))" ;;
    esac
    grep -qaF -- "$3" "$TEST_DIR/$1.raw" || fail "$1: result does not say '$3'"
    assert_log "$log" "close=\"login: protocol error: $3\"" "$1 logged"
}

note "oversized, unknown, out of turn, malformed"
expect_protocol_error oversized '\x02\xff\xff' "frame too large"
expect_protocol_error just_over '\x01\x04\x01' "frame too large"
expect_protocol_error garbage 'GET / HTTP/1.1\r\n\r\n' "unexpected frame type"
expect_protocol_error server_type '\x20\x00\x00' "unexpected frame type"
expect_protocol_error early_answer '\x02\x00\x06123456' "ANSWER without a prompt"
expect_protocol_error fat_start '\x01\x00\x01x' "malformed frame"
expect_protocol_error nul_answer '\x01\x00\x00\x02\x00\x03a\x00b' "malformed frame"

note "a client that says nothing is cut off at handshake_timeout"
t0=$(now_ms)
raw silent ''
took=$(($(now_ms) - t0))
case $RAW_HEX in 20????07*) ;; *) fail "silent client: no result frame ($RAW_HEX)" ;; esac
grep -qaF "no login attempt began in time" "$TEST_DIR/silent.raw" || fail "silent client: wrong reason"
[ "$took" -ge 1500 ] || fail "silent client cut off after $took ms, before handshake_timeout"

note "none of that reached PAM, and the daemon still serves logins and data"
assert_no_log "$log" "second-factor (failure|success)" "protocol garbage reached PAM"
sf_expect_login "$conf" c-alice "$(sf_hotp 0)" 0 "Access granted" "login after the garbage"
sf_data "$vpn" alice "after-garbage-$RANDOM" || fail "no data after the garbage"

note "a data client offering other protocols by ALPN is a data connection"
tls_echo "$vpn" "alpn-h2-$RANDOM" "$TEST_DIR/alpn.out" -alpn h2,http/1.1 \
    -CAfile "$PKI/ca.pem" -cert "$TEST_DIR/alice.pem" -key "$TEST_DIR/user.key" ||
    fail "an ALPN data connection was not relayed"
assert_no_log "$log" 'second factor helper .* (exited|killed)' "the PAM helper died"

note "the PAM helper is killed: restarted, grants kept, logins work again"
helper=$(pgrep -P "$KTLSTUND_PID" -x ktlstund-pam) || fail "no PAM helper process (ktlstund-pam)"
kill -KILL "$helper"
assert_log "$log" "second factor helper $helper killed by signal 9" "helper death logged"
assert_log "$log" 'second factor helper restarted \(pid [0-9]+\)' "helper restarted"
new_helper=$(pgrep -P "$KTLSTUND_PID" -x ktlstund-pam) || fail "no new PAM helper"
[ "$new_helper" != "$helper" ] || fail "the helper was not replaced"
sf_data "$vpn" alice "grant-kept-$RANDOM" || fail "the grant did not survive the helper"
sf_expect_login "$conf" c-alice "$(sf_hotp 1)" 0 "Access granted" "login through the new helper"
stop_ktlstund "$KTLSTUND_PID"
