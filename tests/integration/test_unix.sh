#!/usr/bin/env bash
# Unix sockets on both sides of both modes:
#   load_client → unix:[cli] → TLS over unix → unix:[srv] → unix:echo_server
#   s_client -unix → [srv]
#   load_client → unix:[cli-tcp] → TLS over TCP → [srv-tcp] → unix:echo_server
source "$(dirname "$0")/lib.sh"

d=$TEST_DIR
start_echo "unix:$d/echo.sock" "$d/echo.out"
p_srv_tcp=$(free_port)

conf="$d/ktlstund.ini"
{
    global_section
    server_tunnel srv "unix:$d/tls.sock" "unix:$d/echo.sock"
    client_tunnel cli "unix:$d/plain.sock" "unix:$d/tls.sock"
    server_tunnel srv-tcp "$p_srv_tcp" "unix:$d/echo.sock"
    client_tunnel cli-tcp "unix:$d/plain2.sock" "$p_srv_tcp" "server_name ="
} >"$conf"
log="$d/ktlstund.log"
start_ktlstund "$conf" "$log"
pid=$KTLSTUND_PID
for s in tls.sock plain.sock plain2.sock; do
    [ -S "$d/$s" ] || fail "ktlstund did not create the unix listener $d/$s"
done

n=16
"$TOOLS/load_client" "unix:$d/plain.sock" --connections $n --min-bytes 0 --max-bytes 3000000 --seed 21 \
    --timeout "$(scale 60)" >"$d/load1.out" 2>&1 || fail "unix → unix: $(tail -n 5 "$d/load1.out")"
assert_log "$log" 'info: audit tunnel=cli ' "audit lines for [cli]" 5 $n
assert_log "$log" 'info: audit tunnel=srv ' "audit lines for [srv]" 5 $n
line=$(audit_lines "$log" srv | head -n 1)
assert_eq "$(audit_field "$line" subject)" "CN=alice,OU=eng,O=ktlstun test" "[srv] audit subject over unix"

client_args alice
token="unix-$RANDOM"
tls_echo "unix:$d/tls.sock" "$token" "$d/s_client.out" "${CLIENT_ARGS[@]}" \
    || fail "s_client -unix through [srv]: $(cat "$d/s_client.out.err")"

"$TOOLS/load_client" "unix:$d/plain2.sock" --connections $n --min-bytes 0 --max-bytes 3000000 --seed 22 \
    --timeout "$(scale 60)" >"$d/load2.out" 2>&1 || fail "unix → TCP → unix: $(tail -n 5 "$d/load2.out")"
assert_log "$log" 'info: audit tunnel=srv-tcp ' "audit lines for [srv-tcp]" 5 $n

# echo_server saw exactly the relayed connections: 2n + the s_client one
assert_eq "$(grep -c '^accepted ' "$d/echo.out")" $((2 * n + 1)) "connections at the unix backend"

stop_ktlstund "$pid"
note "unix sockets ok"
