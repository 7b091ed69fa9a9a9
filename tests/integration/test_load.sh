#!/usr/bin/env bash
# Integrity under concurrency: load_client → [cli] client tunnel → [srv] server tunnel →
# echo_server, 200 parallel connections with payloads from 1 byte to 50 MB, SHA-256
# compared per connection. Each echo only ends because EOF travelled client → echo
# (half-close through both tunnels) and back, so half-close is checked too. The audit
# lines must account for every byte.
source "$(dirname "$0")/lib.sh"

connections=${LOAD_CONNECTIONS:-200}
max_bytes=${LOAD_MAX_BYTES:-50000000}
seed=${SEED:-$((RANDOM * 32768 + RANDOM))}
note "seed $seed (SEED=$seed reproduces the payload sizes)"

echo_port=$(free_port)
p_srv=$(free_port)
p_cli=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"

conf="$TEST_DIR/ktlstund.ini"
{
    global_section
    server_tunnel srv "$p_srv" "$echo_port" "crl = $PKI/crl.pem" "allow_cn = alice"
    client_tunnel cli "$p_cli" "$p_srv" "crl = $PKI/crl.pem"
} >"$conf"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID

start=$(now_ms)
"$TOOLS/load_client" "127.0.0.1:$p_cli" --connections "$connections" --min-bytes 1 --max-bytes "$max_bytes" \
    --seed "$seed" --timeout "$(scale 150)" >"$TEST_DIR/load.out" 2>&1 \
    || fail "load_client reported failures (seed $seed): $(tail -n 12 "$TEST_DIR/load.out")"
note "$(tail -n 2 "$TEST_DIR/load.out" | tr '\n' ' ') in $(( $(now_ms) - start )) ms"
summary=$(tail -n 1 "$TEST_DIR/load.out")
[[ $summary =~ ^load_client:\ $connections\ ok,\ 0\ failed,\ ([0-9]+)\ bytes\ each\ way$ ]] \
    || fail "unexpected load_client summary: $summary"
total=${BASH_REMATCH[1]}

alive "$pid" || fail "ktlstund died under load"
assert_log "$log" 'info: audit tunnel=cli ' "audit lines for [cli]" "$(scale 10)" "$connections"
assert_log "$log" 'info: audit tunnel=srv ' "audit lines for [srv]" "$(scale 10)" "$connections"
assert_eq "$(audit_lines "$log" cli | wc -l)" "$connections" "[cli] audit lines"
assert_eq "$(audit_lines "$log" srv | wc -l)" "$connections" "[srv] audit lines"

for t in cli srv; do
    sum_in=0
    sum_out=0
    while read -r line; do
        bin=$(audit_field "$line" bytes_in)
        bout=$(audit_field "$line" bytes_out)
        [ "$bin" = "$bout" ] || fail "[$t] echo connection with bytes_in $bin != bytes_out $bout: $line"
        sum_in=$((sum_in + bin))
        sum_out=$((sum_out + bout))
    done < <(audit_lines "$log" "$t")
    assert_eq "$sum_in" "$total" "[$t] sum of bytes_in over the audit lines"
    assert_eq "$sum_out" "$total" "[$t] sum of bytes_out over the audit lines"
done
assert_eq "$(grep -c '^accepted ' "$TEST_DIR/echo.out")" "$connections" "connections at the backend"
assert_no_log "$log" 'error: ' "errors logged under load"
assert_no_log "$log" 'warning: refused ' "connections refused under load"

stop_ktlstund "$pid"
note "load ok"
