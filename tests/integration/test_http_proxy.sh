#!/usr/bin/env bash
# proxy = http://HOST:PORT: client tunnels reach their server through tinyproxy,
# started here on loopback with its own configs: data goes end to end and the proxy
# logs the CONNECT; a proxy that wants credentials (BasicAuth) refuses a tunnel
# without them (407) and one with wrong ones (tinyproxy answers those with 401), each
# in its own words, and lets the right ones through; a CONNECT to a port the proxy
# does not allow (403) is logged with the proxy's status line and is the tunnel's last
# refusal in `ktlstun status`; a proxy that never answers is named by the timeout.
# The password is never logged. The keys' refusals name FILE:LINE.
source "$(dirname "$0")/lib.sh"

command -v tinyproxy >/dev/null || fail "tinyproxy is not installed"

open_port=$(free_port)
auth_port=$(free_port)
server=$(free_port)
other=$(free_port)
echo_port=$(free_port)
c_open=$(free_port)
c_noauth=$(free_port)
c_wrong=$(free_port)
c_right=$(free_port)
c_denied=$(free_port)

# Both allow CONNECT to the server tunnel's port only.
start_tinyproxy open "$open_port" "ConnectPort $server"
start_tinyproxy auth "$auth_port" "ConnectPort $server" "BasicAuth tunnel s3cret-Pa55"

start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.log"
# A "proxy" that takes connections and never answers.
silent_port=$(free_port)
spawn "$TEST_DIR/silent.log" socat "TCP-LISTEN:$silent_port,bind=127.0.0.1,reuseaddr,fork" "EXEC:sleep 5"
wait_listening "$silent_port" || fail "the silent proxy did not listen"
c_silent=$(free_port)

umask 077
printf 'tunnel:s3cret-Pa55\n' >"$TEST_DIR/right.cred"
printf 'tunnel:wrong-pw\n' >"$TEST_DIR/wrong.cred"

conf="$TEST_DIR/ktlstund.ini"
{
    global_section
    server_tunnel srv "$server" "$echo_port"
    server_tunnel srv-other "$other" "$echo_port"
    client_tunnel open "$c_open" "$server" "proxy = http://127.0.0.1:$open_port"
    client_tunnel noauth "$c_noauth" "$server" "proxy = http://127.0.0.1:$auth_port"
    client_tunnel wrong "$c_wrong" "$server" "proxy = http://127.0.0.1:$auth_port" \
        "proxy_credentials = $TEST_DIR/wrong.cred"
    client_tunnel right "$c_right" "$server" "proxy = http://127.0.0.1:$auth_port/" \
        "proxy_credentials = $TEST_DIR/right.cred"
    client_tunnel denied "$c_denied" "$other" "proxy = http://127.0.0.1:$open_port"
    client_tunnel silent "$c_silent" "$server" "proxy = http://127.0.0.1:$silent_port" "handshake_timeout = 1s"
} >"$conf"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"

# echo_through PORT TOKEN: sends TOKEN through the client tunnel on PORT and returns 0
# when it comes back. It waits for the echo before it closes: tinyproxy ends both ways
# at the first end of stream, so a half-close would lose the answer.
echo_through() {
    local fd line=
    exec {fd}<>"/dev/tcp/127.0.0.1/$1" || return 1
    printf '%s\n' "$2" >&"$fd" 2>/dev/null || true
    read -r -t "$(scale 5)" line <&"$fd" 2>/dev/null || true
    exec {fd}>&-
    [ "$line" = "$2" ]
}

echo_through "$c_open" "through-the-proxy" || fail "no echo through the proxy"
assert_log "$log" "info: audit tunnel=open " "no audit line for [open]"
assert_log "$TEST_DIR/tinyproxy-open.log" "CONNECT .*127\\.0\\.0\\.1:$server" "tinyproxy did not log the CONNECT"
# The server tunnel's client is the proxy, which connected from loopback.
assert_log "$log" "info: audit tunnel=srv peer=127\\.0\\.0\\.1:[0-9]+ subject=\"CN=alice" "no audit line for [srv]"

echo_through "$c_noauth" "no-credentials" && fail "[noauth] relayed without credentials"
assert_log "$log" "warning: refused tunnel=noauth peer=127\\.0\\.0\\.1:[0-9]+ reason=\"proxy 127\\.0\\.0\\.1:$auth_port: proxy authentication required \\(set proxy_credentials\\)\"" \
    "407 without credentials not refused in words"

