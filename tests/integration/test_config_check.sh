#!/usr/bin/env bash
# What `ktlstund -t`, `ktlstun check-config`, the daemon's start and a reload catch
# beyond parsing, each named as FILE:LINE: [section] key: reason and fix:
#   crl        a CA in `ca` without its CRL (whole-chain CRL checking refuses everyone)
#   ktls       ktls = require on a kernel without kernel TLS
#   cert       expired, not yet valid, expiring within expiry_warning (a warning),
#              leaf not first or chain out of order, an intermediate in `ca` but not
#              sent, extendedKeyUsage without the purpose the mode needs
#   user       user = X while not root (ktlstund: an error; ktlstun check-config run
#              by someone else than root: a warning, it cannot know how the daemon runs)
#   listen     more tunnels than the daemon holds, an address in use, a port below
#              1024 without the privilege to bind it
# The start refuses such a configuration, a reload keeps the running one, and -t
# accepts the running daemon's own listeners.
source "$(dirname "$0")/lib.sh"

port=$(free_port)
target=$(free_port)
mkdir -p "$TEST_DIR/conf"
global_args=()

# write_conf FILE ["KEY = VALUE"]...: [global] (global_args added) and the server
# tunnel [web], the arguments added to [web] as in server_tunnel.
write_conf() {
    local file=$1
    shift
    { global_section "${global_args[@]}"; server_tunnel web "$port" "$target" "$@"; } >"$file"
}
# ---- a good configuration: no problem, nothing printed on stderr
good="$TEST_DIR/conf/good.ini"
write_conf "$good" "crl = $PKI/crl.pem"
check_ok "$good"
[ -z "$ERR" ] || fail "the good configuration printed: $ERR"

# ---- crl: the root's CRL missing (crl-leaf.pem has the intermediate's only)
f="$TEST_DIR/conf/crl-noroot.ini"
write_conf "$f" "crl = $PKI/crl-leaf.pem"
check_error "$f" "$(at "$f" "crl = $PKI/crl-leaf.pem" web crl).*has no CRL from CN=ktlstun Test Root CA,O=ktlstun test"

# ---- crl: ca holds the intermediate too, crl only the root's list
cat "$PKI/ca.pem" "$PKI/intermediate.pem" >"$TEST_DIR/conf/ca-bundle.pem"
f="$TEST_DIR/conf/crl-nointermediate.ini"
write_conf "$f" "ca = $TEST_DIR/conf/ca-bundle.pem" "crl = $PKI/crl-root.pem"
check_error "$f" "$(at "$f" "crl = $PKI/crl-root.pem" web crl).*has no CRL from CN=ktlstun Test Intermediate CA,O=ktlstun test"
grep -q 'Root CA' <<<"$ERR" && fail "the root's CRL is there, but: $ERR"
f="$TEST_DIR/conf/crl-both.ini"
write_conf "$f" "ca = $TEST_DIR/conf/ca-bundle.pem" "crl = $PKI/crl.pem"
check_ok "$f"

# ---- ktls = require where the kernel has no tls ULP
f="$TEST_DIR/conf/ktls.ini"
write_conf "$f" "ktls = require"
if grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null; then
    note "this kernel offers kernel TLS: ktls = require must pass"
    check_ok "$f"
else
    check_error "$f" "$(at "$f" "ktls = require" web ktls).*set ktls = auto, or load the tls module / use a kernel with CONFIG_TLS"
fi

# ---- cert: expired, not yet valid, expiring soon
f="$TEST_DIR/conf/expired.ini"
write_conf "$f" "cert = $PKI/server-expired.pem" "key = $PKI/server-expired.key"
check_error "$f" "$(at "$f" "cert = $PKI/server-expired.pem" web cert).*expired on 2021-01-01"
f="$TEST_DIR/conf/notyet.ini"
write_conf "$f" "cert = $PKI/server-notyet.pem" "key = $PKI/server-notyet.key"
check_error "$f" "$(at "$f" "cert = $PKI/server-notyet.pem" web cert).*not valid before "
f="$TEST_DIR/conf/soon.ini"
write_conf "$f" "cert = $PKI/server-soon.pem" "key = $PKI/server-soon.key"
check_ok "$f" "$(at "$f" "cert = $PKI/server-soon.pem" web cert)warning: .*expires on .* \\(in (9|10) days\\), within expiry_warning"
global_args=("expiry_warning = 5d")
write_conf "$f" "cert = $PKI/server-soon.pem" "key = $PKI/server-soon.key"
check_ok "$f"
[ -z "$ERR" ] || fail "expiry_warning = 5d still warned about a certificate good for 9 days: $ERR"
global_args=()

