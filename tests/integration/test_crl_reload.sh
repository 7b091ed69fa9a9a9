#!/usr/bin/env bash
# CRL reload: alice is admitted; the CRL file is rewritten to revoke alice and SIGHUP
# makes new connections from alice fail as revoked, while mallory still gets in. The
# reload also ends alice's transfers established before it (access withdrawn, with the
# reason in their audit lines), while mallory's, established before it too, runs to
# completion.
source "$(dirname "$0")/lib.sh"

echo_port=$(free_port)
p_srv=$(free_port)
p_cli=$(free_port)
p_cli_m=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
cp "$PKI/crl.pem" "$TEST_DIR/crl.pem"

conf="$TEST_DIR/ktlstund.ini"
{
    global_section
    server_tunnel srv "$p_srv" "$echo_port" "crl = $TEST_DIR/crl.pem"
    client_tunnel cli "$p_cli" "$p_srv"
    client_tunnel cli-mallory "$p_cli_m" "$p_srv" "cert = $PKI/mallory.pem" "key = $PKI/mallory.key"
} >"$conf"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID

client_args alice
tls_echo "127.0.0.1:$p_srv" "alice-before-$RANDOM" "$TEST_DIR/a1.out" "${CLIENT_ARGS[@]}" \
    || fail "alice refused before her revocation"

# alice's and mallory's long transfers, established before the revocation
spawn "$TEST_DIR/load.out" "$TOOLS/load_client" "127.0.0.1:$p_cli" --connections 2 \
    --min-bytes 500000 --max-bytes 500000 --seed 41 --duration-hint 4 --timeout "$(scale 30)"
load_pid=$SPAWN_PID
spawn "$TEST_DIR/load-mallory.out" "$TOOLS/load_client" "127.0.0.1:$p_cli_m" --connections 2 \
    --min-bytes 500000 --max-bytes 500000 --seed 42 --duration-hint 4 --timeout "$(scale 30)"
load_m_pid=$SPAWN_PID
wait_for_log "$TEST_DIR/echo.out" '^accepted ' "$(scale 5)" 5 || fail "the transfers did not connect"

cat "$PKI/crl-alice.pem" >"$TEST_DIR/crl.pem"
assert_eq "$(reload "$pid" "$log")" reloaded "reload with alice revoked"

before=$(grep -c '^accepted ' "$TEST_DIR/echo.out")
if tls_echo "127.0.0.1:$p_srv" "alice-after-$RANDOM" "$TEST_DIR/a2.out" "${CLIENT_ARGS[@]}"; then
    fail "alice still admitted after the CRL revoking her was loaded"
fi
assert_log "$log" "warning: refused tunnel=srv peer=127\\.0\\.0\\.1:[0-9]+ reason=\"[^\"]*revoked \\(CRL $TEST_DIR/crl.pem\\) \\(CN=alice\\)" \
    "alice's refusal as revoked"
assert_eq "$(grep -c '^accepted ' "$TEST_DIR/echo.out")" "$before" "backend connections for revoked alice"

client_args mallory
tls_echo "127.0.0.1:$p_srv" "mallory-$RANDOM" "$TEST_DIR/m.out" "${CLIENT_ARGS[@]}" \
    || fail "mallory (not revoked) refused after the CRL reload"

rc=0
wait_exit "$load_pid" "$(scale 30)" || rc=$?
[ "$rc" != 0 ] && [ "$rc" != 255 ] ||
    fail "alice's transfer established before the reload was not ended (exit $rc): $(tail -n 4 "$TEST_DIR/load.out")"
assert_eq "$(audit_lines "$log" srv | grep -c "subject=\"CN=alice,OU=eng,O=ktlstun test\" .*close=\"access withdrawn: certificate revoked by the CRL reloaded at [0-9T:Z-]* (CRL $TEST_DIR/crl.pem) (CN=alice)\"")" 2 \
    "alice's transfers ended as revoked"
rc=0
wait_exit "$load_m_pid" "$(scale 30)" || rc=$?
[ "$rc" = 0 ] || fail "mallory's transfer established before the reload was cut (exit $rc): $(tail -n 4 "$TEST_DIR/load-mallory.out")"

stop_ktlstund "$pid"
note "CRL reload ok"