echo_through "$c_wrong" "wrong-credentials" && fail "[wrong] relayed with wrong credentials"
assert_log "$log" "warning: refused tunnel=wrong peer=127\\.0\\.0\\.1:[0-9]+ reason=\"proxy 127\\.0\\.0\\.1:$auth_port refused the credentials in $(esc "$TEST_DIR/wrong.cred")\"" \
    "407 with wrong credentials not refused in words"

echo_through "$c_right" "right-credentials" || fail "no echo with the right credentials"
assert_log "$log" "info: audit tunnel=right " "no audit line for [right]"

echo_through "$c_denied" "denied-port" && fail "[denied] relayed to a port the proxy does not allow"
assert_log "$log" "warning: refused tunnel=denied peer=127\\.0\\.0\\.1:[0-9]+ reason=\"proxy 127\\.0\\.0\\.1:$open_port refused CONNECT to 127\\.0\\.0\\.1:$other: \\\\\"HTTP/1\\.[01] 403 [^\"]*\\\\\"\"" \
    "a refused CONNECT not logged with the proxy's status line"

echo_through "$c_silent" "silent" && fail "[silent] relayed through a proxy that never answered"
assert_log "$log" "warning: refused tunnel=silent peer=127\\.0\\.0\\.1:[0-9]+ reason=\"the proxy's reply to CONNECT timed out after 1s\"" \
    "a proxy that never answers not named in the timeout"

assert_no_log "$log" "s3cret|wrong-pw" "a password reached the log"
status=$("$KTLSTUN" status -c "$conf" 2>&1 || true)
note "status: $status"
assert_contains "$status" "proxy 127.0.0.1:$open_port refused CONNECT to 127.0.0.1:$other" \
    "ktlstun status does not show [denied]'s last refusal"
assert_not_contains "$status" "s3cret" "a password in ktlstun status"

# The keys' refusals, at FILE:LINE.
printf 'tunnel:pw\n' >"$TEST_DIR/open.cred"
chmod 644 "$TEST_DIR/open.cred"
printf 'no-colon\n' >"$TEST_DIR/bad.cred"
bad="$TEST_DIR/bad.ini"
{
    global_section
    client_tunnel tls "$(free_port)" 1 "proxy = https://127.0.0.1:3128"
    client_tunnel socks "$(free_port)" 1 "proxy = socks5://127.0.0.1:1080"
    client_tunnel userinfo "$(free_port)" 1 "proxy = http://u:p@127.0.0.1:3128"
    client_tunnel noport "$(free_port)" 1 "proxy = http://127.0.0.1"
    client_tunnel lonely "$(free_port)" 1 "proxy_credentials = $TEST_DIR/right.cred"
    client_tunnel readable "$(free_port)" 1 "proxy = http://127.0.0.1:3128" "proxy_credentials = $TEST_DIR/open.cred"
    client_tunnel colon "$(free_port)" 1 "proxy = http://127.0.0.1:3128" "proxy_credentials = $TEST_DIR/bad.cred"
    client_tunnel sock "$(free_port)" "unix:$TEST_DIR/s.sock" "proxy = http://127.0.0.1:3128"
    server_tunnel srv "$(free_port)" 1 "proxy = http://127.0.0.1:3128"
    client_tunnel stunnel "$(free_port)" 1 "protocol = connect"
} >"$bad"
check_error "$bad" \
    "$(at "$bad" "proxy = https://127.0.0.1:3128" tls proxy)'https://127\\.0\\.0\\.1:3128' is not an HTTP proxy: only http://HOST:PORT is supported" \
    "\\[socks\\] proxy: 'socks5://127\\.0\\.0\\.1:1080' is not an HTTP proxy" \
    "\\[userinfo\\] proxy: no user or password in the URL: put them in proxy_credentials" \
    "\\[noport\\] proxy: missing port" \
    "\\[lonely\\] proxy_credentials: needs proxy = http://HOST:PORT" \
    "\\[readable\\] proxy_credentials: .*open\\.cred: open to other users \\(chmod 600 or 640 it\\): it holds a password" \
    "\\[colon\\] proxy_credentials: .*bad\\.cred: not user:password" \
    "\\[sock\\] proxy: an HTTP proxy needs a target HOST:PORT, not a socket" \
    "\\[srv\\] proxy: only valid in client mode" \
    "\\[stunnel\\] protocol: unknown key: \`protocol\` is stunnel's name; in ktlstun it is \`proxy\`"
