#!/usr/bin/env bash
# A client tunnel behind an HTTP proxy (tinyproxy, started here with credentials
# required): `ktlstun login` goes through the proxy as the tunnel does, with the
# tunnel's proxy_credentials, and the data connection after it too; the proxy logs
# both CONNECTs. A proxy that wants credentials the tunnel lacks stops the login
# with the proxy's words.
source "$(dirname "$0")/lib.sh"

command -v tinyproxy >/dev/null || fail "tinyproxy is not installed"
sf_alice_vpn
vpn_port=${SF_VPN##*:}
proxy_port=$(free_port) c_proxy=$(free_port) c_nocred=$(free_port)
start_tinyproxy auth "$proxy_port" "ConnectPort $vpn_port" "BasicAuth tunnel s3cret-Pa55"
umask 077
printf 'tunnel:s3cret-Pa55\n' >"$TEST_DIR/proxy.cred"
{
    sf_client_tunnel c-proxy "$c_proxy" "$vpn_port" alice
    echo "proxy = http://127.0.0.1:$proxy_port"
    echo "proxy_credentials = $TEST_DIR/proxy.cred"
    echo
    sf_client_tunnel c-nocred "$c_nocred" "$vpn_port" alice
    echo "proxy = http://127.0.0.1:$proxy_port"
} >>"$SF_CONF"
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$SF_CONF" "$log"

sf_expect_login "$SF_CONF" c-nocred "$(sf_hotp 0)" 3 \
    "proxy 127.0.0.1:$proxy_port: proxy authentication required (set proxy_credentials)" \
    "a login through a proxy without its credentials"
sf_expect_login "$SF_CONF" c-proxy "$(sf_hotp 0)" 0 "Access granted" "a login through the proxy"
assert_log "$TEST_DIR/tinyproxy-auth.log" "CONNECT .*127\\.0\\.0\\.1:$vpn_port" "tinyproxy did not log the login's CONNECT"
out=$(printf 'through-the-proxy\n' | timeout "$(scale 10)" socat -t "$(scale 5)" - "TCP:127.0.0.1:$c_proxy" 2>&1 || true)
note "data: $out"
assert_log "$log" "info: audit tunnel=c-proxy " "no data connection through the proxy after the login"
assert_no_log "$log" "s3cret" "the proxy's password reached the log"
