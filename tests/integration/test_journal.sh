#!/usr/bin/env bash
# Under systemd (stderr is the journal's stream), refusals and audit records reach the
# journal with their MESSAGE_ID and structured fields. journald is played by a datagram
# socket at /run/systemd/journal/socket inside a private mount namespace.
source "$(dirname "$0")/lib.sh"

command -v unshare >/dev/null || fail "unshare (util-linux) is needed"
echo_port=$(free_port)
port=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
conf="$TEST_DIR/ktlstund.ini"
{ global_section; server_tunnel echo "$port" "$echo_port"; } >"$conf"

start_ktlstund_with_journal "$conf"
journal="$TEST_DIR/journal.out"

client_args alice
tls_echo "127.0.0.1:$port" "journal-$RANDOM" "$TEST_DIR/s.out" "${CLIENT_ARGS[@]}" || fail "no echo"
client_args mallory
openssl s_client -connect "127.0.0.1:$port" -CAfile "$PKI/ca.pem" </dev/null >/dev/null 2>&1 || true
assert_log "$journal" 'MESSAGE_ID=a6e522309f92496aaa02a7bb260033fb' "no audit record in the journal"
assert_log "$journal" 'MESSAGE_ID=7b7e7391851943809458bcee715856ca' "no refusal record in the journal"
stop_ktlstund_with_journal

# Each datagram is one line: "MS FIELD=...|FIELD=...|"; make every field start with '|'.
audit="|$(grep 'MESSAGE_ID=a6e522309f92496aaa02a7bb260033fb' "$journal" | head -n 1 | cut -d' ' -f2-)"
for field in "PRIORITY=6" "SYSLOG_IDENTIFIER=ktlstund" "TUNNEL=echo" "PEER=127.0.0.1:" \
    "PEER_ID=CN=alice,OU=eng,O=ktlstun test" "PEER_SHA256=$(cat "$PKI/alice.sha256")" \
    "TLS_VERSION=TLSv1.3" "KTLS=off" "CLOSE_REASON=closed by both sides" "MESSAGE=audit tunnel=echo "; do
    assert_contains "$audit" "|$field" "audit journal field"
done
refusal="|$(grep 'MESSAGE_ID=7b7e7391851943809458bcee715856ca' "$journal" | head -n 1 | cut -d' ' -f2-)"
assert_contains "$refusal" "|PRIORITY=4" "refusal priority"
assert_contains "$refusal" "|REASON=no client certificate" "refusal reason field"
# Nothing but the early start-up lines went to plain stderr.
assert_no_log "$TEST_DIR/stderr.log" 'audit tunnel=' "audit record also written to stderr"
