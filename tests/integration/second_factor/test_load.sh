#!/usr/bin/env bash
# Second factor under stress: a PAM module that hangs (pam_exec running sleep) is cut
# off at pam_timeout and counted as a failure, its command killed with it, while other
# logins and data connections go on unhindered; then 100 logins at once (100
# certificates, 100 local users, each with its own pam_oath file) all succeed.
source "$(dirname "$0")/lib.sh"

count=100
# pam_timeout: long enough that the login and data made during the hang (a few hundred
# ms) plainly do not wait for it. The users are made meanwhile (some 8 s): a longer
# hang than that only adds to a sanitizer build's time.
hang_s=6
[ "$SLOW" = 1 ] || hang_s=12
sleeper="/bin/sleep 31.$$"   # a command line no other process has
sf_make_ca
sf_cert hanger
oath="$TEST_DIR/oath"
sf_pam_dir "$TEST_DIR/pam.d" "$oath"
names=()
# add_users N: the next users up to the Nth, each with a certificate, an enrolment and
# a client tunnel section in $clients (which only `ktlstun login` reads).
# useradd takes the /etc/passwd lock and runs one at a time; each certificate is made
# in the background meanwhile, on the other CPU.
add_users() {
    local i u cert_pids=()
    for ((i = ${#names[@]} + 1; i <= $1; i++)); do
        printf -v u 'u%03d' "$i"
        sf_user "$u"   # user_map = cn: the certificate names the user
        names+=("$SF_USER")
        sf_cert "$SF_USER" &
        cert_pids+=($!)
        sf_enrol "$oath" "$SF_USER" HOTP
        sf_client_tunnel "c-$SF_USER" "$((20000 + i))" "$p_vpn" "$SF_USER" >>"$clients"
    done
    for i in "${cert_pids[@]}"; do
        wait "$i" || fail "a certificate of the users up to the ${1}th was not made"
    done
}
mkdir -p "$TEST_DIR/pam-hang.d"
cat >"$TEST_DIR/pam-hang.d/ktlstun" <<EOF
auth     required  pam_exec.so quiet $sleeper
account  required  pam_permit.so
EOF

echo_port=$(free_port) p_vpn=$(free_port) p_hang=$(free_port)
start_echo "127.0.0.1:$echo_port" "$TEST_DIR/echo.out"
# No user_map: the certificate's CN is the user.
gated() {  # NAME PORT PAM_DIR [extra lines]
    sf_gated_tunnel "$1" "$2" "$echo_port" "pam_confdir = $3" "user_map =" "max_connections = 1000" "${@:4}"
}
conf="$TEST_DIR/ktlstund.ini"
{
    global_section
    gated vpn "$p_vpn" "$TEST_DIR/pam.d"
    gated hang "$p_hang" "$TEST_DIR/pam-hang.d" "pam_timeout = $hang_s"
} >"$conf"
# The client side: one client tunnel per user, in a file only `ktlstun login` reads.
# The first user is made now; the others while the hung login waits out pam_timeout.
clients="$TEST_DIR/clients.ini"
sf_client_tunnel c-hanger 1 "$p_hang" hanger >"$clients"
add_users 1
log="$TEST_DIR/ktlstund.log"
start_ktlstund "$conf" "$log"

note "a login whose PAM module hangs"
spawn "$TEST_DIR/hang.out" "$KTLSTUN" login c-hanger -c "$clients" --answer-fd 0
hang_pid=$SPAWN_PID
started=$(now_ms)
for ((i = 0; i < 50 && $(pgrep -fxc "$sleeper" || true) == 0; i++)); do sleep 0.1; done
[ "$(pgrep -fxc "$sleeper" || true)" -ge 1 ] || fail "pam_exec did not start its command"

note "meanwhile another login and data go through at once"
t0=$(now_ms)
sf_expect_login "$clients" "c-${names[0]}" "$(sf_hotp 0)" 0 "Access granted" "login during the hang"
sf_data "127.0.0.1:$p_vpn" "${names[0]}" "during-hang-$RANDOM" || fail "no data during the hang"
elapsed=$(($(now_ms) - t0))
alive "$hang_pid" || fail "the hanging login ended too early: $(cat "$TEST_DIR/hang.out")"
[ "$elapsed" -lt $((hang_s * 1000 / 2)) ] || fail "login and data took ${elapsed} ms during the hang"

note "the other $((count - 1)) users, while the hung login waits"
add_users "$count"

note "the hung module is cut off at pam_timeout, counted, and its command killed"
rc=0
wait_exit "$hang_pid" $((hang_s + $(scale 10))) || rc=$?
took=$(($(now_ms) - started))
[ "$rc" = 1 ] || fail "hanging login exited $rc: $(cat "$TEST_DIR/hang.out")"
assert_contains "$(cat "$TEST_DIR/hang.out")" "login check timed out" "timeout message"
[ "$took" -ge $((hang_s * 1000 - 500)) ] || fail "cut off after ${took} ms, before pam_timeout"
assert_log "$log" 'PAM login of "hanger" hung; killed it' "hang logged"
assert_log "$log" "second-factor failure: tunnel=hang identity=\"hanger\" user=hanger source=127\\.0\\.0\\.1 failures=1/5 reason=\"PAM did not finish within pam_timeout \\(${hang_s}s\\)\"" \
    "timeout counted as a failure"
for ((i = 0; i < 30 && $(pgrep -fxc "$sleeper" || true) > 0; i++)); do sleep 0.1; done
[ "$(pgrep -fxc "$sleeper" || true)" = 0 ] || fail "the hung module's command outlived the timeout"

note "$count logins at once"
t0=$(now_ms)
pids=()
# The clients stand for $count other machines: at the lowest CPU priority they cannot
# starve the daemon under test on this one (the supervisor kills a worker whose loop
# stalls for 10 s, and 100 sanitizer-built clients on two CPUs can cause that).
# One oathtool for all: every user's counter is at 1. Only the first client of a
# sanitizer build looks for leaks at its exit (the login during the hang did too): the
# leak scan of a hundred identical processes doubles their CPU time and proves nothing
# more.
code=$(sf_hotp 1)
for name in "${names[@]}"; do
    asan=$ASAN_OPTIONS
    [ "$name" = "${names[0]}" ] || asan=${ASAN_OPTIONS/detect_leaks=1/detect_leaks=0}
    ASAN_OPTIONS=$asan nice -n 19 "$KTLSTUN" login "c-$name" -c "$clients" --answer-fd 3 3<<<"$code" >"$TEST_DIR/many.$name.out" 2>&1 </dev/null &
    pids+=($!)
    PIDS+=($!)
done
failed=0
for i in "${!pids[@]}"; do
    rc=0
    wait_exit "${pids[$i]}" "$(scale 60)" || rc=$?
    if [ "$rc" != 0 ]; then
        failed=$((failed + 1))
        note "login of ${names[$i]} exited $rc: $(cat "$TEST_DIR/many.${names[$i]}.out")"
    fi
done
elapsed=$(($(now_ms) - t0))
note "$count concurrent logins took $elapsed ms"
[ "$failed" = 0 ] || fail "$failed of $count concurrent logins failed"
assert_eq "$(log_count "$log" 'second-factor success: tunnel=vpn ')" $((count + 1)) "successes logged"
sf_data "127.0.0.1:$p_vpn" "${names[$((count - 1))]}" "last-$RANDOM" || fail "no data for the last user"
stop_ktlstund "$KTLSTUND_PID"
