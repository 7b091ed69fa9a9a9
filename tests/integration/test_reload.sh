#!/usr/bin/env bash
# Reload under traffic. 20 paced transfers (~6 s each) run through [cli] → [srv] →
# echo_server while SIGHUP swaps [srv]'s certificate for server-new: every transfer
# completes intact on the configuration it started with (the client tunnel's audit
# names the old server certificate), and new connections see the new certificate.
# Then broken configurations (missing file; key not matching the certificate) are
# refused on SIGHUP and the daemon keeps serving with the previous certificate; a good
# one is taken again, and so are certificate files replaced in place.
source "$(dirname "$0")/lib.sh"

echo_port=$(free_port)
p_srv=$(free_port)
p_cli=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"

conf="$TEST_DIR/ktlstund.ini"
write_conf() {  # CERT KEY
    {
        global_section
        server_tunnel srv "$p_srv" "$echo_port" "cert = $1" "key = $2" "crl = $PKI/crl.pem"
        client_tunnel cli "$p_cli" "$p_srv"
    } >"$conf.tmp"
    mv "$conf.tmp" "$conf"
}
write_conf "$PKI/server.pem" "$PKI/server.key"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID

old_sha=$(cat "$PKI/server.sha256")
new_sha=$(cat "$PKI/server-new.sha256")
served_cert "127.0.0.1:$p_srv" "$TEST_DIR/cert0.pem" || fail "no certificate served before the reload"
assert_eq "$(cert_sha256 "$TEST_DIR/cert0.pem")" "$old_sha" "certificate served before the reload"

# 20 transfers paced to take ~6 s each.
n=20
spawn "$TEST_DIR/load.out" "$TOOLS/load_client" "127.0.0.1:$p_cli" --connections $n \
    --min-bytes 200000 --max-bytes 2000000 --seed 31 --duration-hint 6 --timeout "$(scale 60)"
load_pid=$SPAWN_PID
load_start=$(now_ms)
wait_for_log "$TEST_DIR/echo.out" '^accepted ' "$(scale 5)" $n || fail "paced transfers did not all connect"
sleep 2

write_conf "$PKI/server-new.pem" "$PKI/server-new.key"
assert_eq "$(reload "$pid" "$log")" reloaded "reload with the new server certificate"
reloaded_at=$(( $(now_ms) - load_start ))
note "reloaded ${reloaded_at} ms into the transfers"
alive "$load_pid" || fail "the paced transfers ended before the reload (reload was not under traffic)"
[ -z "$(audit_lines "$log" cli)" ] || fail "a paced transfer ended before the reload: $(audit_lines "$log" cli)"

served_cert "127.0.0.1:$p_srv" "$TEST_DIR/cert1.pem" || fail "no certificate served after the reload"
assert_eq "$(cert_sha256 "$TEST_DIR/cert1.pem")" "$new_sha" "certificate served after the reload"
plain_echo "127.0.0.1:$p_cli" "after-reload-$RANDOM" || fail "a new connection through [cli] failed after the reload"
new_cli=$(audit_lines "$log" cli | tail -n 1)
assert_eq "$(audit_field "$new_cli" sha256)" "$new_sha" "[cli] connection after the reload verified the new server certificate"

rc=0
wait_exit "$load_pid" "$(scale 60)" || rc=$?
[ "$rc" = 0 ] || fail "paced transfers across the reload failed (exit $rc): $(tail -n 8 "$TEST_DIR/load.out")"
grep -q "^load_client: $n ok, 0 failed" "$TEST_DIR/load.out" || fail "load_client: $(tail -n 1 "$TEST_DIR/load.out")"
# The transfers started before the reload finished on the old certificate.
assert_log "$log" 'info: audit tunnel=cli ' "audit lines for the paced transfers" 5 $((n + 1))
old_count=$(audit_lines "$log" cli | grep -c "sha256=$old_sha" || true)
assert_eq "$old_count" "$n" "[cli] audit lines of the transfers begun before the reload (old server certificate)"

# ---- broken configurations are refused and the previous one keeps serving
cp "$conf" "$TEST_DIR/good.ini"
write_conf "$TEST_DIR/missing.pem" "$PKI/server-new.key"
assert_eq "$(reload "$pid" "$log")" refused "reload with a missing certificate file"
assert_log "$log" 'error: reload refused' "reload refusal line"
write_conf "$PKI/server.pem" "$PKI/server-new.key"
assert_eq "$(reload "$pid" "$log")" refused "reload with a key that does not match the certificate"
alive "$pid" || fail "ktlstund died on a broken reload"

served_cert "127.0.0.1:$p_srv" "$TEST_DIR/cert2.pem" || fail "no certificate served after the refused reloads"
assert_eq "$(cert_sha256 "$TEST_DIR/cert2.pem")" "$new_sha" "certificate served after the refused reloads"
plain_echo "127.0.0.1:$p_cli" "after-refused-$RANDOM" || fail "data no longer flows after the refused reloads"
"$TOOLS/load_client" "127.0.0.1:$p_cli" --connections 10 --max-bytes 1000000 --seed 32 \
    --timeout "$(scale 30)" >"$TEST_DIR/load2.out" 2>&1 || fail "load after the refused reloads: $(tail -n 5 "$TEST_DIR/load2.out")"

# And a good config after refused ones is taken again.
cp "$PKI/server.pem" "$TEST_DIR/current.pem"
cp "$PKI/server.key" "$TEST_DIR/current.key"
write_conf "$TEST_DIR/current.pem" "$TEST_DIR/current.key"
assert_eq "$(reload "$pid" "$log")" reloaded "reload back to the first certificate"
served_cert "127.0.0.1:$p_srv" "$TEST_DIR/cert3.pem" || fail "no certificate served after the last reload"
assert_eq "$(cert_sha256 "$TEST_DIR/cert3.pem")" "$old_sha" "certificate served after reloading the first one again"

# Rotation in place: same config, the files' contents replaced, SIGHUP re-reads them.
cp "$PKI/server-new.pem" "$TEST_DIR/current.pem"
cp "$PKI/server-new.key" "$TEST_DIR/current.key"
assert_eq "$(reload "$pid" "$log")" reloaded "reload after replacing the certificate files in place"
served_cert "127.0.0.1:$p_srv" "$TEST_DIR/cert4.pem" || fail "no certificate served after the in-place rotation"
assert_eq "$(cert_sha256 "$TEST_DIR/cert4.pem")" "$new_sha" "certificate served after replacing the files in place"

stop_ktlstund "$pid"
note "reload ok"