# ---- cert: the chain in the file
#      intermediate first: the leaf must come first, and the key is not reported as a mismatch
cat "$PKI/intermediate.pem" "$PKI/server.crt" >"$TEST_DIR/conf/swapped.pem"
f="$TEST_DIR/conf/swapped.ini"
write_conf "$f" "cert = $TEST_DIR/conf/swapped.pem"
check_error "$f" "$(at "$f" "cert = $TEST_DIR/conf/swapped.pem" web cert).*leaf .*after a CA certificate: put the leaf first, then its intermediates"
grep -qi "mismatch" <<<"$ERR" && fail "OpenSSL's words for a swapped chain: $ERR"
#      leaf, root, intermediate: out of order
cat "$PKI/server.crt" "$PKI/ca.pem" "$PKI/intermediate.pem" >"$TEST_DIR/conf/disorder.pem"
f="$TEST_DIR/conf/disorder.ini"
write_conf "$f" "cert = $TEST_DIR/conf/disorder.pem"
check_error "$f" "$(at "$f" "cert = $TEST_DIR/conf/disorder.pem" web cert).*out of order"
#      leaf, intermediate, root: fine
cat "$PKI/server.pem" "$PKI/ca.pem" >"$TEST_DIR/conf/full-chain.pem"
f="$TEST_DIR/conf/full-chain.ini"
write_conf "$f" "cert = $TEST_DIR/conf/full-chain.pem"
check_ok "$f"
[ -z "$ERR" ] || fail "leaf, intermediate, root printed: $ERR"
#      the leaf alone, its intermediate in ca without the root: nothing can complete
#      the chain the daemon sends
f="$TEST_DIR/conf/nointermediate.ini"
write_conf "$f" "cert = $PKI/server.crt" "ca = $PKI/intermediate.pem"
check_error "$f" "$(at "$f" "cert = $PKI/server.crt" web cert).*lacks its intermediate CA \\(issuer CN=ktlstun Test Intermediate CA,O=ktlstun test\\): append it after the leaf"
#      the leaf alone, ca with the root and the intermediate: the daemon sends the
#      intermediate it found in ca
f="$TEST_DIR/conf/completed.ini"
write_conf "$f" "cert = $PKI/server.crt" "ca = $TEST_DIR/conf/ca-bundle.pem"
check_ok "$f"
[ -z "$ERR" ] || fail "a chain completed from ca printed: $ERR"
#      the leaf alone, issuer nowhere to be seen: a warning (it may be a root the
#      peers trust)
f="$TEST_DIR/conf/unknownissuer.ini"
write_conf "$f" "cert = $PKI/server.crt"
check_ok "$f" "$(at "$f" "cert = $PKI/server.crt" web cert)warning: .*issuer CN=ktlstun Test Intermediate CA,O=ktlstun test.*append"

# ---- cert: extendedKeyUsage and the mode
f="$TEST_DIR/conf/eku-server.ini"
write_conf "$f" "cert = $PKI/mallory.pem" "key = $PKI/mallory.key"
check_error "$f" "$(at "$f" "cert = $PKI/mallory.pem" web cert).*extendedKeyUsage lacks serverAuth"
f="$TEST_DIR/conf/eku-client.ini"
{
    global_section
    client_tunnel out "$port" "$target" "cert = $PKI/server.pem" "key = $PKI/server.key"
} >"$f"
check_error "$f" "$(at "$f" "cert = $PKI/server.pem" out cert).*extendedKeyUsage lacks clientAuth"
f="$TEST_DIR/conf/noeku.ini"
{
    global_section
    server_tunnel web "$port" "$target" "cert = $PKI/server-noeku.pem" "key = $PKI/server-noeku.key"
    client_tunnel out "$target" "$port" "cert = $PKI/server-noeku.pem" "key = $PKI/server-noeku.key"
} >"$f"
check_ok "$f"

# ---- listen: more tunnels than the daemon holds (unix listeners: no port each)
f="$TEST_DIR/conf/many.ini"
mkdir -p "$TEST_DIR/sockets"
# server_tunnel writes the first section; the others are its copies with the number
# changed (257 calls of it took seconds).
section=$(server_tunnel "t@N@" "unix:$TEST_DIR/sockets/@N@.sock" "$target")
{
    global_section
    for i in $(seq 1 257); do
        printf '%s\n\n' "${section//@N@/$i}"
    done
} >"$f"
check_error "$f" "^$(esc "$f"):$(line_of "$f" "[t257]"): \\[t257\\]: tunnel 257 of 257: .*at most 256 tunnels"
grep -q '\[t256\]' <<<"$ERR" && fail "tunnel 256 reported too: $ERR"

