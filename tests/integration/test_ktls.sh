#!/usr/bin/env bash
# ktls = require | auto | off. Without kernel TLS (this host's kernel has no tls ULP),
# the daemon refuses to start with require; started all the same (the kernel's ULP list
# faked to name tls, so the offload itself fails), require refuses every connection
# with its reason and never reaches the target, in both modes; auto and off relay in
# userspace and say ktls=off in the audit line. With kernel TLS, require and auto must
# say ktls=on.
source "$(dirname "$0")/lib.sh"

echo_port=$(free_port)
p_req=$(free_port)
p_auto=$(free_port)
p_off=$(free_port)
p_req_client=$(free_port)
p_auto_client=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"

conf="$TEST_DIR/ktlstund.ini"
{
    global_section
    server_tunnel req "$p_req" "$echo_port" "ktls = require"
    server_tunnel auto "$p_auto" "$echo_port" "ktls = auto"
    server_tunnel off "$p_off" "$echo_port" "ktls = off"
    client_tunnel req-client "$p_req_client" "$p_off" "ktls = require"
    client_tunnel auto-client "$p_auto_client" "$p_off" "ktls = auto"
} >"$conf"
log="$TEST_DIR/ktlstund.log"
if kernel_has_ktls; then
    start_ktlstund "$conf" "$log"
else
    rc=0
    timeout "$(scale 20)" "$KTLSTUND" -c "$conf" -f >"$TEST_DIR/refused.log" 2>&1 </dev/null || rc=$?
    assert_eq "$rc" 1 "ktlstund with ktls = require on a kernel without kernel TLS"
    for tunnel in req req-client; do
        assert_log "$TEST_DIR/refused.log" "error: .*\\[$tunnel\\] ktls: require, but this kernel cannot offload TLS" \
            "the refused start names [$tunnel]"
    done
    # What a connection meets when the offload fails after all (a cipher the kernel
    # lacks, a module gone): the daemon started in a mount namespace of its own where
    # the kernel's ULP list names tls.
    printf '%s tls\n' "$(cat /proc/sys/net/ipv4/tcp_available_ulp)" >"$TEST_DIR/ulps"
    cat >"$TEST_DIR/fake-ulp-ktlstund" <<WRAPPER
#!/bin/sh
exec unshare -m sh -c 'mount --bind "\$0" /proc/sys/net/ipv4/tcp_available_ulp && exec "\$@"' \\
    "$TEST_DIR/ulps" "$KTLSTUND" "\$@"
WRAPPER
    chmod +x "$TEST_DIR/fake-ulp-ktlstund"
    KTLSTUND="$TEST_DIR/fake-ulp-ktlstund" start_ktlstund "$conf" "$log"
fi
pid=$KTLSTUND_PID
client_args alice
accepted() { grep -c '^accepted ' "$TEST_DIR/echo.out" || true; }

if kernel_has_ktls; then
    note "kernel TLS available: require and auto must use it"
    on=on
else
    note "kernel TLS not available: require must refuse"
    on=off
fi

# off: userspace, always
tls_echo "127.0.0.1:$p_off" "off-$RANDOM" "$TEST_DIR/off.out" "${CLIENT_ARGS[@]}" || fail "ktls = off did not relay"
assert_log "$log" 'info: audit tunnel=off ' "no audit line for [off]"
assert_eq "$(audit_field "$(audit_lines "$log" off | tail -n 1)" ktls)" off "[off] audit ktls"

# auto: relays either way
tls_echo "127.0.0.1:$p_auto" "auto-$RANDOM" "$TEST_DIR/auto.out" "${CLIENT_ARGS[@]}" || fail "ktls = auto did not relay"
assert_log "$log" 'info: audit tunnel=auto ' "no audit line for [auto]"
assert_eq "$(audit_field "$(audit_lines "$log" auto | tail -n 1)" ktls)" "$on" "[auto] audit ktls"

out=$(printf 'auto-client\n' | timeout "$(scale 10)" socat -t "$(scale 5)" - "TCP:127.0.0.1:$p_auto_client" 2>/dev/null || true)
assert_eq "$out" "auto-client" "reply through [auto-client]"
assert_log "$log" 'info: audit tunnel=auto-client ' "no audit line for [auto-client]"
assert_eq "$(audit_field "$(audit_lines "$log" auto-client | tail -n 1)" ktls)" "$on" "[auto-client] audit ktls"

# require
before=$(accepted)
if [ "$on" = on ]; then
    tls_echo "127.0.0.1:$p_req" "req-$RANDOM" "$TEST_DIR/req.out" "${CLIENT_ARGS[@]}" || fail "ktls = require did not relay on a kTLS kernel"
    assert_log "$log" 'info: audit tunnel=req ' "no audit line for [req]"
    assert_eq "$(audit_field "$(audit_lines "$log" req | tail -n 1)" ktls)" on "[req] audit ktls"
else
    reason='reason="ktls = require but kernel TLS offload is not available'
    if tls_echo "127.0.0.1:$p_req" "req-$RANDOM" "$TEST_DIR/req.out" "${CLIENT_ARGS[@]}"; then
        fail "ktls = require relayed without kernel TLS"
    fi
    assert_log "$log" "warning: refused tunnel=req peer=127\\.0\\.0\\.1:[0-9]+ $reason" "[req] refusal reason"
    sleep 0.2
    assert_eq "$(accepted)" "$before" "[req] connections that reached the backend"
    [ -z "$(audit_lines "$log" req)" ] || fail "[req] wrote an audit line for a refused connection"

    # a second connection is refused too (not only the first)
    if tls_echo "127.0.0.1:$p_req" "req2-$RANDOM" "$TEST_DIR/req2.out" "${CLIENT_ARGS[@]}"; then
        fail "ktls = require relayed a second connection without kernel TLS"
    fi
    assert_log "$log" "warning: refused tunnel=req peer=127\\.0\\.0\\.1:[0-9]+ $reason" "[req] second refusal" 5 2

    out=$(printf 'req-client\n' | timeout "$(scale 10)" socat -t "$(scale 5)" - "TCP:127.0.0.1:$p_req_client" 2>/dev/null || true)
    assert_eq "$out" "" "reply through [req-client] (must be refused)"
    assert_log "$log" "warning: refused tunnel=req-client peer=127\\.0\\.0\\.1:[0-9]+ $reason" "[req-client] refusal reason"
    [ -z "$(audit_lines "$log" req-client)" ] || fail "[req-client] wrote an audit line for a refused connection"
fi

stop_ktlstund "$pid"
note "ktls policies ok"
