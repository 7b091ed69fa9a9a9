#!/usr/bin/env bash
# A network tunnel behind the second factor, real daemons in namespaces made here:
#
#   lanA 192.168.101.10 -- hub 198.18.1.1 -- 198.18.1.2 r1 (CN=carol)
#
# The hub's [hub] (type = network) is gated (second_factor = pam, pam_oath TOTP).
# Without a login, carol's network tunnel is refused with insufficient_security: no
# address, no route, no hub device. After `ktlstun login` (run in r1, from the address
# the tunnel comes from) it comes up on its own: carol pings the hub and the host behind
# it. When the grant ends (grant_lifetime), the network tunnel ends with it, and the
# reconnects are refused again.
source "$(dirname "$0")/lib.sh"
source "$SF_DIR/../network_lib.sh"
net_trap sf_cleanup

# The grant needs to outlive only the checks made while the tunnel is up (under a second
# from the login, two on a busy machine); waiting for its end is most of this test's time.
grant=$(scale 5)
sf_make_ca
sf_cert carol
sf_user carol
sf_pam_dir "$TEST_DIR/pam.d" "$TEST_DIR/oath"
sf_enrol "$TEST_DIR/oath" "$SF_USER" TOTP
printf 'cn:carol %s\n' "$SF_USER" >"$TEST_DIR/users.map"

net_ns lanA hub r1
net_router hub
net_link lanA la0 192.168.101.10/24 hub ha0 192.168.101.1/24
net_default_route lanA 192.168.101.1
net_link hub hr1 198.18.1.1/30 r1 u0 198.18.1.2/30
assert_ping r1 198.18.1.1 "the underlay from r1 to the hub"

hub_conf="$TEST_DIR/hub.ini"
{
    net_global hub
    sf_gated_tunnel hub 198.18.1.1:8443 "" "type = network" "address = 10.8.0.1/24" \
        "push_routes = 192.168.101.0/24" "grant_lifetime = ${grant}s"
} >"$hub_conf"
r1_conf="$TEST_DIR/r1.ini"
{
    net_global r1 "workers = 1"
    client_tunnel to-hub "" 198.18.1.1:8443 "type = network" "reconnect_max = 2s" \
        "cert = $TEST_DIR/carol.pem" "key = $TEST_DIR/user.key"
} >"$r1_conf"
hub_log="$TEST_DIR/hub.log" r1_log="$TEST_DIR/r1.log"
dev=ktlto-hub

note "the gated hub (type = network) and carol's client"
net_start_ktlstund hub "$hub_conf" "$hub_log"
hub_pid=$KTLSTUND_PID
net_start_ktlstund r1 "$r1_conf" "$r1_log"
r1_pid=$KTLSTUND_PID

note "no login yet: refused with insufficient_security, nothing set up"
refusal='refused tunnel=hub peer=198\.18\.1\.2:[0-9]+ reason="second factor: no live login for carol'
assert_log "$hub_log" "$refusal" "the hub refuses carol's network tunnel before a login" "$(scale 10)"
assert_log "$r1_log" 'insufficient.security' "carol's client says why it was refused" "$(scale 5)"
assert_eq "$(net_tun_devices hub | tr '\n' ' ')" "" "TUN devices in the hub's namespace without a login"
if net_wait_address r1 "$dev" 10.8.0. 1; then
    fail "carol's device got an address without a login: $(net_addresses r1 "$dev")"
fi
if net_ping r1 192.168.101.10 1; then
    fail "carol reached the host behind the hub without a login"
fi

note "ktlstun login in r1 (TOTP): the tunnel comes up on its own"
KTLSTUN=$(net_wrapper r1 "$KTLSTUN") sf_expect_login "$r1_conf" to-hub "$(sf_totp)" 0 "Access granted" "carol's TOTP login"
login_done=$(now_ms)
net_wait_address r1 "$dev" 10.8.0. "$(scale 10)" ||
    fail "carol's device got no address within $(scale 10) s of her login (devices in r1: $(net_tun_devices r1 | tr '\n' ' '))"
note "up $(($(now_ms) - login_done)) ms after the login: $(net_addresses r1 "$dev")"
assert_contains "$(net_routes r1 "$dev" -4)" "192.168.101.0/24 " "carol routes the hub's network through the tunnel"
assert_ping r1 10.8.0.1 "carol to the hub's tunnel address"
assert_ping r1 192.168.101.10 "carol to the host behind the hub"
assert_eq "$(net_tun_devices hub | wc -l)" 1 "TUN devices in the hub's namespace with carol's tunnel up"
refusals=$(log_count "$hub_log" "$refusal")

note "the grant ends after ${grant}s: the network tunnel ends with it"
assert_log "$hub_log" 'access withdrawn: second-factor grant of carol \(sha256 [0-9a-f]{16}…\) ended' \
    "the end of carol's grant ends her network tunnel" $((grant + 5 * SLOW))
elapsed=$(($(now_ms) - login_done))
note "carol's tunnel ended $elapsed ms after the login"
[ "$elapsed" -ge $(((grant - 1) * 1000)) ] || fail "the tunnel ended $elapsed ms after the login, before its ${grant} s grant"
for ((i = 0; i < 50 * SLOW; i++)); do
    [ -z "$(net_tun_devices hub)" ] && break
    sleep 0.1
done
assert_eq "$(net_tun_devices hub | tr '\n' ' ')" "" "TUN devices in the hub's namespace after the grant's end"
if net_ping r1 192.168.101.10 1; then
    fail "carol still reaches the host behind the hub after her grant ended"
fi
wait_for_log "$hub_log" "$refusal" "$(scale 10)" $((refusals + 1)) ||
    fail "carol's reconnect after the grant's end was not refused for want of a login"

stop_ktlstund "$r1_pid"
stop_ktlstund "$hub_pid"