# ---- listen: an address another program holds
busy=$(free_port)
start_echo "127.0.0.1:$busy" "$TEST_DIR/busy.out"
f="$TEST_DIR/conf/busy.ini"
{ global_section; server_tunnel web "$busy" "$target"; } >"$f"
check_error "$f" "$(at "$f" "listen = 127.0.0.1:$busy" web listen).*127\\.0\\.0\\.1:$busy.*already in use"
[ -z "$(ss -Hltn "sport = :$port")" ] || fail "a check left a listener on $port"

# ---- the start refuses what -t refuses, with the same lines
for bad in crl-noroot nointermediate busy; do
    rc=0
    timeout "$(scale 20)" "$KTLSTUND" -f -c "$TEST_DIR/conf/$bad.ini" >"$TEST_DIR/start-$bad.log" 2>&1 || rc=$?
    assert_eq "$rc" 1 "ktlstund started with $bad.ini"
    run_check d "$TEST_DIR/conf/$bad.ini"
    while IFS= read -r line; do
        grep -qF -- "$line" "$TEST_DIR/start-$bad.log" || fail "start with $bad.ini did not log '$line': $(cat "$TEST_DIR/start-$bad.log")"
    done < <(grep -F ': [' <<<"$ERR")
    assert_log "$TEST_DIR/start-$bad.log" 'not starting' "start with $bad.ini says it does not start"
done
if ! grep -qw tls /proc/sys/net/ipv4/tcp_available_ulp 2>/dev/null; then
    rc=0
    timeout "$(scale 20)" "$KTLSTUND" -f -c "$TEST_DIR/conf/ktls.ini" >"$TEST_DIR/start-ktls.log" 2>&1 || rc=$?
    assert_eq "$rc" 1 "ktlstund started with ktls = require on a kernel without kernel TLS"
    assert_log "$TEST_DIR/start-ktls.log" 'error: .*\[web\] ktls: .*set ktls = auto' "start refusal for ktls = require"
fi

# ---- a running daemon: -t accepts the listeners it holds; a reload that fails a
#      check is refused and the running configuration keeps serving
echo_port=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
conf="$TEST_DIR/conf/running.ini"
{ global_section; server_tunnel web "$port" "$echo_port" "crl = $PKI/crl.pem"; } >"$conf"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID
client_args alice
tls_echo "127.0.0.1:$port" "before-$RANDOM" "$TEST_DIR/e1.out" "${CLIENT_ARGS[@]}" || fail "no echo before the reloads"
check_ok "$conf"
[ -z "$ERR" ] || fail "-t beside the running daemon printed: $ERR"

cp "$conf" "$TEST_DIR/conf/running.good"
{ global_section; server_tunnel web "$port" "$echo_port" "crl = $PKI/crl-leaf.pem"; } >"$conf"
assert_eq "$(reload "$pid" "$log")" refused "reload with the root's CRL missing"
assert_log "$log" "error: $(esc "$conf"):$(line_of "$conf" "crl = $PKI/crl-leaf.pem"): \\[web\\] crl: .*has no CRL from CN=ktlstun Test Root CA" \
    "the reload's refusal names the missing CRL"
tls_echo "127.0.0.1:$port" "after-crl-$RANDOM" "$TEST_DIR/e2.out" "${CLIENT_ARGS[@]}" || fail "no echo after the refused CRL reload"

{
    global_section
    server_tunnel web "$port" "$echo_port" "crl = $PKI/crl.pem"
    server_tunnel web2 "$busy" "$echo_port"
} >"$conf"
assert_eq "$(reload "$pid" "$log")" refused "reload with a listen address in use"
assert_log "$log" "error: $(esc "$conf"):$(line_of "$conf" "listen = 127.0.0.1:$busy"): \\[web2\\] listen: .*already in use" \
    "the reload's refusal names the address in use"
tls_echo "127.0.0.1:$port" "after-busy-$RANDOM" "$TEST_DIR/e3.out" "${CLIENT_ARGS[@]}" || fail "no echo after the refused listen reload"

cp "$TEST_DIR/conf/running.good" "$conf"
assert_eq "$(reload "$pid" "$log")" reloaded "reload back to the good configuration"
tls_echo "127.0.0.1:$port" "after-good-$RANDOM" "$TEST_DIR/e4.out" "${CLIENT_ARGS[@]}" || fail "no echo after the good reload"
stop_ktlstund "$pid"

# ---- not root: user = X, and ports below 1024. The files live where nobody can read.
unpriv=$(mktemp -d /tmp/ktlstun-config-check.XXXXXX)
trap 'rc=$?; rm -rf "$unpriv"; (exit $rc); cleanup' EXIT
chmod 0755 "$unpriv"
cp "$PKI"/server.pem "$PKI"/server.key "$PKI"/ca.pem "$unpriv/"
chmod 0644 "$unpriv"/*
mkdir -m 0777 "$unpriv/state" "$unpriv/run"
unpriv_conf() {  # FILE LISTEN ["KEY = VALUE" for [global]]...
    local file=$1 listen=$2
    shift 2
    {
        global_section "state_dir = $unpriv/state" "runtime_dir = $unpriv/run" "$@"
        server_tunnel web "$listen" "$target" "cert = $unpriv/server.pem" "key = $unpriv/server.key" "ca = $unpriv/ca.pem"
    } >"$file"
    chmod 0644 "$file"
}
AS=nobody
f="$unpriv/user.ini"
unpriv_conf "$f" "$port" "user = daemon"
run_check d "$f"
assert_eq "$RC" 1 "ktlstund -t as nobody with user = daemon"
grep -qE "$(at "$f" "user = daemon" global user).*user = daemon needs ktlstund started as root; under the systemd unit, set User= in the unit instead and remove user/group" <<<"$ERR" ||
    fail "ktlstund -t as nobody with user = daemon: $ERR"
run_check c "$f"
assert_eq "$RC" 0 "ktlstun check-config as nobody with user = daemon"
grep -qE "$(at "$f" "user = daemon" global user)warning: user = daemon needs ktlstund started as root" <<<"$ERR" ||
    fail "ktlstun check-config as nobody with user = daemon: $ERR"
f="$unpriv/user-self.ini"
unpriv_conf "$f" "$port" "user = nobody"
run_check d "$f"
assert_eq "$RC" 0 "ktlstund -t as nobody with user = nobody ($ERR)"

# the start as nobody with user = daemon refuses at once (no crash loop)
rc=0
timeout "$(scale 20)" setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
    "$KTLSTUND" -f -c "$unpriv/user.ini" >"$TEST_DIR/start-user.log" 2>&1 || rc=$?
assert_eq "$rc" 1 "ktlstund as nobody with user = daemon"
assert_log "$TEST_DIR/start-user.log" 'error: .*\[global\] user: user = daemon needs ktlstund started as root' \
    "the start as nobody names user = daemon"

# a daemon runs (as root) that nobody may ask: its addresses may be its own, so an
# address in use is only a warning
f="$unpriv/running.ini"
unpriv_conf "$f" "$port"
AS=
start_ktlstund "$f" "$TEST_DIR/unpriv-daemon.log"
unpriv_pid=$KTLSTUND_PID
run_check d "$f"
assert_eq "$RC" 0 "ktlstund -t as root beside the daemon it may ask ($ERR)"
[ -z "$ERR" ] || fail "ktlstund -t as root beside the running daemon printed: $ERR"
AS=nobody
for tool in d c; do
    run_check "$tool" "$f"
    assert_eq "$RC" 0 "check ($tool) as nobody beside a daemon it may not ask ($ERR)"
    grep -qE "$(at "$f" "listen = 127.0.0.1:$port" web listen)warning: .*perhaps by the running ktlstund, which this user may not ask" <<<"$ERR" ||
        fail "check ($tool) as nobody beside a daemon it may not ask: $ERR"
done
stop_ktlstund "$unpriv_pid"

low=
for p in 1020 1021 1022 1019 1018; do
    [ -z "$(ss -Htan "sport = :$p")" ] && { low=$p; break; }
done
if [ -n "$low" ] && [ "$(cat /proc/sys/net/ipv4/ip_unprivileged_port_start 2>/dev/null || echo 1024)" -gt "$low" ]; then
    f="$unpriv/low.ini"
    unpriv_conf "$f" "$low"
    run_check d "$f"
    assert_eq "$RC" 1 "ktlstund -t as nobody with listen port $low"
    grep -qE "$(at "$f" "listen = 127.0.0.1:$low" web listen).*use the socket unit \\(listen = systemd:NAME\\) or CAP_NET_BIND_SERVICE" <<<"$ERR" ||
        fail "ktlstund -t as nobody with listen port $low: $ERR"
    run_check c "$f"
    assert_eq "$RC" 0 "ktlstun check-config as nobody with listen port $low ($ERR)"
    grep -qE "$(at "$f" "listen = 127.0.0.1:$low" web listen)warning: .*CAP_NET_BIND_SERVICE" <<<"$ERR" ||
        fail "ktlstun check-config as nobody with listen port $low: $ERR"
    AS=
    run_check d "$f"
    assert_eq "$RC" 0 "ktlstund -t as root with listen port $low ($ERR)"
else
    note "no free port below 1024 that needs privilege: that case is skipped"
fi
AS=

note "config checks ok"
